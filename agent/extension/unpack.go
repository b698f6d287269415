package extension

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Limits on a handler package. The largest published handlers (monitoring
// agents) are a few hundred MiB unpacked.
const (
	MaxPackageSize  = 512 << 20 // the zip as downloaded
	MaxUnpackedSize = 2 << 30   // all files together
	MaxPackageFiles = 20000
)

// Unpack extracts the zip pkg into dir, which must not exist yet: it
// unpacks into a temporary directory beside dir and renames it, so a
// half-done unpack never looks installed. Every name must stay inside dir;
// symbolic links, devices and absolute or ".." names are refused. Files
// keep their executable bits, as WALinuxAgent's chmod of the handler does.
func Unpack(pkg []byte, dir string) error {
	zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
	if err != nil {
		return fmt.Errorf("handler package for %s: %v", dir, err)
	}
	if len(zr.File) > MaxPackageFiles {
		return fmt.Errorf("handler package for %s: %d files, more than %d", dir, len(zr.File), MaxPackageFiles)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+unpackSuffix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // only left when something failed
	var total uint64
	for _, f := range zr.File {
		if err := unpackFile(f, tmp, &total); err != nil {
			return fmt.Errorf("handler package for %s: %s: %w", dir, f.Name, err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// unpackSuffix names the temporary directory a package is unpacked into.
const unpackSuffix = ".unpack-"

// errUnsafe marks an entry whose name or type could reach outside the handler directory.
var errUnsafe = fmt.Errorf("unsafe entry refused")

func unpackFile(f *zip.File, root string, total *uint64) error {
	name := strings.ReplaceAll(f.Name, `\`, "/")
	clean := path.Clean(name)
	if name == "" || path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(name, "\x00") {
		return errUnsafe
	}
	target := filepath.Join(root, filepath.FromSlash(clean))
	mode := f.Mode()
	switch {
	case mode.IsDir():
		return os.MkdirAll(target, 0o755)
	case !mode.IsRegular():
		return errUnsafe // symlinks could point anywhere; handlers don't need them
	}
	*total += f.UncompressedSize64
	if *total > MaxUnpackedSize {
		return fmt.Errorf("unpacked size over %d bytes", MaxUnpackedSize)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	// WALinuxAgent makes every file of a handler executable by its owner.
	perm := mode.Perm()&0o755 | 0o700
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	// The header's size may lie; copy one byte more than it claims to notice.
	n, err := io.Copy(out, io.LimitReader(rc, int64(f.UncompressedSize64)+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && uint64(n) != f.UncompressedSize64 {
		err = fmt.Errorf("holds %d bytes, its header says %d", n, f.UncompressedSize64)
	}
	return err
}

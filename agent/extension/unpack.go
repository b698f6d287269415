package extension

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"io/fs"
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
// devices and absolute or ".." names are refused, and so is a symbolic
// link unless it is relative and resolves inside dir, nor may a name go
// through one. Files keep their executable bits, as WALinuxAgent's chmod
// of the handler does.
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
	var links []string
	for _, f := range zr.File {
		link, err := unpackFile(f, tmp, &total)
		if err != nil {
			return fmt.Errorf("handler package for %s: %s: %w", dir, f.Name, err)
		}
		if link != "" {
			links = append(links, link)
		}
	}
	if err := checkLinks(tmp, links); err != nil {
		return fmt.Errorf("handler package for %s: %w", dir, err)
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

// maxLinkTarget bounds a symbolic link's target (PATH_MAX).
const maxLinkTarget = 4096

// unpackFile writes one entry under root. For a symbolic link it returns
// the link's path, which checkLinks resolves once everything is in place.
func unpackFile(f *zip.File, root string, total *uint64) (link string, err error) {
	name := strings.ReplaceAll(f.Name, `\`, "/")
	clean := path.Clean(name)
	if !inside(name, clean) {
		return "", errUnsafe
	}
	target := filepath.Join(root, filepath.FromSlash(clean))
	if err := throughLink(root, clean); err != nil {
		return "", err
	}
	mode := f.Mode()
	switch {
	case mode.IsDir():
		return "", os.MkdirAll(target, 0o755)
	case mode&fs.ModeSymlink != 0:
		return target, unpackLink(f, clean, target)
	case !mode.IsRegular():
		return "", errUnsafe
	}
	*total += f.UncompressedSize64
	if *total > MaxUnpackedSize {
		return "", fmt.Errorf("unpacked size over %d bytes", MaxUnpackedSize)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return "", err
	}
	// WALinuxAgent makes every file of a handler executable by its owner.
	perm := mode.Perm()&0o755 | 0o700
	rc, err := f.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return "", err
	}
	// The header's size may lie; copy one byte more than it claims to notice.
	n, err := io.Copy(out, io.LimitReader(rc, int64(f.UncompressedSize64)+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && uint64(n) != f.UncompressedSize64 {
		err = fmt.Errorf("holds %d bytes, its header says %d", n, f.UncompressedSize64)
	}
	return "", err
}

// inside reports whether the slash-separated relative name, clean once
// cleaned, stays below the directory it is relative to.
func inside(name, clean string) bool {
	return name != "" && !path.IsAbs(name) && clean != ".." && !strings.HasPrefix(clean, "../") && !strings.Contains(name, "\x00")
}

// throughLink refuses a name whose parent directories include a symbolic
// link unpacked before it: writing through one could leave root.
func throughLink(root, clean string) error {
	for dir := path.Dir(clean); dir != "."; dir = path.Dir(dir) {
		fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(dir)))
		if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w: goes through the symbolic link %s", errUnsafe, dir)
		}
	}
	return nil
}

// unpackLink makes a relative symbolic link whose target, read from
// its directory, stays inside the package.
func unpackLink(f *zip.File, clean, target string) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxLinkTarget+1))
	if err != nil {
		return err
	}
	to := strings.ReplaceAll(string(b), `\`, "/")
	if len(b) > maxLinkTarget || !inside(to, path.Join(path.Dir(clean), to)) {
		return fmt.Errorf("%w: symbolic link to %q leaves the handler directory", errUnsafe, to)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	return os.Symlink(filepath.FromSlash(to), target)
}

// checkLinks resolves every link unpacked into root, now that all of them
// exist: a chain of links that each look inside can still lead out
// (a link to "." beside one to "that/.."), and a dangling one could lead
// anywhere once something creates its target.
func checkLinks(root string, links []string) error {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	for _, l := range links {
		to, err := filepath.EvalSymlinks(l)
		rel, rerr := filepath.Rel(realRoot, to)
		if rel = filepath.ToSlash(rel); err != nil || rerr != nil || !inside(rel, rel) {
			name, _ := filepath.Rel(root, l)
			return fmt.Errorf("%s: %w: symbolic link leads outside the handler directory or to nothing", name, errUnsafe)
		}
	}
	return nil
}

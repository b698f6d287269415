package rootfs

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FuzzOpenExt4 opens arbitrary bytes as ext4 and walks them: a corrupt
// filesystem must give errors, never a panic (the library's are caught).
func FuzzOpenExt4(f *testing.F) {
	dir := f.TempDir()
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
	os.WriteFile(filepath.Join(tree, "etc", "fstab"), []byte("UUID=x / ext4 defaults 0 1\n"), 0o644)
	os.Symlink("etc", filepath.Join(tree, "link"))
	img := filepath.Join(dir, "small.ext4")
	os.WriteFile(img, nil, 0o644)
	os.Truncate(img, 64<<10)
	if exec.Command("mkfs.ext4", "-q", "-F", "-b", "1024", "-N", "16", "-O", "^has_journal,^resize_inode", "-d", tree, img).Run() == nil {
		if b, err := os.ReadFile(img); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := OpenFS(bytes.NewReader(b), int64(len(b)), "ext4")
		if err != nil {
			return
		}
		n := 0
		fs.WalkDir(tr, ".", func(p string, d fs.DirEntry, err error) error {
			if n++; n > 64 || err != nil {
				return fs.SkipAll
			}
			if !d.IsDir() {
				tr.ReadFile(p)
			}
			return nil
		})
	})
}

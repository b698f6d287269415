package qcow2

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FuzzOpen opens, walks the L1/L2 tables and reads a few clusters of
// arbitrary input. Seeds: small real images qemu-img makes, when it is here.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	src := filepath.Join(dir, "s.raw")
	os.WriteFile(src, bytes.Repeat([]byte("vhdprep!"), 512), 0o644)
	for i, opts := range [][]string{{"-o", "cluster_size=512"}, {"-c", "-o", "cluster_size=512"}, {"-c", "-o", "compression_type=zstd,cluster_size=512"}, {"-o", "compat=0.10,cluster_size=512"}} {
		img := filepath.Join(dir, "s"+string(rune('a'+i))+".qcow2")
		if exec.Command("qemu-img", append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, opts...), src, img)...).Run() == nil {
			if b, err := os.ReadFile(img); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("QFI\xfb\x00\x00\x00\x03"))
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		exts, err := im.Extents()
		if err != nil {
			return
		}
		buf := make([]byte, 1024)
		for _, e := range exts[:min(len(exts), 8)] {
			im.ReadAt(buf, e.Offset)
		}
	})
}

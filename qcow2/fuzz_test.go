package qcow2

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FuzzOpen opens arbitrary input, walks its L1/L2 tables and reads a few
// clusters. Seeds: small images qemu-img makes, when it is here, of every
// kind the reader knows.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	src := filepath.Join(dir, "s.raw")
	// Small seeds keep the fuzzer's minimization of what it finds quick.
	data := make([]byte, 2048)
	copy(data, bytes.Repeat([]byte("vhdprep!"), 64))
	copy(data[1700:], "tail")
	os.WriteFile(src, data, 0o644)
	for i, opts := range [][]string{
		{"-o", "cluster_size=512"},
		{"-c", "-o", "cluster_size=512"},
		{"-c", "-o", "compression_type=zstd,cluster_size=512"},
		{"-o", "compat=0.10,cluster_size=512"},
		{"-o", "cluster_size=512,preallocation=metadata"},
	} {
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
		for i, e := range exts {
			if e.Length <= 0 || e.End() > im.Size() || (i > 0 && e.Offset <= exts[i-1].End()) {
				t.Fatalf("extents out of order or outside the disk: %v", exts)
			}
		}
		buf := make([]byte, 1500) // spans clusters of every size up to 1 KiB
		for _, off := range []int64{0, im.Size() - 700} {
			if off < 0 {
				continue
			}
			n, err := im.ReadAt(buf, off)
			if err == nil && n != len(buf) {
				t.Fatalf("ReadAt at %d returned %d bytes and no error", off, n)
			}
		}
		for _, e := range exts[:min(len(exts), 4)] {
			im.ReadAt(buf, e.Offset)
		}
	})
}

package qcow2

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkSequentialRead reads a 64 MiB image front to back in 1 MiB
// reads, as convert does, from an uncompressed and from compressed images
// qemu-img made of half-compressible data.
func BenchmarkSequentialRead(b *testing.B) {
	const size = 64 << 20
	dir := b.TempDir()
	src := filepath.Join(dir, "src.raw")
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = "abcdefghijklmnop"[rng.IntN(16)]
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts []string
	}{
		{"plain", nil},
		{"zlib", []string{"-c"}},
		{"zstd", []string{"-c", "-o", "compression_type=zstd"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			img := filepath.Join(dir, tc.name+".qcow2")
			qemu(b, "qemu-img", append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, tc.opts...), src, img)...)
			im := open(b, img)
			buf := make([]byte, 1<<20)
			b.SetBytes(size)
			b.ResetTimer()
			for range b.N {
				for off := int64(0); off < size; off += int64(len(buf)) {
					if _, err := im.ReadAt(buf, off); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

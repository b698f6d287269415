package vmdk

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/vhdprep/vhdprep/internal/disktest"
)

// BenchmarkSequentialRead reads a 64 MiB disk front to back in 1 MiB
// reads, as convert does, from a hosted sparse image and from a stream of
// half-compressible data, both laid out as VMware writes them.
func BenchmarkSequentialRead(b *testing.B) {
	const size = 64 << 20
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = "abcdefghijklmnop"[rng.IntN(16)]
	}
	for name, stream := range map[string]bool{"hosted": false, "stream": true} {
		b.Run(name, func(b *testing.B) {
			img := disktest.VMDK(data, 128, 512, stream)
			im, err := Open(bytes.NewReader(img), int64(len(img)), nil)
			if err != nil {
				b.Fatal(err)
			}
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

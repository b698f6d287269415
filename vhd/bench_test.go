package vhd

import (
	"bytes"
	"testing"
)

// BenchmarkDynamicReadAt reads a 64 MiB dynamic disk, every 2 MiB block
// allocated, from memory: the reader's own cost per byte.
func BenchmarkDynamicReadAt(b *testing.B) {
	const size, bs = 64 << 20, 2 << 20
	blocks := map[int][]byte{}
	for i := 0; i < size/bs; i++ {
		blocks[i] = bytes.Repeat([]byte{byte(i + 1)}, bs)
	}
	img := buildDynamic(DiskDynamic, size, bs, blocks).img
	d, err := OpenDynamic(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		b.Fatal(err)
	}
	for _, chunk := range []int{4 << 10, 1 << 20} {
		b.Run(itoa(int64(chunk)), func(b *testing.B) {
			buf := make([]byte, chunk)
			b.SetBytes(size)
			for b.Loop() {
				for off := int64(0); off < size; off += int64(chunk) {
					if _, err := d.ReadAt(buf, off); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

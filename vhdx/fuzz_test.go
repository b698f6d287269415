package vhdx

import (
	"bytes"
	"testing"

	"github.com/vhdprep/vhdprep/internal/disktest"
)

// FuzzOpen opens arbitrary input, walks its BAT and reads a few blocks.
// Seeds: the smallest images the format allows (2 and 3 MiB, where
// qemu-img's are 9), one without a block and one with a block of data.
func FuzzOpen(f *testing.F) {
	data := make([]byte, 4096)
	copy(data[100:], "vhdprep!")
	f.Add(disktest.VHDX(data, 1<<20, false))
	f.Add(disktest.VHDX(make([]byte, 4096), 1<<20, false))
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		disktest.Exercise(t, im)
	})
}

package vhdx

import (
	"bytes"
	"testing"

	"github.com/vhdprep/vhdprep/internal/disktest"
)

// FuzzOpen opens arbitrary input, walks its BAT and reads a few blocks.
// Seeds: small dynamic and fixed images qemu-img makes.
func FuzzOpen(f *testing.F) {
	disktest.Seeds(f, "vhdx", []string{"-o", "subformat=dynamic,block_size=1M"}, []string{"-o", "subformat=fixed,block_size=1M"})
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		disktest.Exercise(t, im)
	})
}

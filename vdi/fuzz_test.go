package vdi

import (
	"bytes"
	"testing"

	"github.com/vhdprep/vhdprep/internal/disktest"
)

// FuzzOpen opens arbitrary input, walks its block map and reads a few
// blocks. Seeds: small dynamic and fixed images qemu-img makes.
func FuzzOpen(f *testing.F) {
	disktest.Seeds(f, "vdi", []string{"-o", "static=off"}, []string{"-o", "static=on"})
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		disktest.Exercise(t, im)
	})
}

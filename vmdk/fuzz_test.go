package vmdk

import (
	"bytes"
	"testing"
	"testing/fstest"

	"github.com/vhdprep/vhdprep/internal/disktest"
)

// FuzzOpen opens arbitrary input, with a directory holding a flat and a
// sparse extent file for descriptors to name, walks its grain tables and
// reads a few grains. Seeds, a few KiB each: hosted sparse and stream
// images made in the test with tiny grains and tables, and a descriptor
// joining extents of every kind.
func FuzzOpen(f *testing.F) {
	data := make([]byte, 8<<10)
	copy(data, bytes.Repeat([]byte("vhdprep!"), 200))
	copy(data[7000:], "tail")
	dir := fstest.MapFS{
		"f.bin":  {Data: data[:4096]},
		"s.vmdk": {Data: disktest.VMDK(data[:4096], 1, 4, false)},
	}
	f.Add(disktest.VMDK(data, 1, 4, false))
	f.Add(disktest.VMDK(data, 2, 4, true))
	f.Add(disktest.VMDKZeroGrain(disktest.VMDK(data, 2, 4, false)))
	f.Add([]byte(DescriptorMagic + "\nCID=1\nparentCID=ffffffff\ncreateType=\"custom\"\n# Extent description\n" +
		"RW 4 FLAT \"f.bin\" 2\nRW 8 SPARSE \"s.vmdk\"\nRW 3 ZERO\nRDONLY 8 VMFS \"f.bin\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := Open(bytes.NewReader(b), int64(len(b)), dir)
		if err != nil {
			return
		}
		defer im.Close()
		disktest.Exercise(t, im)
	})
}

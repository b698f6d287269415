package ova

import (
	"bytes"
	"testing"

	"github.com/vhdprep/vhdprep/internal/disktest"
	"github.com/vhdprep/vhdprep/vmdk"
)

// FuzzOpen opens arbitrary input and reads the disk it finds. Seed: an
// OVA of a few KiB made in the test, its disk a VMDK descriptor of a ZERO
// extent and a flat extent it cannot open.
func FuzzOpen(f *testing.F) {
	f.Add(disktest.Tar(f, "vm.ovf", disktest.OVF("d.vmdk", "e.vmdk"), "d.vmdk", []byte(vmdk.DescriptorMagic+"\ncreateType=\"custom\"\nRW 8 ZERO\n"),
		"e.vmdk", []byte(vmdk.DescriptorMagic+"\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"e-flat.vmdk\" 0\n")))
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		disktest.Exercise(t, im)
	})
}

// Package diskimage knows every container format an image can come in: it
// detects the format by magic, opens any image as a raw.Disk, and implements
// the container operations convert, resize and info on top of the format
// packages (vhd, qcow2, vdi, vhdx, vmdk, ova) and the partition tables (raw/part), and it decides
// whether Azure takes a disk's container (AzureVerdict).
package diskimage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/vhdprep/vhdprep/ova"
	"github.com/vhdprep/vhdprep/vdi"
	"github.com/vhdprep/vhdprep/vhd"
	"github.com/vhdprep/vhdprep/vmdk"
)

// Format names a container format.
type Format string

// The formats vhdprep recognizes. Raw, fixed and dynamic VHD, qcow2, VDI,
// VHDX, VMDK and OVA are read; the others are named so the error can say
// how to convert them.
const (
	Raw             Format = "raw"
	VHDFixed        Format = "vhd-fixed"
	VHDDynamic      Format = "vhd-dynamic"
	VHDDifferencing Format = "vhd-differencing"
	QCOW2           Format = "qcow2"
	VDI             Format = "vdi"
	VHDX            Format = "vhdx"
	VMDK            Format = "vmdk"
	OVA             Format = "ova"
	ISO             Format = "iso"
)

// Magic numbers, and where they stand.
var (
	qcow2Magic      = []byte("QFI\xfb")
	vhdxMagic       = []byte("vhdxfile")
	vhdCookie       = []byte("conectix")
	isoMagic        = []byte("CD001")
	isoMagicOffset  = int64(0x8001) // the first volume descriptor, sector 16 + 1
	sniffHeaderSize = 512
)

// Detect tells the container format of an image of the given size by its
// magic numbers, never by its file name.
func Detect(r io.ReaderAt, size int64) (Format, error) {
	head := make([]byte, min(int64(sniffHeaderSize), size))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return "", err
	}
	switch {
	case bytes.HasPrefix(head, qcow2Magic):
		return QCOW2, nil
	case bytes.HasPrefix(head, vhdxMagic):
		return VHDX, nil
	case vmdk.Detect(head):
		return VMDK, nil
	case ova.Detect(head):
		return OVA, nil
	case len(head) >= vdi.SignatureAt+4 && binary.LittleEndian.Uint32(head[vdi.SignatureAt:]) == vdi.Signature:
		return VDI, nil
	}
	// A dynamic or differencing VHD starts with a copy of its footer; a
	// fixed one has it only at the end.
	if bytes.HasPrefix(head, vhdCookie) {
		if f, err := vhd.ParseFooter(head); err == nil && f.DiskType == vhd.DiskDifferencing {
			return VHDDifferencing, nil
		}
		return VHDDynamic, nil
	}
	if size >= vhd.FooterSize {
		tail := make([]byte, len(vhdCookie))
		if _, err := r.ReadAt(tail, size-vhd.FooterSize); err != nil && err != io.EOF {
			return "", err
		}
		if bytes.Equal(tail, vhdCookie) {
			return VHDFixed, nil
		}
	}
	if size >= isoMagicOffset+int64(len(isoMagic)) {
		magic := make([]byte, len(isoMagic))
		if _, err := r.ReadAt(magic, isoMagicOffset); err != nil && err != io.EOF {
			return "", err
		}
		if bytes.Equal(magic, isoMagic) {
			return ISO, nil
		}
	}
	return Raw, nil
}

// unsupportedHint says how to turn an image of a format vhdprep does not read
// into one it does.
func unsupportedHint(f Format, path string) error {
	switch f {
	case ISO:
		return fmt.Errorf("%s is an ISO 9660 image (installation media), not a disk image; install the system to a disk image first", path)
	case VHDDifferencing:
		return fmt.Errorf("%s is a differencing VHD, which needs its parent; merge the chain first: qemu-img convert -O raw %s disk.raw", path, path)
	}
	return fmt.Errorf("%s: format %s is not supported", path, f)
}

// UnreadableError is an image whose container format vhdprep does not read
// (VMDK, a differencing VHD, an ISO): the container rules still judge it.
type UnreadableError struct {
	Path     string
	Format   Format
	FileSize int64
}

// Error says how to turn the image into one vhdprep reads.
func (e *UnreadableError) Error() string { return ConvertHint(e.Format, e.Path) }

// Readable tells whether vhdprep reads the format's disk.
func (f Format) Readable() bool {
	return f == Raw || f == VHDFixed || f == VHDDynamic || f == QCOW2 || f == VDI || f == VHDX || f == VMDK || f == OVA
}

// ConvertHint says how to make a format vhdprep cannot read readable.
func ConvertHint(f Format, path string) string { return unsupportedHint(f, path).Error() }

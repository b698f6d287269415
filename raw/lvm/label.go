// Package lvm reads LVM2 physical volumes without LVM's tools: the PV
// label, the metadata area (a circular buffer holding the volume group's
// text metadata), and the mapping of linear and striped logical volumes to
// byte ranges on their physical volumes.
package lvm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/vhdprep/vhdprep/raw/probe"
)

// On-disk layout (lib/format_text/layout.h in LVM2).
const (
	sectorSize      = 512
	labelSectors    = 4
	labelID         = "LABELONE"
	labelType       = "LVM2 001"
	mdaMagic        = " LVM2 x[5A%r0N*>"
	mdaHeaderSize   = 512
	crcInitial      = 0xf597a6cf
	rawLocnIgnored  = 1
	maxLocns        = 8       // data and metadata area lists are short; bound them
	maxMetadataSize = 4 << 20 // 4x LVM's default metadata area, and thousands of LVs
)

// Errors.
var (
	ErrNoLabel  = errors.New("no LVM2 label")
	ErrCorrupt  = errors.New("corrupt LVM metadata")
	ErrNotFound = errors.New("not found")
)

// PV is a physical volume as its label and metadata describe it.
type PV struct {
	UUID       string // as LVM prints it, with dashes
	DeviceSize int64
	// VG is the volume group the newest metadata describes.
	VG *VG
}

// crc is LVM's CRC-32: the IEEE polynomial, LVM's initial value, and no
// final inversion.
func crc(b []byte) uint32 { return ^crc32.Update(^uint32(crcInitial), crc32.IEEETable, b) }

type locn struct{ offset, size uint64 }

// ReadPV reads the label, the PV header and the first metadata area of a
// physical volume of size bytes.
func ReadPV(r io.ReaderAt, size int64) (*PV, error) {
	label, err := findLabel(r, size)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	if got, want := crc(label[20:]), le.Uint32(label[16:]); got != want {
		return nil, fmt.Errorf("%w: label CRC %08x, label says %08x", ErrCorrupt, got, want)
	}
	hdrOff := int(le.Uint32(label[20:]))
	if hdrOff < 32 || hdrOff > sectorSize-40 {
		return nil, fmt.Errorf("%w: PV header offset %d", ErrCorrupt, hdrOff)
	}
	h := label[hdrOff:]
	pv := &PV{UUID: probe.LVMUUID(string(h[:32])), DeviceSize: int64(le.Uint64(h[32:]))}
	// Data areas, then metadata areas, each list ended by a zero entry.
	pos := 40
	lists := [2][]locn{}
	for l := range lists {
		for i := 0; ; i++ {
			if pos+16 > len(h) || i > maxLocns {
				return nil, fmt.Errorf("%w: PV header area lists run off the label sector", ErrCorrupt)
			}
			e := locn{le.Uint64(h[pos:]), le.Uint64(h[pos+8:])}
			pos += 16
			if e.offset == 0 {
				break
			}
			lists[l] = append(lists[l], e)
		}
	}
	for _, mda := range lists[1] {
		text, err := readMetadata(r, size, mda)
		if err != nil {
			return nil, err
		}
		if text == nil {
			continue
		}
		vg, err := ParseVG(text)
		if err != nil {
			return nil, err
		}
		pv.VG = vg
		return pv, nil
	}
	return pv, nil // a PV with no metadata area, or one never written
}

func findLabel(r io.ReaderAt, size int64) ([]byte, error) {
	sec := make([]byte, sectorSize)
	for s := int64(0); s < labelSectors; s++ {
		off := s * sectorSize
		if off+sectorSize > size {
			break
		}
		if _, err := r.ReadAt(sec, off); err != nil && err != io.EOF {
			return nil, err
		}
		if string(sec[:8]) == labelID && string(sec[24:32]) == labelType {
			if binary.LittleEndian.Uint64(sec[8:]) != uint64(s) {
				return nil, fmt.Errorf("%w: label in sector %d says sector %d", ErrCorrupt, s, binary.LittleEndian.Uint64(sec[8:]))
			}
			return sec, nil
		}
	}
	return nil, ErrNoLabel
}

// readMetadata reads the newest metadata text of one metadata area. The
// text lives in a circular buffer after the area's header: a copy that runs
// past the area's end continues right after the header.
func readMetadata(r io.ReaderAt, size int64, mda locn) ([]byte, error) {
	if mda.offset > uint64(size) || mda.size < mdaHeaderSize || mda.size > uint64(size)-mda.offset {
		return nil, fmt.Errorf("%w: metadata area %d+%d is outside the device", ErrCorrupt, mda.offset, mda.size)
	}
	hdr := make([]byte, mdaHeaderSize)
	if _, err := r.ReadAt(hdr, int64(mda.offset)); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	if string(hdr[4:20]) != mdaMagic {
		return nil, fmt.Errorf("%w: metadata area header has no magic", ErrCorrupt)
	}
	if got, want := crc(hdr[4:]), le.Uint32(hdr[0:]); got != want {
		return nil, fmt.Errorf("%w: metadata area header CRC %08x, header says %08x", ErrCorrupt, got, want)
	}
	if start := le.Uint64(hdr[24:]); start != mda.offset {
		return nil, fmt.Errorf("%w: metadata area header at %d says it is at %d", ErrCorrupt, mda.offset, start)
	}
	// The first raw location is the committed metadata; an area LVM was
	// told to ignore (pvchange --metadataignore) may hold a stale copy.
	loc := hdr[40:]
	off, n, sum, flags := le.Uint64(loc[0:]), le.Uint64(loc[8:]), le.Uint32(loc[16:]), le.Uint32(loc[20:])
	if off == 0 || n == 0 || flags&rawLocnIgnored != 0 {
		return nil, nil
	}
	area := mda.size - mdaHeaderSize
	if n > maxMetadataSize || n > area || off < mdaHeaderSize || off >= mda.size {
		return nil, fmt.Errorf("%w: metadata of %d bytes at %d in a %d-byte area", ErrCorrupt, n, off, mda.size)
	}
	text := make([]byte, n)
	first := min(n, mda.size-off)
	if _, err := r.ReadAt(text[:first], int64(mda.offset+off)); err != nil {
		return nil, err
	}
	if first < n { // wrapped around
		if _, err := r.ReadAt(text[first:], int64(mda.offset+mdaHeaderSize)); err != nil {
			return nil, err
		}
	}
	if got := crc(text); got != sum {
		return nil, fmt.Errorf("%w: metadata text CRC %08x, header says %08x", ErrCorrupt, got, sum)
	}
	return text, nil
}

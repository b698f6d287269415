// Package vhd implements the VHD (Virtual Hard Disk) format as Microsoft's
// "Virtual Hard Disk Image Format Specification" defines it: the 512-byte
// footer (encode, decode, validate), CHS geometry, and a reader for dynamic
// disks. It depends on nothing but the standard library and raw.Extent.
package vhd

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// FooterSize is the size of the footer at the end of every VHD.
const FooterSize = 512

// Footer field values the specification fixes.
const (
	cookie          = "conectix"
	featureReserved = 0x00000002 // bit 1 must always be set
	formatVersion   = 0x00010000 // 1.0
	fixedDataOffset = 0xFFFFFFFFFFFFFFFF
)

// vhdprep's creator fields. Readers decide from the creator application
// whether the footer's current size or the CHS geometry gives the disk's
// size: qemu-img 7.2 (block/vpc.c) trusts the size only for "win ", "qem2",
// "d2v ", "CTXS" and "tap\0", or when C*H*S is the maximum geometry's, and
// otherwise uses C*H*S*512, which is less than the real size for most sizes
// (20 MiB has 602/4/17, 20955136 bytes). Newer qemu trusts every creator but
// "vpc " and "qemu". "win " is Hyper-V's marker, and Azure runs on Hyper-V:
// every reader takes it to mean "the current size is the size", which is
// what vhdprep writes, and TestOurVHDsReadBackInQemu checks it against the
// installed qemu-img for sizes from 512 bytes to qemu's limit of 2040 GiB.
// The geometry stays the specification's, so readers that go by CHS see
// the disk they always would. (A creator of our own would need the maximum
// geometry to be read right by qemu 7.2, which misstates the geometry of
// every disk below 127 GiB.)
const (
	creatorApp     = "win "
	creatorVersion = 0x00010000
	creatorHostOS  = "Wi2k"
)

// vhdEpoch is the origin of footer timestamps.
var vhdEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Errors. Validate's errors wrap the last two.
var (
	ErrNoCookie     = errors.New("no VHD footer (cookie \"conectix\" missing)")
	ErrShort        = errors.New("file too short for a VHD footer")
	ErrSize         = errors.New("disk size must be a positive multiple of 512")
	ErrDifferencing = errors.New("differencing VHD")
	ErrChecksum     = errors.New("footer checksum mismatch")
	ErrInvalid      = errors.New("footer departs from the VHD specification")
)

// DiskType is the footer's disk type.
type DiskType uint32

// Disk types.
const (
	DiskFixed        DiskType = 2
	DiskDynamic      DiskType = 3
	DiskDifferencing DiskType = 4
)

func (t DiskType) String() string {
	switch t {
	case DiskFixed:
		return "fixed"
	case DiskDynamic:
		return "dynamic"
	case DiskDifferencing:
		return "differencing"
	}
	return fmt.Sprintf("unknown (%d)", uint32(t))
}

// Footer is a decoded VHD footer.
type Footer struct {
	Cookie         string
	Features       uint32
	FormatVersion  uint32
	DataOffset     uint64
	Timestamp      time.Time
	CreatorApp     string
	CreatorVersion uint32
	CreatorHostOS  string
	OriginalSize   int64
	CurrentSize    int64
	Geometry       Geometry
	DiskType       DiskType
	Checksum       uint32
	UniqueID       [16]byte
	SavedState     bool

	// The reserved bytes as read: the checksum covers them.
	reserved [FooterSize - reservedOffset]byte
}

// reservedOffset is where the footer's zero padding starts.
const reservedOffset = 85

// NewFixedFooter returns the footer of a fixed disk of size bytes, with a
// random unique ID.
func NewFixedFooter(size int64, now time.Time) (*Footer, error) {
	if size <= 0 || size%512 != 0 {
		return nil, fmt.Errorf("%w: %d", ErrSize, size)
	}
	f := &Footer{
		Cookie:         cookie,
		Features:       featureReserved,
		FormatVersion:  formatVersion,
		DataOffset:     fixedDataOffset,
		Timestamp:      now.UTC().Truncate(time.Second),
		CreatorApp:     creatorApp,
		CreatorVersion: creatorVersion,
		CreatorHostOS:  creatorHostOS,
		OriginalSize:   size,
		CurrentSize:    size,
		Geometry:       CHS(size),
		DiskType:       DiskFixed,
	}
	if _, err := rand.Read(f.UniqueID[:]); err != nil {
		return nil, err
	}
	f.UniqueID[6] = f.UniqueID[6]&0x0f | 0x40 // an RFC 4122 version 4 UUID
	f.UniqueID[8] = f.UniqueID[8]&0x3f | 0x80
	return f, nil
}

// ParseFooter decodes a footer. Only a missing cookie or short input is an
// error: a footer with a bad checksum or odd fields still decodes, so that
// info can show it and Validate can say what is wrong with it.
func ParseFooter(b []byte) (*Footer, error) {
	if len(b) < FooterSize {
		return nil, ErrShort
	}
	b = b[:FooterSize]
	if string(b[:8]) != cookie {
		return nil, ErrNoCookie
	}
	be := binary.BigEndian
	f := &Footer{
		Cookie:         string(b[0:8]),
		Features:       be.Uint32(b[8:]),
		FormatVersion:  be.Uint32(b[12:]),
		DataOffset:     be.Uint64(b[16:]),
		Timestamp:      vhdEpoch.Add(time.Duration(be.Uint32(b[24:])) * time.Second),
		CreatorApp:     string(b[28:32]),
		CreatorVersion: be.Uint32(b[32:]),
		CreatorHostOS:  string(b[36:40]),
		OriginalSize:   int64(be.Uint64(b[40:])),
		CurrentSize:    int64(be.Uint64(b[48:])),
		Geometry:       Geometry{be.Uint16(b[56:]), b[58], b[59]},
		DiskType:       DiskType(be.Uint32(b[60:])),
		Checksum:       be.Uint32(b[64:]),
		SavedState:     b[84] != 0,
	}
	copy(f.UniqueID[:], b[68:84])
	copy(f.reserved[:], b[reservedOffset:])
	return f, nil
}

// MarshalBinary encodes the footer, with its checksum computed afresh.
func (f *Footer) MarshalBinary() ([]byte, error) {
	if f.CurrentSize < 0 || f.OriginalSize < 0 {
		return nil, fmt.Errorf("vhd: negative size in footer")
	}
	b := make([]byte, FooterSize)
	be := binary.BigEndian
	copy(b[0:8], cookie)
	be.PutUint32(b[8:], f.Features)
	be.PutUint32(b[12:], f.FormatVersion)
	be.PutUint64(b[16:], f.DataOffset)
	be.PutUint32(b[24:], timestamp(f.Timestamp))
	copy(b[28:32], padded(f.CreatorApp))
	be.PutUint32(b[32:], f.CreatorVersion)
	copy(b[36:40], padded(f.CreatorHostOS))
	be.PutUint64(b[40:], uint64(f.OriginalSize))
	be.PutUint64(b[48:], uint64(f.CurrentSize))
	be.PutUint16(b[56:], f.Geometry.Cylinders)
	b[58], b[59] = f.Geometry.Heads, f.Geometry.SectorsPerTrack
	be.PutUint32(b[60:], uint32(f.DiskType))
	copy(b[68:84], f.UniqueID[:])
	if f.SavedState {
		b[84] = 1
	}
	copy(b[reservedOffset:], f.reserved[:])
	f.Checksum = checksum(b, 64)
	be.PutUint32(b[64:], f.Checksum)
	return b, nil
}

// timestamp is t in the footer's unit, clamped to what the field can hold.
func timestamp(t time.Time) uint32 {
	secs := t.Sub(vhdEpoch) / time.Second
	return uint32(max(0, min(secs, math.MaxUint32)))
}

func padded(s string) []byte { return []byte((s + "\x00\x00\x00\x00")[:4]) }

// checksum is the one's complement of the sum of all bytes of b except the
// four at skip (the checksum field itself): the footer's and the dynamic
// header's checksum.
func checksum(b []byte, skip int) uint32 {
	var sum uint32
	for i, c := range b {
		if i < skip || i >= skip+4 {
			sum += uint32(c)
		}
	}
	return ^sum
}

// ReadFooter reads the footer at the end of a VHD file.
func ReadFooter(r io.ReaderAt, fileSize int64) (*Footer, error) {
	if fileSize < FooterSize {
		return nil, ErrShort
	}
	b := make([]byte, FooterSize)
	if _, err := r.ReadAt(b, fileSize-FooterSize); err != nil && err != io.EOF {
		return nil, err
	}
	return ParseFooter(b)
}

// Validate lists every way the footer departs from the specification (what
// rule VHD002 reports); it is empty for a valid footer.
func (f *Footer) Validate() []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
	}
	if f.Cookie != cookie {
		bad("cookie is %q, not %q", f.Cookie, cookie)
	}
	recomputed := *f // MarshalBinary sets Checksum; keep f as read
	if _, err := recomputed.MarshalBinary(); err == nil && recomputed.Checksum != f.Checksum {
		errs = append(errs, fmt.Errorf("%w: %08x, should be %08x", ErrChecksum, f.Checksum, recomputed.Checksum))
	}
	if f.Features&featureReserved == 0 {
		bad("features %#x lack the reserved bit 1 every VHD must set", f.Features)
	}
	if f.FormatVersion != formatVersion {
		bad("format version is %#08x, not 1.0 (0x00010000)", f.FormatVersion)
	}
	switch f.DiskType {
	case DiskFixed:
		if f.DataOffset != fixedDataOffset {
			bad("a fixed disk's data offset must be all ones, not %#x", f.DataOffset)
		}
	case DiskDynamic, DiskDifferencing:
	default:
		bad("disk type is %d, not fixed (2), dynamic (3) or differencing (4)", uint32(f.DiskType))
	}
	if f.CurrentSize <= 0 || f.CurrentSize%512 != 0 {
		bad("current size %d is not a positive multiple of 512", f.CurrentSize)
	}
	return errs
}

// trustedCreators are the creator applications for which qemu-img (7.2,
// block/vpc.c) takes the footer's current size as the disk's size instead of
// C*H*S*512. It compares all four bytes, so "tap" is "tap\x00".
var trustedCreators = [][]byte{[]byte("win "), []byte("qem2"), []byte("d2v "), []byte("CTXS"), []byte("tap\x00")}

// QemuSize is the virtual size qemu-img derives from this footer (what rule
// VHD006 compares with the current size): the current size when the creator
// is one it trusts or C*H*S is the maximum geometry's, else C*H*S*512, which
// Virtual PC also uses. qemu-img 7.2 refuses to open any VHD above 2040 GiB.
func (f *Footer) QemuSize() int64 {
	for _, c := range trustedCreators {
		if bytes.Equal(padded(f.CreatorApp), c) {
			return f.CurrentSize
		}
	}
	// qemu compares the product, not the three fields.
	if f.Geometry.Size() == maxGeometry.Size() {
		return f.CurrentSize
	}
	return f.Geometry.Size()
}

// Package vdi reads VirtualBox disk images (VDI, header version 1.1),
// dynamic and fixed, as the virtual disks they hold. Unallocated and
// discarded blocks read as zeros and are holes in the data extents.
// Differencing images are refused: reading one needs its parent.
package vdi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/vhdprep/vhdprep/internal/blocktable"
	"github.com/vhdprep/vhdprep/raw"
)

// The header, after the 64-byte pre-header text.
const (
	Signature   = 0xbeda107f
	SignatureAt = 0x40 // where the signature stands, for format detection
	version11   = 0x00010001
	headerLen   = 0x200
	textLen     = 0x40
	sectorSize  = 512

	typeDynamic = 1
	typeFixed   = 2
	typeUndo    = 3
	typeDiff    = 4

	// blockUnallocated was never written; blockDiscarded was discarded
	// and reads as zeros. Both read as zeros, as qemu reads them.
	blockUnallocated = 0xffffffff
	blockDiscarded   = 0xfffffffe

	// Block sizes a reader takes: VirtualBox and qemu write 1 MiB.
	minBlockSize = sectorSize
	maxBlockSize = 256 << 20
	// maxVirtualSize is above any disk Azure takes and keeps the offset
	// arithmetic far from overflow.
	maxVirtualSize = 64 << 40
)

// Errors.
var (
	ErrNotVDI       = errors.New("not a VDI image")
	ErrUnsupported  = errors.New("unsupported VDI image")
	ErrCorrupt      = errors.New("corrupt VDI image")
	ErrDifferencing = errors.New("differencing VDI image")
)

// Info is the header's fields, as info shows them.
type Info struct {
	Text            string `json:"text"`
	Version         string `json:"version"`
	Type            string `json:"type"`
	Flags           uint32 `json:"flags"`
	Description     string `json:"description,omitempty"`
	BlockSize       int64  `json:"block_size_bytes,string"`
	Blocks          int64  `json:"blocks"`
	BlocksAllocated int64  `json:"blocks_allocated"`
	Cylinders       uint32 `json:"cylinders"`
	Heads           uint32 `json:"heads"`
	Sectors         uint32 `json:"sectors_per_track"`
	UUID            string `json:"uuid"`
	LastSnapUUID    string `json:"last_snapshot_uuid"`
}

// Image is an open VDI image. It implements raw.Disk and is safe for
// concurrent use.
type Image struct {
	r         io.ReaderAt
	fileSize  int64
	size      int64
	blockSize int64
	dataStart int64
	bmap      *blocktable.Table
	info      Info
}

// Open reads the header of a VDI image of fileSize bytes and checks its
// block map as reads reach it.
func Open(r io.ReaderAt, fileSize int64) (*Image, error) {
	h := make([]byte, headerLen)
	if n, err := r.ReadAt(h, 0); n < len(h) {
		if n >= SignatureAt+4 && binary.LittleEndian.Uint32(h[SignatureAt:]) == Signature {
			return nil, fmt.Errorf("%w: the file ends inside the header (%d bytes)", ErrCorrupt, n)
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		return nil, ErrNotVDI
	}
	le := binary.LittleEndian
	if le.Uint32(h[SignatureAt:]) != Signature {
		return nil, ErrNotVDI
	}
	if v := le.Uint32(h[0x44:]); v != version11 {
		return nil, fmt.Errorf("%w: header version %d.%d (1.1 is read)", ErrUnsupported, v>>16, v&0xffff)
	}
	kind := le.Uint32(h[0x4c:])
	parent := h[0x1b8:0x1c8]
	if kind == typeDiff || kind == typeUndo || !allZero(h[0x1a8:0x1b8]) || !allZero(parent) {
		return nil, fmt.Errorf("%w (parent UUID %s): vhdprep does not follow parent chains; merge it first: VBoxManage clonemedium disk child.vdi merged.vdi", ErrDifferencing, uuid(parent))
	}
	if kind != typeDynamic && kind != typeFixed {
		return nil, fmt.Errorf("%w: image type %d (dynamic 1 and fixed 2 are read)", ErrUnsupported, kind)
	}
	bmapOff, dataOff := int64(le.Uint32(h[0x154:])), int64(le.Uint32(h[0x158:]))
	size := le.Uint64(h[0x170:])
	blockSize := int64(le.Uint32(h[0x178:]))
	extra := le.Uint32(h[0x17c:])
	blocks := int64(le.Uint32(h[0x180:]))
	switch {
	case le.Uint32(h[0x168:]) != sectorSize:
		return nil, fmt.Errorf("%w: sector size %d (512 is read)", ErrUnsupported, le.Uint32(h[0x168:]))
	case blockSize < minBlockSize || blockSize > maxBlockSize || blockSize%sectorSize != 0:
		return nil, fmt.Errorf("%w: block size %d", ErrCorrupt, blockSize)
	case extra != 0:
		return nil, fmt.Errorf("%w: %d bytes of extra data before each block", ErrUnsupported, extra)
	case size > maxVirtualSize:
		return nil, fmt.Errorf("%w: virtual size %d is above the %d bytes this reader takes", ErrUnsupported, size, int64(maxVirtualSize))
	case int64(size) > blocks*blockSize:
		return nil, fmt.Errorf("%w: %d blocks of %d bytes cannot hold %d bytes", ErrCorrupt, blocks, blockSize, size)
	case bmapOff < headerLen || blocks*4 > fileSize-bmapOff:
		return nil, fmt.Errorf("%w: a block map of %d entries at offset %d does not fit a %d-byte file", ErrCorrupt, blocks, bmapOff, fileSize)
	case dataOff < bmapOff+blocks*4 && dataOff+blockSize > bmapOff:
		return nil, fmt.Errorf("%w: the data at offset %d overlaps the block map at %d", ErrCorrupt, dataOff, bmapOff)
	}
	im := &Image{
		r:        r,
		fileSize: fileSize,
		// qemu rounds an odd size (VBoxManage convertfromraw makes them)
		// up to a whole sector; so does this reader, to read the same disk.
		size:      (int64(size) + sectorSize - 1) / sectorSize * sectorSize,
		blockSize: blockSize,
		dataStart: dataOff,
	}
	// Only the entries the disk needs are read.
	used := (im.size + blockSize - 1) / blockSize
	im.bmap = blocktable.New(r, bmapOff, used, 4, "VDI block map", im.checkBlock)
	im.info = Info{
		Text:            string(bytes.TrimRight(bytes.TrimRight(h[:textLen], "\x00"), "\n")),
		Version:         "1.1",
		Type:            map[uint32]string{typeDynamic: "dynamic", typeFixed: "fixed"}[kind],
		Flags:           le.Uint32(h[0x50:]),
		Description:     string(bytes.TrimRight(h[0x54:0x154], "\x00")),
		BlockSize:       blockSize,
		Blocks:          blocks,
		BlocksAllocated: int64(le.Uint32(h[0x184:])),
		Cylinders:       le.Uint32(h[0x15c:]),
		Heads:           le.Uint32(h[0x160:]),
		Sectors:         le.Uint32(h[0x164:]),
		UUID:            uuid(h[0x188:0x198]),
		LastSnapUUID:    uuid(h[0x198:0x1a8]),
	}
	if used > 0 {
		// The first page now, so a map that is plainly wrong is refused at once.
		if _, err := im.bmap.Entry(0); err != nil {
			return nil, err
		}
	}
	return im, nil
}

// checkBlock refuses a block whose data, as far as the disk needs it, lies
// past the end of the file.
func (im *Image) checkBlock(block int64, e uint64) error {
	if e >= blockDiscarded {
		return nil
	}
	need := min(im.blockSize, im.size-block*im.blockSize)
	if start := im.dataStart + int64(e)*im.blockSize; start+need > im.fileSize {
		return fmt.Errorf("%w: block %d at offset %d lies past the end of the %d-byte file (truncated?)", ErrCorrupt, block, start, im.fileSize)
	}
	return nil
}

func allZero(b []byte) bool { return !bytes.ContainsFunc(b, func(r rune) bool { return r != 0 }) }

// uuid formats a UUID VirtualBox stores with its first three fields little
// endian.
func uuid(b []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(b), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16])
}

// Info is the header's fields.
func (im *Image) Info() Info { return im.info }

// Size is the virtual size.
func (im *Image) Size() int64 { return im.size }

// ReadAt reads guest bytes.
func (im *Image) ReadAt(p []byte, off int64) (int, error) {
	p, eof := raw.Window(p, off, im.size)
	if len(p) == 0 {
		return 0, eof
	}
	n, err := blocktable.ReadBlocks(im.r, p, off, im.blockSize, "VDI", func(b int64) (int64, error) {
		e, err := im.bmap.Entry(b)
		if err != nil || e >= blockDiscarded {
			return -1, err
		}
		return im.dataStart + int64(e)*im.blockSize, nil
	})
	if err != nil {
		return n, err
	}
	return n, eof
}

// Extents lists the allocated blocks, coalesced.
func (im *Image) Extents() ([]raw.Extent, error) {
	var exts []raw.Extent
	for b := range im.bmap.Len() {
		e, err := im.bmap.Entry(b)
		if err != nil {
			return nil, err
		}
		if e >= blockDiscarded {
			continue
		}
		// Coalesced as they come: a map of any length costs one extent
		// per run of blocks.
		off := b * im.blockSize
		if n := len(exts); n > 0 && exts[n-1].End() == off {
			exts[n-1].Length += im.blockSize
		} else {
			exts = append(exts, raw.Extent{Offset: off, Length: im.blockSize})
		}
	}
	return raw.Clip(exts, im.size), nil
}

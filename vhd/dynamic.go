package vhd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf16"

	"github.com/vhdprep/vhdprep/raw"
)

// The dynamic disk header.
const (
	headerSize    = 1024
	headerCookie  = "cxsparse"
	headerVersion = 0x00010000
	batUnused     = 0xFFFFFFFF
	sectorSize    = 512
	// Block sizes a reader accepts: the specification's default is 2 MiB;
	// anything outside this range is corrupt or hostile.
	minBlockSize = 512
	maxBlockSize = 256 << 20
	// The BAT is read a page at a time, when a read reaches it, and only a
	// few pages are kept: a header may claim 2^32 entries in a sparse file.
	batPageEntries = 16384 // 64 KiB
	batCachePages  = 64    // 4 MiB
)

// Errors of dynamic disks.
var (
	ErrHeader = errors.New("bad dynamic disk header")
	ErrBAT    = errors.New("bad block allocation table")
)

// Dynamic is a dynamic VHD opened for reading: the disk's bytes, its size
// and which blocks hold data. It is safe for concurrent use.
type Dynamic struct {
	r         io.ReaderAt
	fileSize  int64
	footer    *Footer
	size      int64
	blockSize int64
	bitmapLen int64 // bytes of sector bitmap before each block's data
	blocks    int64 // BAT entries the size needs
	// The file's own structures, which no block may overlap: the footer
	// copy, the dynamic header and the BAT, as [start, end) pairs.
	reserved [3][2]int64

	mu       sync.Mutex
	batPages map[int64][]uint32 // sector offset of each block, or batUnused
}

// OpenDynamic opens a dynamic VHD. Differencing disks are refused with
// ErrDifferencing, naming the parent: reading one needs its parent chain.
func OpenDynamic(r io.ReaderAt, fileSize int64) (*Dynamic, error) {
	if fileSize < FooterSize+headerSize+FooterSize {
		return nil, fmt.Errorf("%w: %d bytes is too short for a dynamic VHD", ErrHeader, fileSize)
	}
	// The copy at the start is authoritative for reading; the one at the end
	// is the one a truncated file loses first.
	head := make([]byte, FooterSize)
	if err := raw.ReadFull(r, head, 0); err != nil {
		return nil, fmt.Errorf("vhd: reading the footer copy at 0: %w", err)
	}
	footer, err := ParseFooter(head)
	if err != nil {
		return nil, err
	}
	if footer.DiskType != DiskDynamic && footer.DiskType != DiskDifferencing {
		return nil, fmt.Errorf("%w: the footer copy at 0 says disk type %s, not dynamic", ErrHeader, footer.DiskType)
	}
	if footer.CurrentSize <= 0 || footer.CurrentSize%sectorSize != 0 {
		return nil, fmt.Errorf("%w: current size %d", ErrHeader, footer.CurrentSize)
	}
	if footer.DataOffset > uint64(fileSize-headerSize) {
		return nil, fmt.Errorf("%w: header offset %d is past the end of the file", ErrHeader, footer.DataOffset)
	}
	h := make([]byte, headerSize)
	if err := raw.ReadFull(r, h, int64(footer.DataOffset)); err != nil {
		return nil, fmt.Errorf("vhd: reading the dynamic header at %d: %w", footer.DataOffset, err)
	}
	if string(h[:8]) != headerCookie {
		return nil, fmt.Errorf("%w: cookie %q at %d, want %q", ErrHeader, h[:8], footer.DataOffset, headerCookie)
	}
	be := binary.BigEndian
	if sum, want := be.Uint32(h[36:]), checksum(h, 36); sum != want {
		return nil, fmt.Errorf("%w: checksum %08x, should be %08x", ErrHeader, sum, want)
	}
	if footer.DiskType == DiskDifferencing {
		return nil, fmt.Errorf("%w (parent %q): vhdprep does not follow parent chains; merge it first: qemu-img convert -O raw child.vhd disk.raw", ErrDifferencing, parentName(h[64:576]))
	}
	batOffset := int64(be.Uint64(h[16:]))
	entries := int64(be.Uint32(h[28:]))
	blockSize := int64(be.Uint32(h[32:]))
	if blockSize < minBlockSize || blockSize > maxBlockSize || blockSize&(blockSize-1) != 0 {
		return nil, fmt.Errorf("%w: block size %d", ErrHeader, blockSize)
	}
	if entries*blockSize < footer.CurrentSize {
		return nil, fmt.Errorf("%w: %d blocks of %d bytes cannot hold %d bytes", ErrBAT, entries, blockSize, footer.CurrentSize)
	}
	// Bound the table by the file before allocating it.
	if batOffset < 0 || batOffset > fileSize || entries*4 > fileSize-batOffset {
		return nil, fmt.Errorf("%w: %d entries at offset %d do not fit in a %d-byte file", ErrBAT, entries, batOffset, fileSize)
	}
	d := &Dynamic{
		r:         r,
		fileSize:  fileSize,
		footer:    footer,
		size:      footer.CurrentSize,
		blockSize: blockSize,
		bitmapLen: (blockSize/sectorSize/8 + sectorSize - 1) / sectorSize * sectorSize,
		blocks:    (footer.CurrentSize + blockSize - 1) / blockSize,
		reserved: [3][2]int64{
			{0, FooterSize},
			{int64(footer.DataOffset), int64(footer.DataOffset) + headerSize},
			{batOffset, batOffset + entries*4},
		},
		batPages: map[int64][]uint32{},
	}
	// The first page now, so a table that is plainly wrong is refused at once.
	if _, err := d.batEntry(0); err != nil {
		return nil, err
	}
	return d, nil
}

// batEntry returns the BAT entry of a block, reading (and checking) the
// page of the table that holds it.
func (d *Dynamic) batEntry(block int64) (uint32, error) {
	page := block / batPageEntries
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.batPages[page]; ok {
		return p[block%batPageEntries], nil
	}
	first := page * batPageEntries
	b := make([]byte, min(batPageEntries, d.blocks-first)*4)
	if err := raw.ReadFull(d.r, b, d.reserved[2][0]+first*4); err != nil {
		return 0, fmt.Errorf("vhd: reading the block allocation table at %d: %w", d.reserved[2][0]+first*4, err)
	}
	p := make([]uint32, len(b)/4)
	for i := range p {
		p[i] = binary.BigEndian.Uint32(b[4*i:])
		if err := d.checkBlock(first+int64(i), p[i]); err != nil {
			return 0, err
		}
	}
	if len(d.batPages) >= batCachePages {
		for k := range d.batPages {
			delete(d.batPages, k)
			break
		}
	}
	d.batPages[page] = p
	return p[block%batPageEntries], nil
}

// checkBlock refuses a block that lies past the end of the file or over
// the file's own structures (a BAT in a hole of a sparse file reads as
// every block at sector 0).
func (d *Dynamic) checkBlock(block int64, entry uint32) error {
	if entry == batUnused {
		return nil
	}
	start := int64(entry) * sectorSize
	end := start + d.bitmapLen + d.blockSize
	if end > d.fileSize {
		return fmt.Errorf("%w: block %d at %d lies past the end of the %d-byte file (truncated?)", ErrBAT, block, start, d.fileSize)
	}
	for _, r := range d.reserved {
		if start < r[1] && end > r[0] {
			return fmt.Errorf("%w: block %d at %d overlaps the file's headers or table at %d-%d", ErrBAT, block, start, r[0], r[1])
		}
	}
	return nil
}

// parentName decodes the header's UTF-16 big-endian parent name.
func parentName(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.BigEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return strings.TrimSpace(string(utf16.Decode(u)))
}

// Footer is the disk's footer (the copy at the start of the file).
func (d *Dynamic) Footer() *Footer { return d.footer }

// Size is the disk's virtual size.
func (d *Dynamic) Size() int64 { return d.size }

// ReadAt reads the disk's bytes. Unallocated blocks, and sectors a block's
// bitmap marks as never written, read as zeros.
func (d *Dynamic) ReadAt(p []byte, off int64) (int, error) {
	p, eof := raw.Window(p, off, d.size)
	if len(p) == 0 {
		return 0, eof
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		block, within := pos/d.blockSize, pos%d.blockSize
		chunk := p[n:min(len(p), n+int(d.blockSize-within))]
		if err := d.readBlockPart(chunk, block, within); err != nil {
			return n, err
		}
		n += len(chunk)
	}
	return n, eof
}

// readBlockPart fills p from one block, starting within bytes into it: one
// read of the block's sector bitmap, then one read per run of sectors the
// bitmap marks alike.
func (d *Dynamic) readBlockPart(p []byte, block, within int64) error {
	entry, err := d.batEntry(block)
	if err != nil {
		return err
	}
	if entry == batUnused {
		clear(p)
		return nil
	}
	blockStart := int64(entry) * sectorSize
	first, last := within/sectorSize, (within+int64(len(p))-1)/sectorSize
	bitmap := make([]byte, last/8-first/8+1)
	if err := raw.ReadFull(d.r, bitmap, blockStart+first/8); err != nil {
		return fmt.Errorf("vhd: reading the sector bitmap of block %d: %w", block, err)
	}
	written := func(sector int64) bool { return bitmap[sector/8-first/8]&(0x80>>(sector%8)) != 0 }
	for pos := int64(0); pos < int64(len(p)); {
		sector := (within + pos) / sectorSize
		run := sector
		for run+1 <= last && written(run+1) == written(sector) {
			run++
		}
		end := min(int64(len(p)), (run+1)*sectorSize-within)
		if !written(sector) {
			clear(p[pos:end])
		} else if err := raw.ReadFull(d.r, p[pos:end], blockStart+d.bitmapLen+within+pos); err != nil {
			return fmt.Errorf("vhd: reading block %d: %w", block, err)
		}
		pos = end
	}
	return nil
}

// Extents lists the allocated blocks, coalesced as the table is read.
func (d *Dynamic) Extents() ([]raw.Extent, error) {
	var exts []raw.Extent
	for i := int64(0); i < d.blocks; i++ {
		entry, err := d.batEntry(i)
		if err != nil {
			return nil, err
		}
		if entry == batUnused {
			continue
		}
		off := i * d.blockSize
		if n := len(exts); n > 0 && exts[n-1].Offset+exts[n-1].Length == off {
			exts[n-1].Length += d.blockSize
			continue
		}
		exts = append(exts, raw.Extent{Offset: off, Length: d.blockSize})
	}
	return raw.Clip(exts, d.size), nil
}

// Package vhdx reads Hyper-V's VHDX images, fixed and dynamic, as the
// virtual disks they hold, following Microsoft's MS-VHDX specification:
// the file type identifier, the current of the two headers (CRC-32C
// checked), the region table, the metadata and the block allocation table
// with its sector-bitmap entries interleaved by the chunk ratio. A log that
// still holds changes (the file was not closed cleanly) is replayed in
// memory, the file never written. Differencing images are refused, naming
// their parent.
package vhdx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"

	"github.com/vhdprep/vhdprep/internal/blocktable"
	"github.com/vhdprep/vhdprep/raw"
)

// The file's fixed layout: the identifier, two headers and two copies of
// the region table, 64 KiB apart, in the first MiB.
const (
	Signature      = "vhdxfile"
	headerSig      = "head"
	regionSig      = "regi"
	metadataSig    = "metadata"
	header1At      = 64 << 10
	header2At      = 128 << 10
	regionAt       = 192 << 10
	headerCRCLen   = 4 << 10  // a header's checksum covers its first 4 KiB
	regionLen      = 64 << 10 // a region table's checksum covers 64 KiB
	maxRegions     = 2047
	metaTableLen   = 64 << 10
	maxMetaEntries = 2047
	headerSection  = 1 << 20 // nothing else lies in the first MiB

	minBlockSize     = 1 << 20
	maxBlockSize     = 256 << 20
	maxSectorsPerMap = 1 << 23 // sectors one sector bitmap block describes
	maxVirtualSize   = 64 << 40
	batOffsetMask    = ^uint64(1<<20 - 1) // the entry's file offset, in MiB

	regionRequired = 1 // a region or metadata item a reader must know
	metaRequired   = 4
	paramsFixed    = 1 // leave blocks allocated
	paramsParent   = 2 // has parent
)

// Payload block states.
const (
	blockNotPresent = 0
	blockUndefined  = 1
	blockZero       = 2
	blockUnmapped   = 3
	blockUnmapped95 = 5 // the value a draft of the specification used
	blockPresent    = 6
	blockPartial    = 7 // differencing images only
)

// Known GUIDs.
var (
	batGUID          = guid("2DC27766-F623-4200-9D64-115E9BFD4A08")
	metadataGUID     = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	fileParamsGUID   = guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	virtualSizeGUID  = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	page83GUID       = guid("BECA12AB-B2E6-4523-93EF-C309E000C746")
	logicalSecGUID   = guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	physicalSecGUID  = guid("CDA348C7-445D-4471-9CC9-E9885251C556")
	parentLocatorGID = guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")

	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// Errors.
var (
	ErrNotVHDX      = errors.New("not a VHDX image")
	ErrCorrupt      = errors.New("corrupt VHDX image")
	ErrUnsupported  = errors.New("unsupported VHDX image")
	ErrLog          = errors.New("the VHDX log holds changes not yet written to the image (it was not closed cleanly)")
	ErrDifferencing = errors.New("differencing VHDX image")
)

// Info is what info shows of a VHDX image.
type Info struct {
	Creator        string `json:"creator"`
	Type           string `json:"type"` // fixed or dynamic
	SequenceNumber uint64 `json:"sequence_number,string"`
	CurrentHeader  int    `json:"current_header"` // 1 or 2
	LogOffset      uint64 `json:"log_offset_bytes,string"`
	LogLength      uint32 `json:"log_length_bytes,string"`
	// LogEntriesReplayed is how many log entries were replayed, in
	// memory: the file itself is unchanged.
	LogEntriesReplayed int    `json:"log_entries_replayed"`
	BlockSize          int64  `json:"block_size_bytes,string"`
	LogicalSectorSize  uint32 `json:"logical_sector_size_bytes,string"`
	PhysicalSectorSize uint32 `json:"physical_sector_size_bytes,string"`
	ChunkRatio         int64  `json:"chunk_ratio"`
	BATEntries         int64  `json:"bat_entries"`
	Page83             string `json:"page83_id"`
	FileWriteGUID      string `json:"file_write_guid"`
	DataWriteGUID      string `json:"data_write_guid"`
}

// Image is an open VHDX image. It implements raw.Disk and is safe for
// concurrent use.
type Image struct {
	r          io.ReaderAt
	fileSize   int64
	size       int64
	blockSize  int64
	chunkRatio int64
	bat        *blocktable.Table
	regions    [][2]int64 // the file's own structures, which no block may overlap
	info       Info
}

// Open reads the headers, region table and metadata of a VHDX image of
// fileSize bytes; the BAT is read as reads reach it.
func Open(r io.ReaderAt, fileSize int64) (*Image, error) {
	id := make([]byte, 8+512)
	if err := raw.ReadFull(r, id, 0); err != nil || string(id[:8]) != Signature {
		if err != nil && string(id[:8]) == Signature {
			return nil, fmt.Errorf("%w: the file ends inside its identifier", ErrCorrupt)
		}
		return nil, ErrNotVHDX
	}
	if fileSize < headerSection {
		return nil, fmt.Errorf("%w: %d bytes is shorter than the 1 MiB header section", ErrCorrupt, fileSize)
	}
	im := &Image{r: r, fileSize: fileSize, regions: [][2]int64{{0, headerSection}}}
	im.info.Creator = utf16String(id[8:])
	h, err := im.readHeader()
	if err != nil {
		return nil, err
	}
	if h.logGUID != [16]byte{} && h.logLength != 0 {
		// The log holds changes the file lacks: read the file as replaying
		// them would leave it, never writing it.
		rp, n, err := replayLog(r, fileSize, h)
		if err != nil {
			return nil, fmt.Errorf("%w (log GUID %s), and vhdprep cannot replay it: %v; replay it by opening the image read-write once, in Hyper-V or with: qemu-img check -r all", ErrLog, guidString(h.logGUID[:]), err)
		}
		im.r, im.fileSize, im.info.LogEntriesReplayed = rp, rp.size, n
	}
	if err := im.readRegions(); err != nil {
		return nil, err
	}
	return im, nil
}

// header is the fields of a header this reader uses.
type header struct {
	seq       uint64
	logGUID   [16]byte
	logOffset uint64
	logLength uint32
}

// readHeader picks the current header: the valid one, or of two valid
// ones the one with the higher sequence number.
func (im *Image) readHeader() (*header, error) {
	var hs [2]*header
	var raws [2][]byte
	for i, at := range []int64{header1At, header2At} {
		b := make([]byte, headerCRCLen)
		if err := raw.ReadFull(im.r, b, at); err != nil {
			return nil, fmt.Errorf("reading VHDX header %d: %w", i+1, err)
		}
		le := binary.LittleEndian
		if string(b[:4]) != headerSig || le.Uint32(b[4:]) != checksum(b, 4) || le.Uint16(b[0x42:]) != 1 {
			continue
		}
		h := &header{seq: le.Uint64(b[8:]), logOffset: le.Uint64(b[0x48:]), logLength: le.Uint32(b[0x44:])}
		copy(h.logGUID[:], b[0x30:0x40])
		hs[i], raws[i] = h, b
	}
	cur := 0
	switch {
	case hs[0] == nil && hs[1] == nil:
		return nil, fmt.Errorf("%w: neither header is valid (signature, CRC-32C or version)", ErrCorrupt)
	case hs[0] == nil:
		cur = 1
	case hs[1] != nil && hs[1].seq > hs[0].seq:
		cur = 1
	case hs[1] != nil && hs[1].seq == hs[0].seq && !bytes.Equal(raws[0][:0x50], raws[1][:0x50]):
		// Disk2VHD writes two identical headers; two different ones
		// with one sequence number leave no way to tell which is current.
		return nil, fmt.Errorf("%w: the two headers differ but have the same sequence number %d", ErrCorrupt, hs[0].seq)
	}
	h, b := hs[cur], raws[cur]
	im.info.CurrentHeader = cur + 1
	im.info.SequenceNumber = h.seq
	im.info.LogOffset, im.info.LogLength = h.logOffset, h.logLength
	im.info.FileWriteGUID = guidString(b[0x10:0x20])
	im.info.DataWriteGUID = guidString(b[0x20:0x30])
	if h.logLength != 0 {
		im.regions = append(im.regions, [2]int64{int64(h.logOffset), int64(h.logOffset) + int64(h.logLength)})
	}
	return h, nil
}

// region is a region table entry.
type region struct{ offset, length int64 }

// readRegions reads the region table, the metadata it locates and the
// BAT's place.
func (im *Image) readRegions() error {
	b := make([]byte, regionLen)
	if err := raw.ReadFull(im.r, b, regionAt); err != nil {
		return fmt.Errorf("reading the VHDX region table: %w", err)
	}
	le := binary.LittleEndian
	if string(b[:4]) != regionSig || le.Uint32(b[4:]) != checksum(b, 4) {
		return fmt.Errorf("%w: the region table's signature or CRC-32C is wrong", ErrCorrupt)
	}
	n := le.Uint32(b[8:])
	if n > maxRegions {
		return fmt.Errorf("%w: %d region table entries, above %d", ErrCorrupt, n, maxRegions)
	}
	var bat, meta *region
	for i := range int(n) {
		e := b[16+32*i:]
		g := [16]byte(e[:16])
		off, length := le.Uint64(e[16:]), le.Uint32(e[24:])
		if off%headerSection != 0 || off < headerSection || off > uint64(im.fileSize) || int64(length) > im.fileSize-int64(off) {
			return fmt.Errorf("%w: region %s at offset %d, %d bytes, does not fit the %d-byte file", ErrCorrupt, guidString(g[:]), off, length, im.fileSize)
		}
		reg := &region{int64(off), int64(length)}
		if err := im.claim(reg.offset, reg.length, "region "+guidString(g[:])); err != nil {
			return err
		}
		switch {
		case g == batGUID && bat == nil:
			bat = reg
		case g == metadataGUID && meta == nil:
			meta = reg
		case g == batGUID || g == metadataGUID:
			return fmt.Errorf("%w: region %s appears twice", ErrCorrupt, guidString(g[:]))
		case le.Uint32(e[28:])&regionRequired != 0:
			return fmt.Errorf("%w: a required region %s this reader does not know", ErrUnsupported, guidString(g[:]))
		}
	}
	if bat == nil || meta == nil {
		return fmt.Errorf("%w: the region table lacks the BAT or the metadata", ErrCorrupt)
	}
	if err := im.readMetadata(meta); err != nil {
		return err
	}
	return im.openBAT(bat)
}

// claim records a structure of the file, refusing one that overlaps
// another.
func (im *Image) claim(start, length int64, what string) error {
	for _, r := range im.regions {
		if start < r[1] && start+length > r[0] {
			return fmt.Errorf("%w: %s at offset %d overlaps another structure at %d-%d", ErrCorrupt, what, start, r[0], r[1])
		}
	}
	im.regions = append(im.regions, [2]int64{start, start + length})
	return nil
}

// readMetadata reads the metadata table and the items the disk needs.
func (im *Image) readMetadata(meta *region) error {
	if meta.length < metaTableLen {
		return fmt.Errorf("%w: a metadata region of %d bytes cannot hold its table", ErrCorrupt, meta.length)
	}
	t := make([]byte, metaTableLen)
	if err := raw.ReadFull(im.r, t, meta.offset); err != nil {
		return fmt.Errorf("reading the VHDX metadata table: %w", err)
	}
	le := binary.LittleEndian
	if string(t[:8]) != metadataSig {
		return fmt.Errorf("%w: the metadata table's signature is %q", ErrCorrupt, t[:8])
	}
	n := int(le.Uint16(t[10:]))
	if n > maxMetaEntries {
		return fmt.Errorf("%w: %d metadata entries, above %d", ErrCorrupt, n, maxMetaEntries)
	}
	items := map[[16]byte][]byte{}
	for i := range n {
		e := t[32+32*i:]
		g := [16]byte(e[:16])
		off, length, flags := le.Uint32(e[16:]), le.Uint32(e[20:]), le.Uint32(e[24:])
		known := g == fileParamsGUID || g == virtualSizeGUID || g == page83GUID || g == logicalSecGUID || g == physicalSecGUID || g == parentLocatorGID
		if !known {
			if flags&metaRequired != 0 {
				return fmt.Errorf("%w: a required metadata item %s this reader does not know", ErrUnsupported, guidString(g[:]))
			}
			continue
		}
		if _, dup := items[g]; dup {
			return fmt.Errorf("%w: metadata item %s appears twice", ErrCorrupt, guidString(g[:]))
		}
		if int64(off) < metaTableLen || int64(off)+int64(length) > meta.length || length > 1<<20 {
			return fmt.Errorf("%w: metadata item %s at %d, %d bytes, lies outside the %d-byte metadata region", ErrCorrupt, guidString(g[:]), off, length, meta.length)
		}
		b := make([]byte, length)
		if err := raw.ReadFull(im.r, b, meta.offset+int64(off)); err != nil {
			return fmt.Errorf("reading VHDX metadata item %s: %w", guidString(g[:]), err)
		}
		items[g] = b
	}
	for g, want := range map[[16]byte]int{fileParamsGUID: 8, virtualSizeGUID: 8, page83GUID: 16, logicalSecGUID: 4, physicalSecGUID: 4} {
		if len(items[g]) < want {
			return fmt.Errorf("%w: metadata item %s is missing or short", ErrCorrupt, guidString(g[:]))
		}
	}
	params := items[fileParamsGUID]
	im.blockSize = int64(le.Uint32(params))
	flags := le.Uint32(params[4:])
	if flags&paramsParent != 0 {
		return fmt.Errorf("%w (parent %s): vhdprep does not follow parent chains; merge it first (Hyper-V's Edit Disk, or: qemu-img convert -O raw child.vhdx disk.raw)", ErrDifferencing, parentPath(items[parentLocatorGID]))
	}
	im.info.Type = "dynamic"
	if flags&paramsFixed != 0 {
		im.info.Type = "fixed"
	}
	size := le.Uint64(items[virtualSizeGUID])
	logical, physical := le.Uint32(items[logicalSecGUID]), le.Uint32(items[physicalSecGUID])
	switch {
	case im.blockSize < minBlockSize || im.blockSize > maxBlockSize || im.blockSize&(im.blockSize-1) != 0:
		return fmt.Errorf("%w: block size %d (a power of two from 1 MiB to 256 MiB)", ErrCorrupt, im.blockSize)
	case logical != 512 && logical != 4096:
		return fmt.Errorf("%w: logical sector size %d (512 or 4096)", ErrCorrupt, logical)
	case physical != 512 && physical != 4096:
		return fmt.Errorf("%w: physical sector size %d (512 or 4096)", ErrCorrupt, physical)
	case size == 0 || size%uint64(logical) != 0:
		return fmt.Errorf("%w: virtual size %d is not a whole number of %d-byte sectors", ErrCorrupt, size, logical)
	case size > maxVirtualSize:
		return fmt.Errorf("%w: virtual size %d is above VHDX's 64 TiB", ErrCorrupt, size)
	}
	im.size = int64(size)
	im.chunkRatio = maxSectorsPerMap * int64(logical) / im.blockSize
	im.info.BlockSize = im.blockSize
	im.info.LogicalSectorSize, im.info.PhysicalSectorSize = logical, physical
	im.info.ChunkRatio = im.chunkRatio
	im.info.Page83 = guidString(items[page83GUID])
	return nil
}

// openBAT checks the BAT region holds an entry for every block, and one
// for the sector bitmap after every chunk ratio of them.
func (im *Image) openBAT(bat *region) error {
	blocks := (im.size + im.blockSize - 1) / im.blockSize
	entries := blocks + (blocks-1)/im.chunkRatio
	if entries*8 > bat.length {
		return fmt.Errorf("%w: a BAT region of %d bytes cannot hold the %d entries of %d blocks", ErrCorrupt, bat.length, entries, blocks)
	}
	im.info.BATEntries = entries
	im.bat = blocktable.New(im.r, bat.offset, entries, 8, "VHDX BAT", im.checkEntry)
	_, err := im.bat.Entry(0)
	return err
}

// checkEntry refuses a payload entry of unknown state, or whose data lies
// past the file's end or over its own structures. Sector bitmap entries
// matter only to differencing images.
func (im *Image) checkEntry(i int64, e uint64) error {
	if (i+1)%(im.chunkRatio+1) == 0 {
		return nil
	}
	block := i - i/(im.chunkRatio+1)
	switch e & 7 {
	case blockNotPresent, blockUndefined, blockZero, blockUnmapped, blockUnmapped95:
		return nil
	case blockPresent:
	case blockPartial:
		return fmt.Errorf("%w: block %d is partially present, which only a differencing image may be", ErrCorrupt, block)
	default:
		return fmt.Errorf("%w: block %d has the unknown state %d", ErrCorrupt, block, e&7)
	}
	start := int64(e & batOffsetMask)
	need := min(im.blockSize, im.size-block*im.blockSize)
	if start < headerSection || start > im.fileSize-need {
		return fmt.Errorf("%w: block %d at offset %d lies past the end of the %d-byte file (truncated?)", ErrCorrupt, block, start, im.fileSize)
	}
	for _, r := range im.regions {
		if start < r[1] && start+need > r[0] {
			return fmt.Errorf("%w: block %d at offset %d overlaps the file's structures at %d-%d", ErrCorrupt, block, start, r[0], r[1])
		}
	}
	return nil
}

// Info describes the image.
func (im *Image) Info() Info { return im.info }

// Size is the virtual size.
func (im *Image) Size() int64 { return im.size }

// block returns where a block's data lies in the file, or -1 when it
// reads as zeros.
func (im *Image) block(b int64) (int64, error) {
	e, err := im.bat.Entry(b + b/im.chunkRatio)
	if err != nil || e&7 != blockPresent {
		return -1, err
	}
	return int64(e & batOffsetMask), nil
}

// ReadAt reads guest bytes.
func (im *Image) ReadAt(p []byte, off int64) (int, error) {
	p, eof := raw.Window(p, off, im.size)
	if len(p) == 0 {
		return 0, eof
	}
	n, err := blocktable.ReadBlocks(im.r, p, off, im.blockSize, "VHDX", im.block)
	if err != nil {
		return n, err
	}
	return n, eof
}

// Extents lists the fully present blocks, coalesced as the BAT is read.
func (im *Image) Extents() ([]raw.Extent, error) {
	var exts []raw.Extent
	blocks := (im.size + im.blockSize - 1) / im.blockSize
	for b := range blocks {
		start, err := im.block(b)
		if err != nil {
			return nil, err
		}
		if start < 0 {
			continue
		}
		off := b * im.blockSize
		if n := len(exts); n > 0 && exts[n-1].End() == off {
			exts[n-1].Length += im.blockSize
		} else {
			exts = append(exts, raw.Extent{Offset: off, Length: im.blockSize})
		}
	}
	return raw.Clip(exts, im.size), nil
}

// checksum is the CRC-32C of b with its own checksum field, at at, as zero.
func checksum(b []byte, at int) uint32 {
	c := crc32.Update(0, castagnoli, b[:at])
	c = crc32.Update(c, castagnoli, make([]byte, 4))
	return crc32.Update(c, castagnoli, b[at+4:])
}

// guid is a GUID's text as the file stores it: the first three fields
// little endian.
func guid(s string) [16]byte {
	var g [16]byte
	var d [16]byte
	h := strings.ReplaceAll(s, "-", "")
	for i := range d {
		fmt.Sscanf(h[2*i:2*i+2], "%02x", &d[i])
	}
	le, be := binary.LittleEndian, binary.BigEndian
	le.PutUint32(g[0:], be.Uint32(d[0:]))
	le.PutUint16(g[4:], be.Uint16(d[4:]))
	le.PutUint16(g[6:], be.Uint16(d[6:]))
	copy(g[8:], d[8:])
	return g
}

// guidString is the text of a GUID as the file stores it.
func guidString(b []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(b), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16])
}

// utf16String decodes UTF-16LE up to its first NUL.
func utf16String(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// parentPath is the parent's path a parent locator names: its relative
// path, else its absolute or volume path.
func parentPath(loc []byte) string {
	if len(loc) < 20 {
		return "no parent locator"
	}
	le := binary.LittleEndian
	n := int(le.Uint16(loc[18:]))
	kv := map[string]string{}
	for i := range n {
		e := 20 + 12*i
		if e+12 > len(loc) {
			break
		}
		ko, vo := int(le.Uint32(loc[e:])), int(le.Uint32(loc[e+4:]))
		kl, vl := int(le.Uint16(loc[e+8:])), int(le.Uint16(loc[e+10:]))
		if ko+kl > len(loc) || vo+vl > len(loc) {
			continue
		}
		kv[utf16String(loc[ko:ko+kl])] = utf16String(loc[vo : vo+vl])
	}
	for _, k := range []string{"relative_path", "absolute_win32_path", "volume_path"} {
		if v := kv[k]; v != "" {
			return fmt.Sprintf("%q", v)
		}
	}
	return "not named"
}

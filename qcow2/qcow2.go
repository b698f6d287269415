// Package qcow2 reads QEMU's qcow2 images (versions 2 and 3, with zlib or
// zstd compressed clusters) as the virtual disks they hold, following
// qemu's docs/interop/qcow2.txt. Images with a backing file, encryption, an
// external data file or extended L2 entries are refused with the reason.
package qcow2

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/vhdprep/vhdprep/raw"
)

// Header layout and flags.
const (
	magic           = "QFI\xfb"
	v2HeaderLen     = 72
	v3MinHeaderLen  = 104
	minClusterBits  = 9
	maxClusterBits  = 21
	maxVirtualSize  = 64 << 40 // above any disk Azure takes; keeps arithmetic safe
	offsetMask      = 0x00fffffffffffe00
	l2Compressed    = 1 << 62
	l2ZeroFlag      = 1 << 0
	incompatDirty   = 1 << 0
	incompatCorrupt = 1 << 1
	incompatExtData = 1 << 2
	incompatCompr   = 1 << 3
	incompatExtL2   = 1 << 4
	compressZlib    = 0
	compressZstd    = 1
	// maxCacheBytes bounds the L2 tables kept in memory.
	maxCacheBytes = 8 << 20
)

// Errors.
var (
	ErrNotQcow2    = errors.New("not a qcow2 image")
	ErrBackingFile = errors.New("the image has a backing file")
	ErrUnsupported = errors.New("unsupported qcow2 feature")
	ErrCorrupt     = errors.New("corrupt qcow2 image")
)

// Image is an open qcow2 image. It implements raw.Disk and is safe for
// concurrent use.
type Image struct {
	r           io.ReaderAt
	fileSize    int64
	version     int
	clusterBits uint
	clusterSize int64
	l2Entries   int64
	size        int64
	compression int
	l1          []uint64

	mu      sync.Mutex
	l2Cache map[uint64][]uint64 // by host offset of the table
	l2Order []uint64            // insertion order, for eviction
	// The last cluster decompressed: small reads (a filesystem's 4 KiB
	// blocks) would otherwise decompress the same cluster again and again.
	lastOffset int64
	lastData   []byte
}

// Open reads the header and L1 table of a qcow2 image.
func Open(r io.ReaderAt, fileSize int64) (*Image, error) {
	h := make([]byte, v3MinHeaderLen+8)
	n, err := r.ReadAt(h, 0)
	if n < v2HeaderLen {
		if err == nil || err == io.EOF {
			err = fmt.Errorf("%w: the file is too short for a header", ErrCorrupt)
		}
		return nil, err
	}
	h = h[:n]
	be := binary.BigEndian
	if string(h[:4]) != magic {
		return nil, ErrNotQcow2
	}
	im := &Image{r: r, fileSize: fileSize, version: int(be.Uint32(h[4:])), l2Cache: map[uint64][]uint64{}}
	if im.version != 2 && im.version != 3 {
		return nil, fmt.Errorf("%w: version %d", ErrUnsupported, im.version)
	}
	if off := be.Uint64(h[8:]); off != 0 {
		return nil, fmt.Errorf("%w (%s); flatten it first: qemu-img convert -O qcow2 image.qcow2 flat.qcow2", ErrBackingFile, backingName(r, off, be.Uint32(h[16:]), fileSize))
	}
	im.clusterBits = uint(be.Uint32(h[20:]))
	if im.clusterBits < minClusterBits || im.clusterBits > maxClusterBits {
		return nil, fmt.Errorf("%w: cluster bits %d", ErrCorrupt, im.clusterBits)
	}
	im.clusterSize = 1 << im.clusterBits
	im.l2Entries = im.clusterSize / 8
	size := be.Uint64(h[24:])
	if size > maxVirtualSize {
		return nil, fmt.Errorf("%w: virtual size %d", ErrCorrupt, size)
	}
	im.size = int64(size)
	if crypt := be.Uint32(h[32:]); crypt != 0 {
		return nil, fmt.Errorf("%w: encrypted (method %d); decrypt it first: qemu-img convert --object secret,... -O qcow2", ErrUnsupported, crypt)
	}
	if im.version == 3 {
		if err := im.readV3Header(h); err != nil {
			return nil, err
		}
	}
	if err := im.readL1(int64(be.Uint32(h[36:])), be.Uint64(h[40:])); err != nil {
		return nil, err
	}
	return im, nil
}

func (im *Image) readV3Header(h []byte) error {
	be := binary.BigEndian
	if len(h) < v3MinHeaderLen {
		return fmt.Errorf("%w: version 3 header too short", ErrCorrupt)
	}
	incompat := be.Uint64(h[72:])
	switch {
	case incompat&incompatCorrupt != 0:
		return fmt.Errorf("%w: qemu marked the image corrupt; repair it first: qemu-img check -r all", ErrCorrupt)
	case incompat&incompatExtData != 0:
		return fmt.Errorf("%w: external data file", ErrUnsupported)
	case incompat&incompatExtL2 != 0:
		return fmt.Errorf("%w: extended L2 entries (subclusters); rewrite it: qemu-img convert -O qcow2 in.qcow2 out.qcow2", ErrUnsupported)
	case incompat&^(incompatDirty|incompatCompr) != 0:
		return fmt.Errorf("%w: incompatible feature bits %#x", ErrUnsupported, incompat)
	}
	headerLen := be.Uint32(h[100:])
	if incompat&incompatCompr != 0 {
		if headerLen <= v3MinHeaderLen || len(h) <= v3MinHeaderLen {
			return fmt.Errorf("%w: compression type flagged but missing", ErrCorrupt)
		}
		im.compression = int(h[104])
	}
	if im.compression != compressZlib && im.compression != compressZstd {
		return fmt.Errorf("%w: compression type %d", ErrUnsupported, im.compression)
	}
	return nil
}

func (im *Image) readL1(entries int64, offset uint64) error {
	needed := (im.size + im.clusterSize*im.l2Entries - 1) / (im.clusterSize * im.l2Entries)
	if entries < needed || entries*8 > im.fileSize || offset > uint64(im.fileSize-entries*8) {
		return fmt.Errorf("%w: L1 table of %d entries at %d does not fit the image", ErrCorrupt, entries, offset)
	}
	b := make([]byte, needed*8)
	if _, err := im.r.ReadAt(b, int64(offset)); err != nil {
		return fmt.Errorf("reading the L1 table: %w", err)
	}
	im.l1 = make([]uint64, needed)
	for i := range im.l1 {
		im.l1[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	return nil
}

func backingName(r io.ReaderAt, off uint64, n uint32, fileSize int64) string {
	if n == 0 || n > 1023 || off >= uint64(fileSize) {
		return "unreadable name"
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, int64(off)); err != nil && err != io.EOF {
		return "unreadable name"
	}
	return fmt.Sprintf("%q", bytes.TrimRight(b, "\x00"))
}

// Version is the image's qcow2 version, 2 or 3.
func (im *Image) Version() int { return im.version }

// Size is the virtual size.
func (im *Image) Size() int64 { return im.size }

// cluster is what one L2 entry says of a guest cluster.
type cluster struct {
	kind   clusterKind
	offset int64 // host offset of the data (or compressed data)
	length int64 // compressed length
}

type clusterKind int

const (
	unallocated clusterKind = iota
	zero
	data
	compressed
)

// lookup finds where guest cluster index vc lives.
func (im *Image) lookup(vc int64) (cluster, error) {
	l1e := im.l1[vc/im.l2Entries] & offsetMask
	if l1e == 0 {
		return cluster{}, nil
	}
	l2, err := im.l2Table(l1e)
	if err != nil {
		return cluster{}, err
	}
	e := l2[vc%im.l2Entries]
	if e&l2Compressed != 0 {
		x := 62 - (im.clusterBits - 8)
		off := int64(e & (1<<x - 1))
		sectors := int64((e >> x) & (1<<(62-x) - 1))
		length := (sectors+1)*512 - off%512
		if off+length > im.fileSize {
			length = im.fileSize - off // the last cluster's sector count may overshoot the file
		}
		if off >= im.fileSize || length <= 0 {
			return cluster{}, fmt.Errorf("%w: compressed cluster at %d is past the end", ErrCorrupt, off)
		}
		return cluster{kind: compressed, offset: off, length: length}, nil
	}
	if im.version == 3 && e&l2ZeroFlag != 0 {
		return cluster{kind: zero}, nil
	}
	off := int64(e & offsetMask)
	if off == 0 {
		return cluster{}, nil
	}
	if off%im.clusterSize != 0 || off+im.clusterSize > im.fileSize+im.clusterSize {
		return cluster{}, fmt.Errorf("%w: data cluster at %d", ErrCorrupt, off)
	}
	return cluster{kind: data, offset: off}, nil
}

// l2Table returns the L2 table at a host offset, from the cache or the file.
func (im *Image) l2Table(off uint64) ([]uint64, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if t, ok := im.l2Cache[off]; ok {
		return t, nil
	}
	if off%uint64(im.clusterSize) != 0 || int64(off) > im.fileSize-im.clusterSize {
		return nil, fmt.Errorf("%w: L2 table at %d", ErrCorrupt, off)
	}
	b := make([]byte, im.clusterSize)
	if _, err := im.r.ReadAt(b, int64(off)); err != nil {
		return nil, fmt.Errorf("reading an L2 table: %w", err)
	}
	t := make([]uint64, im.l2Entries)
	for i := range t {
		t[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	for int64(len(im.l2Order)+1)*im.clusterSize > maxCacheBytes && len(im.l2Order) > 0 {
		delete(im.l2Cache, im.l2Order[0])
		im.l2Order = im.l2Order[1:]
	}
	im.l2Cache[off] = t
	im.l2Order = append(im.l2Order, off)
	return t, nil
}

// ReadAt reads guest bytes.
func (im *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("qcow2: negative offset")
	}
	if off >= im.size {
		return 0, io.EOF
	}
	var eof error
	if rest := im.size - off; int64(len(p)) > rest {
		p, eof = p[:rest], io.EOF
	}
	for n := 0; n < len(p); {
		pos := off + int64(n)
		within := pos % im.clusterSize
		chunk := p[n:min(len(p), n+int(im.clusterSize-within))]
		c, err := im.lookup(pos / im.clusterSize)
		if err == nil {
			err = im.readCluster(chunk, c, within)
		}
		if err != nil {
			return n, err
		}
		n += len(chunk)
	}
	return len(p), eof
}

func (im *Image) readCluster(p []byte, c cluster, within int64) error {
	switch c.kind {
	case data:
		_, err := im.r.ReadAt(p, c.offset+within)
		if err == io.EOF {
			// qemu does not always extend the file to the end of the
			// last cluster: what is missing reads as zeros.
			avail := max(0, im.fileSize-(c.offset+within))
			if avail < int64(len(p)) {
				clear(p[avail:])
				return nil
			}
		}
		return err
	case compressed:
		buf, err := im.cachedInflate(c)
		if err != nil {
			return err
		}
		copy(p, buf[within:])
		return nil
	}
	clear(p)
	return nil
}

func (im *Image) cachedInflate(c cluster) ([]byte, error) {
	im.mu.Lock()
	if im.lastData != nil && im.lastOffset == c.offset {
		defer im.mu.Unlock()
		return im.lastData, nil
	}
	im.mu.Unlock()
	buf, err := im.inflate(c)
	if err != nil {
		return nil, err
	}
	im.mu.Lock()
	im.lastOffset, im.lastData = c.offset, buf
	im.mu.Unlock()
	return buf, nil
}

// inflate decompresses one cluster, never producing more than a cluster.
func (im *Image) inflate(c cluster) ([]byte, error) {
	comp := make([]byte, c.length)
	if n, err := im.r.ReadAt(comp, c.offset); err != nil && !(err == io.EOF && n > 0) {
		return nil, fmt.Errorf("reading a compressed cluster: %w", err)
	}
	out := make([]byte, im.clusterSize)
	var rd io.Reader
	switch im.compression {
	case compressZlib:
		rd = flate.NewReader(bytes.NewReader(comp)) // raw deflate, as qemu writes it
	case compressZstd:
		// The sectors holding a cluster end in padding after the frame,
		// so decode as a stream and stop at one cluster, as qemu does.
		dec, err := zstd.NewReader(bytes.NewReader(comp), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(4*im.clusterSize)))
		if err != nil {
			return nil, err
		}
		defer dec.Close()
		rd = dec
	}
	if _, err := io.ReadFull(rd, out); err != nil {
		return nil, fmt.Errorf("%w: compressed cluster at %d: %v", ErrCorrupt, c.offset, err)
	}
	return out, nil
}

// Extents lists the guest ranges backed by data or compressed clusters;
// unallocated and zero clusters are left out.
func (im *Image) Extents() ([]raw.Extent, error) {
	var exts []raw.Extent
	clusters := (im.size + im.clusterSize - 1) / im.clusterSize
	for l1i, l1e := range im.l1 {
		if l1e&offsetMask == 0 {
			continue
		}
		for j := int64(0); j < im.l2Entries; j++ {
			vc := int64(l1i)*im.l2Entries + j
			if vc >= clusters {
				break
			}
			c, err := im.lookup(vc)
			if err != nil {
				return nil, err
			}
			if c.kind != data && c.kind != compressed {
				continue
			}
			if n := len(exts); n > 0 && exts[n-1].End() == vc*im.clusterSize {
				exts[n-1].Length += im.clusterSize
			} else {
				exts = append(exts, raw.Extent{Offset: vc * im.clusterSize, Length: im.clusterSize})
			}
		}
	}
	return raw.Clip(exts, im.size), nil
}

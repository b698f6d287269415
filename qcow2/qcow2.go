// Package qcow2 reads QEMU's qcow2 images (versions 2 and 3, with zlib or
// zstd compressed clusters) as the virtual disks they hold, following
// qemu's docs/interop/qcow2.txt. Images with a backing file, encryption, an
// external data file or extended L2 entries are refused with the reason.
package qcow2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"

	"github.com/vhdprep/vhdprep/internal/lru"
	"github.com/vhdprep/vhdprep/raw"
)

// Header layout and flags.
const (
	magic          = "QFI\xfb"
	v2HeaderLen    = 72
	v3MinHeaderLen = 104
	minClusterBits = 9
	maxClusterBits = 21
	maxBackingName = 1023
	// maxVirtualSize is above any disk Azure takes and keeps the offset
	// arithmetic far from overflow.
	maxVirtualSize = 64 << 40
	// maxL1Entries is QEMU's limit on the L1 table (QCOW_MAX_L1_SIZE, 32
	// MiB): no image qemu-img makes or opens has more.
	maxL1Entries = 32 << 20 / 8
	// l1Chunk is how many L1 entries are read at a time.
	l1Chunk = 8192

	offsetMask   = 0x00fffffffffffe00 // host offset in L1 and standard L2 entries
	l2Compressed = 1 << 62
	l2ZeroFlag   = 1 << 0 // version 3 only
	sectorSize   = 512    // unit of compressed cluster lengths

	incompatDirty   = 1 << 0
	incompatCorrupt = 1 << 1
	incompatExtData = 1 << 2
	incompatCompr   = 1 << 3
	incompatExtL2   = 1 << 4

	compressZlib = 0
	compressZstd = 1

	// The caches hold a few MiB each, and always at least one table or
	// cluster, whatever the cluster size.
	l2CacheBytes      = 4 << 20
	clusterCacheBytes = 4 << 20
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
	l2Entries   int64 // entries per L2 table
	size        int64
	compression int
	l1          []uint64 // only the entries the virtual size needs

	l2s      *lru.Cache // L2 tables, by host offset
	clusters *lru.Cache // decompressed clusters, by host offset
	decoders sync.Pool  // *decoder, reused: making one costs more than a cluster
}

// Open reads the header and L1 table of a qcow2 image of fileSize bytes.
func Open(r io.ReaderAt, fileSize int64) (*Image, error) {
	h := make([]byte, v3MinHeaderLen+8)
	n, err := r.ReadAt(h, 0)
	if n < len(magic) || string(h[:len(magic)]) != magic {
		if err != nil && err != io.EOF {
			return nil, err
		}
		return nil, ErrNotQcow2
	}
	if n < v2HeaderLen {
		return nil, fmt.Errorf("%w: the file ends inside the header (%d bytes)", ErrCorrupt, n)
	}
	h = h[:n]
	be := binary.BigEndian
	im := &Image{
		r:        r,
		fileSize: fileSize,
		version:  int(be.Uint32(h[4:])),
		l2s:      lru.New(l2CacheBytes),
		clusters: lru.New(clusterCacheBytes),
	}
	if im.version != 2 && im.version != 3 {
		return nil, fmt.Errorf("%w: version %d (only 2 and 3 exist)", ErrUnsupported, im.version)
	}
	if off := be.Uint64(h[8:]); off != 0 {
		return nil, fmt.Errorf("%w (%s); flatten it into a standalone image first: qemu-img convert -O qcow2 in.qcow2 out.qcow2",
			ErrBackingFile, backingName(r, off, be.Uint32(h[16:]), fileSize))
	}
	im.clusterBits = uint(be.Uint32(h[20:]))
	if im.clusterBits < minClusterBits || im.clusterBits > maxClusterBits {
		return nil, fmt.Errorf("%w: cluster bits %d, outside %d..%d", ErrCorrupt, im.clusterBits, minClusterBits, maxClusterBits)
	}
	im.clusterSize = 1 << im.clusterBits
	im.l2Entries = im.clusterSize / 8
	size := be.Uint64(h[24:])
	if size > maxVirtualSize {
		return nil, fmt.Errorf("%w: virtual size %d is above the %d bytes this reader takes", ErrUnsupported, size, int64(maxVirtualSize))
	}
	im.size = int64(size)
	if crypt := be.Uint32(h[32:]); crypt != 0 {
		return nil, fmt.Errorf("%w: encrypted (method %d); decrypt it first: qemu-img convert --object secret,id=s,file=KEYFILE --image-opts driver=qcow2,file.filename=in.qcow2,encrypt.key-secret=s -O qcow2 out.qcow2", ErrUnsupported, crypt)
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
		return fmt.Errorf("%w: the file ends inside the version 3 header", ErrCorrupt)
	}
	incompat := be.Uint64(h[72:])
	switch {
	case incompat&incompatCorrupt != 0:
		return fmt.Errorf("%w: qemu marked it corrupt; repair it first: qemu-img check -r all in.qcow2", ErrCorrupt)
	case incompat&incompatExtData != 0:
		return fmt.Errorf("%w: the data is in an external file; make a standalone image: qemu-img convert -O qcow2 in.qcow2 out.qcow2", ErrUnsupported)
	case incompat&incompatExtL2 != 0:
		return fmt.Errorf("%w: extended L2 entries (subclusters); rewrite it without: qemu-img convert -O qcow2 in.qcow2 out.qcow2", ErrUnsupported)
	case incompat&^(incompatDirty|incompatCompr) != 0:
		return fmt.Errorf("%w: incompatible feature bits %#x", ErrUnsupported, incompat&^(incompatDirty|incompatCompr))
	}
	headerLen := be.Uint32(h[100:])
	if headerLen < v3MinHeaderLen {
		return fmt.Errorf("%w: version 3 header length %d is below %d", ErrCorrupt, headerLen, v3MinHeaderLen)
	}
	// The compression type byte exists only when the feature bit says so;
	// without it the clusters are zlib.
	if incompat&incompatCompr != 0 {
		if headerLen <= v3MinHeaderLen || len(h) <= v3MinHeaderLen {
			return fmt.Errorf("%w: the compression type feature is set but the header has no compression type", ErrCorrupt)
		}
		im.compression = int(h[v3MinHeaderLen])
	}
	if im.compression != compressZlib && im.compression != compressZstd {
		return fmt.Errorf("%w: compression type %d (zlib 0 and zstd 1 are known)", ErrUnsupported, im.compression)
	}
	return nil
}

// readL1 reads the L1 entries the virtual size needs. The table must be
// within QEMU's limit and fit the file, and it is read in chunks, so memory
// stays bounded whatever the header claims (a sparse file can be any size).
func (im *Image) readL1(entries int64, offset uint64) error {
	perEntry := im.clusterSize * im.l2Entries
	needed := (im.size + perEntry - 1) / perEntry
	if needed > maxL1Entries {
		return fmt.Errorf("%w: %d bytes of disk in %d-byte clusters need an L1 table of %d entries, above qcow2's limit of %d",
			ErrUnsupported, im.size, im.clusterSize, needed, maxL1Entries)
	}
	if entries < needed || entries*8 > im.fileSize || offset > uint64(im.fileSize-entries*8) {
		return fmt.Errorf("%w: L1 table of %d entries at offset %d does not fit a %d-byte file holding %d bytes of disk",
			ErrCorrupt, entries, offset, im.fileSize, im.size)
	}
	im.l1 = make([]uint64, 0, needed)
	b := make([]byte, min(needed, l1Chunk)*8)
	for done := int64(0); done < needed; {
		chunk := b[:min(needed-done, l1Chunk)*8]
		if _, err := im.r.ReadAt(chunk, int64(offset)+done*8); err != nil {
			return fmt.Errorf("reading the qcow2 L1 table at offset %d: %w", offset, err)
		}
		for i := 0; i < len(chunk); i += 8 {
			im.l1 = append(im.l1, binary.BigEndian.Uint64(chunk[i:]))
		}
		done += int64(len(chunk) / 8)
	}
	return nil
}

// backingName reads the backing file's name for the error that refuses it.
func backingName(r io.ReaderAt, off uint64, n uint32, fileSize int64) string {
	if n == 0 || n > maxBackingName || off >= uint64(fileSize) {
		return "name unreadable"
	}
	b := make([]byte, n)
	if m, err := r.ReadAt(b, int64(off)); m < len(b) && err != nil {
		return "name unreadable"
	}
	return fmt.Sprintf("%q", bytes.TrimRight(b, "\x00"))
}

// Version is the image's qcow2 version, 2 or 3.
func (im *Image) Version() int { return im.version }

// Size is the virtual size.
func (im *Image) Size() int64 { return im.size }

// Granularity is the cluster size (raw.Granular): a compressed cluster is
// decompressed whole for any part of it that is read.
func (im *Image) Granularity() int64 { return im.clusterSize }

// cluster is what one L2 entry says of a guest cluster.
type cluster struct {
	kind   clusterKind
	offset int64 // host offset of the data or of the compressed data
	length int64 // compressed length
}

type clusterKind int

const (
	unallocated clusterKind = iota
	zero
	data
	compressed
)

// lookup finds where guest cluster vc lives.
func (im *Image) lookup(vc int64) (cluster, error) {
	t, err := im.l2Table(im.l1[vc/im.l2Entries])
	if err != nil || t == nil {
		return cluster{}, err
	}
	return im.decode(binary.BigEndian.Uint64(t[8*(vc%im.l2Entries):]))
}

// decode interprets an L2 entry.
func (im *Image) decode(e uint64) (cluster, error) {
	if e&l2Compressed != 0 {
		// The descriptor holds the offset in its low x bits and, above
		// them, the number of 512-byte sectors after the first that the
		// compressed data touches.
		x := 62 - (im.clusterBits - 8)
		off := int64(e & (1<<x - 1))
		sectors := int64(e>>x&(1<<(62-x)-1)) + 1
		length := sectors*sectorSize - off%sectorSize
		if off >= im.fileSize {
			return cluster{}, fmt.Errorf("%w: a compressed cluster at offset %d is past the end of the %d-byte file", ErrCorrupt, off, im.fileSize)
		}
		// The last cluster's sector count may reach past the file's end.
		return cluster{kind: compressed, offset: off, length: min(length, im.fileSize-off)}, nil
	}
	if im.version == 3 && e&l2ZeroFlag != 0 {
		return cluster{kind: zero}, nil
	}
	off := int64(e & offsetMask)
	switch {
	case off == 0:
		return cluster{}, nil
	case off%im.clusterSize != 0 || off >= im.fileSize:
		return cluster{}, fmt.Errorf("%w: a data cluster at offset %d is unaligned or past the end of the %d-byte file", ErrCorrupt, off, im.fileSize)
	}
	return cluster{kind: data, offset: off}, nil
}

// l2Table returns the L2 table an L1 entry points to, nil for none.
func (im *Image) l2Table(l1e uint64) ([]byte, error) {
	off := int64(l1e & offsetMask)
	if off == 0 {
		return nil, nil
	}
	if t, ok := im.l2s.Get(off); ok {
		return t, nil
	}
	if off%im.clusterSize != 0 || off > im.fileSize-im.clusterSize {
		return nil, fmt.Errorf("%w: an L2 table at offset %d is unaligned or past the end of the %d-byte file", ErrCorrupt, off, im.fileSize)
	}
	t := make([]byte, im.clusterSize)
	if _, err := im.r.ReadAt(t, off); err != nil {
		return nil, fmt.Errorf("reading a qcow2 L2 table at offset %d: %w", off, err)
	}
	im.l2s.Put(off, t)
	return t, nil
}

// ReadAt reads guest bytes.
func (im *Image) ReadAt(p []byte, off int64) (int, error) {
	p, eof := raw.Window(p, off, im.size)
	if len(p) == 0 {
		return 0, eof
	}
	for n := 0; n < len(p); {
		pos := off + int64(n)
		vc, within := pos/im.clusterSize, pos%im.clusterSize
		c, err := im.lookup(vc)
		if err != nil {
			return n, err
		}
		span := min(int64(len(p)-n), im.clusterSize-within)
		if c.kind == data {
			span += im.contiguous(vc+1, c.offset+im.clusterSize, int64(len(p)-n)-span)
		}
		if err := im.readCluster(p[n:n+int(span)], c, within); err != nil {
			return n, err
		}
		n += int(span)
	}
	return len(p), eof
}

// contiguous is how many of the up to limit bytes from guest cluster vc on
// are data stored at host offset next and after, so that one read of the
// file serves them all.
func (im *Image) contiguous(vc, next, limit int64) int64 {
	var n int64
	for n < limit {
		c, err := im.lookup(vc)
		if err != nil || c.kind != data || c.offset != next {
			break // an error shows when ReadAt reaches that cluster
		}
		n += min(limit-n, im.clusterSize)
		vc, next = vc+1, next+im.clusterSize
	}
	return n
}

// readCluster fills p from cluster c (or from data clusters stored after
// it), starting within bytes into it.
func (im *Image) readCluster(p []byte, c cluster, within int64) error {
	switch c.kind {
	case data:
		start := c.offset + within
		m, err := im.r.ReadAt(p, start)
		if err == io.EOF && start+int64(m) >= im.fileSize {
			// qemu does not always extend the file to the end of the
			// last cluster: the missing part reads as zeros.
			clear(p[m:])
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading a qcow2 data cluster at offset %d: %w", start, err)
		}
		return nil
	case compressed:
		if within == 0 && int64(len(p)) == im.clusterSize {
			// A whole cluster goes straight where it is wanted: a
			// large read (convert's) costs no copy and no cache.
			return im.inflateInto(p, c)
		}
		buf, err := im.inflate(c)
		if err != nil {
			return err
		}
		copy(p, buf[within:])
		return nil
	}
	clear(p)
	return nil
}

// decoder is a reusable decompressor for the image's compression type, with
// room for one compressed cluster.
type decoder struct {
	src  bytes.Reader
	comp []byte
	zlib io.ReadCloser // also a flate.Resetter
	zstd *zstd.Decoder
}

func (im *Image) newDecoder() (*decoder, error) {
	d := &decoder{}
	if im.compression == compressZlib {
		d.zlib = flate.NewReader(&d.src)
		return d, nil
	}
	// Never more memory than a few clusters, whatever the frame claims.
	z, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max(4*im.clusterSize, 1<<20))))
	if err != nil {
		return nil, err
	}
	d.zstd = z
	return d, nil
}

// inflate returns the decompressed cluster c, from the cache or the file.
func (im *Image) inflate(c cluster) ([]byte, error) {
	if buf, ok := im.clusters.Get(c.offset); ok {
		return buf, nil
	}
	out := make([]byte, im.clusterSize)
	if err := im.inflateInto(out, c); err != nil {
		return nil, err
	}
	im.clusters.Put(c.offset, out)
	return out, nil
}

// inflateInto decompresses cluster c from the file into out, one cluster
// long: never more than that. Calls may run side by side, each with a
// decoder of its own.
func (im *Image) inflateInto(out []byte, c cluster) error {
	d, _ := im.decoders.Get().(*decoder)
	if d == nil {
		var err error
		if d, err = im.newDecoder(); err != nil {
			return err
		}
	}
	defer im.decoders.Put(d)
	if int64(cap(d.comp)) < c.length {
		d.comp = make([]byte, c.length)
	}
	comp := d.comp[:c.length]
	if m, err := im.r.ReadAt(comp, c.offset); m < len(comp) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("reading a qcow2 compressed cluster at offset %d: %w", c.offset, err)
	}
	d.src.Reset(comp)
	var rd io.Reader
	if d.zstd != nil {
		// The sectors holding a cluster end in padding after the frame:
		// decode as a stream and stop at one cluster, as qemu does.
		if err := d.zstd.Reset(&d.src); err != nil {
			return err
		}
		rd = d.zstd
	} else {
		// qemu writes raw deflate, without a zlib header.
		if err := d.zlib.(flate.Resetter).Reset(&d.src, nil); err != nil {
			return err
		}
		rd = d.zlib
	}
	if _, err := io.ReadFull(rd, out); err != nil {
		return fmt.Errorf("%w: the compressed cluster at offset %d does not decompress: %v", ErrCorrupt, c.offset, err)
	}
	return nil
}

// Extents lists the guest ranges backed by data or compressed clusters;
// unallocated and zero clusters are left out.
func (im *Image) Extents() ([]raw.Extent, error) {
	var exts []raw.Extent
	clusters := (im.size + im.clusterSize - 1) / im.clusterSize
	// An L2 table used twice would make this walk cost more than the file
	// holds; qemu never shares one within an L1 table.
	seen := make(map[uint64]bool)
	for i, l1e := range im.l1 {
		t, err := im.l2Table(l1e)
		if err != nil {
			return nil, err
		}
		if t == nil {
			continue
		}
		if seen[l1e&offsetMask] {
			return nil, fmt.Errorf("%w: the L2 table at offset %d is used twice", ErrCorrupt, l1e&offsetMask)
		}
		seen[l1e&offsetMask] = true
		first := int64(i) * im.l2Entries
		for j := range min(im.l2Entries, clusters-first) {
			c, err := im.decode(binary.BigEndian.Uint64(t[8*j:]))
			if err != nil {
				return nil, err
			}
			if c.kind != data && c.kind != compressed {
				continue
			}
			off := (first + j) * im.clusterSize
			if n := len(exts); n > 0 && exts[n-1].End() == off {
				exts[n-1].Length += im.clusterSize
			} else {
				exts = append(exts, raw.Extent{Offset: off, Length: im.clusterSize})
			}
		}
	}
	return raw.Clip(exts, im.size), nil
}

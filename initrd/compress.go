package initrd

import (
	"bufio"
	"compress/bzip2"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// Magic numbers of the compressions the kernel unpacks (lib/decompress.c).
// The kernel tells them apart by their first two bytes; longer prefixes
// keep random data from passing for a segment.
const (
	magicGzip  = "\x1f\x8b"
	magicXZ    = "\xfd7zXZ\x00"
	magicLZMA  = "\x5d\x00" // the properties byte of lc=3 lp=0 pb=2, then the dictionary size
	magicZstd  = "\x28\xb5\x2f\xfd"
	magicLZ4   = "\x02\x21\x4c\x18" // lz4's legacy format (lz4 -l)
	magicBzip2 = "BZh"
	magicLZO   = "\x89LZO\x00" // the kernel reads lzop too; nothing here does
	maxMagic   = 6
)

// maxDict bounds the LZ window a segment may ask for: the kernel's zstd
// limit, twice what xz -9 uses.
const maxDict = 128 << 20

func compressionOf(b []byte) string {
	s := string(b)
	switch {
	case strings.HasPrefix(s, magicGzip):
		return Gzip
	case strings.HasPrefix(s, magicXZ):
		return XZ
	case strings.HasPrefix(s, magicLZMA):
		return LZMA
	case strings.HasPrefix(s, magicZstd):
		return Zstd
	case strings.HasPrefix(s, magicLZ4):
		return LZ4
	case strings.HasPrefix(s, magicBzip2):
		return Bzip2
	}
	return ""
}

// unsupported names a compression the kernel reads and this package does
// not, for a clearer error.
func unsupported(b []byte) string {
	if strings.HasPrefix(string(b), magicLZO) {
		return "lzo"
	}
	return ""
}

// segmentReader decompresses one segment.
type segmentReader interface {
	io.Reader
	// consumed is how many bytes of the file the segment spans, once Read
	// has returned io.EOF.
	consumed() int64
}

// decoders keeps the decoders a walk reuses from segment to segment.
type decoders struct {
	gzip *gzip.Reader
	zstd *zstd.Decoder
	lz4  lz4Buffers
}

// open starts decompressing the segment of compression c at off. Gzip,
// xz, lzma and bzip2 decoders read byte by byte where a stream's end is
// not known in advance, so they read from br (positioned at off, over sr)
// and their segment ends where they stopped; zstd and lz4 segments are
// measured first and read from r.
func (d *decoders) open(c string, r io.ReaderAt, off, size int64, br *bufio.Reader, sr *io.SectionReader) (segmentReader, error) {
	buffered := &bufSegment{br: br, sr: sr, off: off}
	switch c {
	case Gzip:
		var err error
		if d.gzip == nil {
			d.gzip, err = gzip.NewReader(br)
		} else {
			err = d.gzip.Reset(br)
		}
		if err != nil {
			return nil, err
		}
		// One member is one segment: what follows may be padding.
		d.gzip.Multistream(false)
		buffered.r = d.gzip
	case XZ:
		if err := checkXZDict(r, off, size); err != nil {
			return nil, err
		}
		xr, err := xz.ReaderConfig{SingleStream: true}.NewReader(br)
		if err != nil {
			return nil, err
		}
		buffered.r = &xzStream{r: xr, seg: buffered}
	case LZMA:
		lr, err := lzma.ReaderConfig{DictCap: maxDict}.NewReader(br)
		if err != nil {
			return nil, err
		}
		buffered.r = lr
	case Bzip2:
		buffered.r = &bzip2Stream{r: bzip2.NewReader(br), seg: buffered}
	case Zstd:
		return d.openZstd(r, off, size)
	case LZ4:
		return d.lz4.open(r, off, size), nil
	default:
		return nil, fmt.Errorf("%w %q", ErrCompression, c)
	}
	return buffered, nil
}

// bufSegment is a segment decoded from the walk's buffered reader.
type bufSegment struct {
	r    io.Reader
	br   *bufio.Reader
	sr   *io.SectionReader
	off  int64
	over int64 // bytes the decoder read past the segment's end
}

func (b *bufSegment) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *bufSegment) consumed() int64 {
	pos, _ := b.sr.Seek(0, io.SeekCurrent)
	return pos - int64(b.br.Buffered()) - b.over - b.off
}

// xzDataAfterStream is the error ulikunitz/xz gives when, asked for a
// single stream, it finds a byte after it; here that byte is the next
// segment's, and the stream ended one byte before.
const xzDataAfterStream = "xz: unexpected data after stream"

type xzStream struct {
	r   *xz.Reader
	seg *bufSegment
}

func (x *xzStream) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	if err != nil && err != io.EOF && err.Error() == xzDataAfterStream {
		x.seg.over, err = 1, io.EOF
	}
	return n, err
}

// bzip2ContinuationMagic is the error compress/bzip2 gives when the two
// bytes after a stream are not "BZ" (another concatenated stream); here
// they are the next segment's, or padding.
var bzip2ContinuationMagic = bzip2.StructuralError("bad magic value in continuation file")

type bzip2Stream struct {
	r   io.Reader
	seg *bufSegment
}

func (b *bzip2Stream) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if errors.Is(err, bzip2ContinuationMagic) {
		b.seg.over, err = 2, io.EOF
	}
	return n, err
}

// The xz stream header and a block header (xz-file-format 2.1.1, 3.1).
const (
	xzStreamHeaderLen = 12
	xzBlockHeaderMax  = 1024
	xzBlockFilters    = 0x03 // number of filters, minus one
	xzBlockSizes      = 0xc0 // compressed and uncompressed size present
	xzFilterLZMA2     = 0x21
)

// checkXZDict refuses a first block whose LZMA2 dictionary exceeds maxDict
// before ulikunitz/xz allocates it. xz writes every block of a stream with
// the same filters.
func checkXZDict(r io.ReaderAt, off, size int64) error {
	var b [xzStreamHeaderLen + xzBlockHeaderMax]byte
	n, _ := r.ReadAt(b[:min(int64(len(b)), size-off)], off)
	h := b[:n]
	if len(h) < xzStreamHeaderLen+2 || h[xzStreamHeaderLen] == 0 {
		return nil // truncated, or no block: the decoder says what is wrong
	}
	flags := h[xzStreamHeaderLen+1]
	p := xzStreamHeaderLen + 2
	for f := flags & xzBlockSizes; f != 0; f &= f - 1 {
		_, p = uvarint(h, p)
	}
	for range flags&xzBlockFilters + 1 {
		var id, props uint64
		id, p = uvarint(h, p)
		props, p = uvarint(h, p)
		if p < 0 || uint64(len(h)-p) < props {
			return nil
		}
		if id == xzFilterLZMA2 && props == 1 {
			if dict := lzma2DictSize(h[p]); dict > maxDict {
				return fmt.Errorf("xz LZMA2 dictionary of %d bytes, more than %d MiB: not an initramfs the kernel unpacks", dict, maxDict>>20)
			}
		}
		p += int(props)
	}
	return nil
}

// uvarint reads xz's variable-length integer at b[p], returning the
// position after it, or -1 past the end of b.
func uvarint(b []byte, p int) (uint64, int) {
	if p < 0 {
		return 0, -1
	}
	v, n := binary.Uvarint(b[p:])
	if n <= 0 {
		return 0, -1
	}
	return v, p + n
}

// lzma2DictSize decodes the LZMA2 dictionary-size property; values over
// 40 are invalid and count as too large.
func lzma2DictSize(p byte) int64 {
	if p >= 40 {
		return 1<<32 - 1
	}
	return int64(2|p&1) << (p/2 + 11)
}

func (d *decoders) openZstd(r io.ReaderAt, off, size int64) (segmentReader, error) {
	n, err := zstdFrameSize(r, off, size)
	if err != nil {
		return nil, err
	}
	frame := io.NewSectionReader(r, off, n)
	if d.zstd == nil {
		d.zstd, err = zstd.NewReader(frame,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(maxDict),
			zstd.WithDecoderMaxMemory(MaxDecompressed))
	} else {
		err = d.zstd.Reset(frame)
	}
	if err != nil {
		return nil, err
	}
	return &sizedSegment{r: d.zstd, n: n}, nil
}

// sizedSegment is a segment whose length was known before decoding.
type sizedSegment struct {
	r io.Reader
	n int64
}

func (s *sizedSegment) Read(p []byte) (int, error) { return s.r.Read(p) }
func (s *sizedSegment) consumed() int64            { return s.n }

// A zstd frame (RFC 8878, 3.1.1): magic, frame header, blocks each with a
// 3-byte header, an optional checksum.
const (
	zstdMagicLen        = 4
	zstdBlockHeaderLen  = 3
	zstdChecksumLen     = 4
	zstdMaxBlockSize    = 128 << 10
	zstdBlockRaw        = 0
	zstdBlockRLE        = 1
	zstdBlockCompressed = 2
)

// zstdFrameSize measures the frame at off by its block headers, as the
// kernel does (ZSTD_findFrameCompressedSize): the kernel unpacks one frame
// per segment, and klauspost/zstd would read on into whatever follows.
func zstdFrameSize(r io.ReaderAt, off, size int64) (int64, error) {
	var b [zstdBlockHeaderLen]byte
	if _, err := r.ReadAt(b[:1], off+zstdMagicLen); err != nil {
		return 0, fmt.Errorf("zstd frame header: %w", noEOF(err))
	}
	fhd := b[0]
	if fhd&0x08 != 0 {
		return 0, errors.New("zstd frame header: reserved bit set")
	}
	singleSegment := fhd&0x20 != 0
	n := int64(zstdMagicLen + 1)
	if !singleSegment {
		n++ // window descriptor
	}
	n += [4]int64{0, 1, 2, 4}[fhd&3] // dictionary ID
	switch fcs := fhd >> 6; {
	case fcs == 0 && singleSegment:
		n++
	case fcs > 0:
		n += 1 << fcs
	}
	for {
		if off+n+zstdBlockHeaderLen > size {
			return 0, fmt.Errorf("zstd frame: block header at offset %d: %w", off+n, io.ErrUnexpectedEOF)
		}
		if _, err := r.ReadAt(b[:], off+n); err != nil {
			return 0, fmt.Errorf("zstd frame: block header at offset %d: %w", off+n, noEOF(err))
		}
		h := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
		last, typ, bsize := h&1 != 0, (h>>1)&3, int64(h>>3)
		n += zstdBlockHeaderLen
		switch typ {
		case zstdBlockRaw, zstdBlockCompressed:
			if bsize > zstdMaxBlockSize {
				return 0, fmt.Errorf("zstd frame: block at offset %d of %d bytes, more than 128 KiB", off+n, bsize)
			}
			n += bsize
		case zstdBlockRLE:
			n++
		default:
			return 0, fmt.Errorf("zstd frame: reserved block type at offset %d", off+n)
		}
		if last {
			break
		}
	}
	if fhd&0x04 != 0 {
		n += zstdChecksumLen
	}
	if off+n > size {
		return 0, fmt.Errorf("zstd frame at offset %d: %d bytes, past the end of the file: %w", off, n, io.ErrUnexpectedEOF)
	}
	return n, nil
}

// lz4's legacy format: the magic, then blocks each preceded by its
// compressed size (little endian), each decompressing to at most 8 MiB.
// It has no end mark: like the kernel (lib/decompress_unlz4.c), a segment
// ends at the end of the file, at fewer than 4 bytes left, or at a zero
// size (padding); another magic starts another stream in the segment.
const (
	lz4MagicLen   = 4
	lz4SizeLen    = 4
	lz4BlockMax   = 8 << 20
	lz4LegacyMark = 0x184c2102
	lz4MaxRatio   = 255 // an lz4 block expands at most this much
)

type lz4Buffers struct {
	in, out []byte
}

type lz4Segment struct {
	bufs      *lz4Buffers
	r         io.ReaderAt
	off, size int64
	n         int64  // bytes of the segment read so far
	pending   []byte // decompressed, not yet returned
	done      bool
}

func (b *lz4Buffers) open(r io.ReaderAt, off, size int64) segmentReader {
	return &lz4Segment{bufs: b, r: r, off: off, size: size, n: lz4MagicLen}
}

func (s *lz4Segment) consumed() int64 { return s.n }

func (s *lz4Segment) Read(p []byte) (int, error) {
	for len(s.pending) == 0 {
		if s.done {
			return 0, io.EOF
		}
		if err := s.block(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

// block decompresses the next block into pending, or marks the end.
func (s *lz4Segment) block() error {
	at := s.off + s.n
	if s.size-at < lz4SizeLen {
		s.done = true
		return nil
	}
	var b [lz4SizeLen]byte
	if _, err := s.r.ReadAt(b[:], at); err != nil {
		return noEOF(err)
	}
	bsize := int64(binary.LittleEndian.Uint32(b[:]))
	switch {
	case bsize == lz4LegacyMark:
		s.n += lz4SizeLen
		return nil
	case bsize == 0:
		s.done = true
		return nil
	case bsize > int64(lz4.CompressBlockBound(lz4BlockMax)):
		return fmt.Errorf("lz4 block at offset %d: size %d is more than a block can be", at, bsize)
	case bsize > s.size-at-lz4SizeLen:
		return fmt.Errorf("lz4 block at offset %d: %d bytes, past the end of the file: %w", at, bsize, io.ErrUnexpectedEOF)
	}
	in := grow(&s.bufs.in, bsize)
	if _, err := s.r.ReadAt(in, at+lz4SizeLen); err != nil {
		return noEOF(err)
	}
	out := grow(&s.bufs.out, min(lz4BlockMax, bsize*lz4MaxRatio))
	k, err := lz4.UncompressBlock(in, out)
	if err != nil {
		return fmt.Errorf("lz4 block at offset %d: %w", at, err)
	}
	s.n += lz4SizeLen + bsize
	s.pending = out[:k]
	return nil
}

// grow returns (*buf)[:n], reallocating when it is too small.
func grow(buf *[]byte, n int64) []byte {
	if int64(cap(*buf)) < n {
		*buf = make([]byte, n)
	}
	return (*buf)[:n]
}

// Package initrd reads Linux initramfs files the way the kernel unpacks
// them (init/initramfs.c): newc and crc cpio archives, stored or
// compressed with gzip, xz, lzma, zstd, lz4 (the legacy format) or bzip2,
// one after another with zero padding between them, as dracut and
// initramfs-tools build them (an uncompressed early-microcode archive
// first). It streams: a decompressed segment is never held in memory.
package initrd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// Compressions of a segment, as Segment.Compression names them.
const (
	None  = "none"
	Gzip  = "gzip"
	XZ    = "xz"
	LZMA  = "lzma"
	Zstd  = "zstd"
	LZ4   = "lz4"
	Bzip2 = "bzip2"
)

// Bounds on the bytes Walk decompresses from one initramfs, against
// decompression bombs, whose cost is CPU as much as bytes (a 4 GiB zstd
// bomb takes half a minute to unpack): real initramfs files unpack to a few
// hundred MiB at ratios under 10.
const (
	MaxDecompressed = 4 << 30
	maxRatio        = 32
	minBudget       = 256 << 20
)

// budget is what Walk may decompress from an initramfs of size bytes.
func budget(size int64) int64 {
	return min(MaxDecompressed, max(minBudget, maxRatio*size))
}

// Errors, wrapped with the segment and offset where they happened.
var (
	ErrHeader      = errors.New("invalid cpio header")
	ErrPadding     = errors.New("broken padding: a cpio header does not start on a 4-byte boundary")
	ErrJunk        = errors.New("junk inside a compressed segment (neither a cpio header nor zero padding)")
	ErrChecksum    = errors.New("cpio data checksum mismatch")
	ErrCompression = errors.New("unknown compression")
	ErrTooLarge    = errors.New("decompressed data exceeds the limit (32 times the file, at least 256 MiB, at most 4 GiB)")
)

// Segment is one stored or compressed part of an initramfs.
type Segment struct {
	Offset      int64  // where it starts in the initramfs file
	Compression string // None, Gzip, XZ, LZMA, Zstd, LZ4 or Bzip2
}

// Entry is one cpio entry.
type Entry struct {
	Name       string // cleaned, without a leading slash: "usr/lib/modules", "." for the root
	Mode       fs.FileMode
	Size       int64  // the data's size in the archive
	LinkTarget string // a symbolic link's target

	// The rest of the header, which a Writer writes back as it was: the
	// kernel links entries of one archive that share Dev and Ino and have
	// Nlink of 2 or more.
	Ino, UID, GID, Nlink uint32
	ModTime              uint32    // seconds since the epoch
	Dev, Rdev            [2]uint32 // major and minor number
}

// Walk calls fn for every entry of every segment of the initramfs in r,
// in order (TRAILER!!! entries excepted). content reads the entry's data
// and is valid only until fn returns; what fn leaves unread is skipped.
// If fn returns fs.SkipAll, Walk stops and returns nil; any other error
// stops Walk and is returned as it is.
func Walk(r io.ReaderAt, size int64, fn func(seg Segment, e Entry, content io.Reader) error) error {
	w := &walker{r: r, size: size, budget: budget(size), fn: fn}
	err := w.run()
	if errors.Is(err, fs.SkipAll) {
		return nil
	}
	return err
}

// walker holds one Walk's state and the buffers and decoders it reuses
// from segment to segment.
type walker struct {
	r         io.ReaderAt
	size      int64
	budget    int64 // decompressed bytes still allowed
	fn        func(Segment, Entry, io.Reader) error
	onSegment func(Segment) // for Modules, which lists segments without entries too

	hdr   [headerLen]byte
	name  []byte
	inner *bufio.Reader // over the current segment's decompressor
	dec   decoders
}

// fnError marks an error of the caller's fn, returned without context.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }
func (e fnError) Unwrap() error { return e.err }

// run follows unpack_to_rootfs: zero bytes are skipped; a '0' on a 4-byte
// boundary starts a stored cpio header; anything else is a compressed
// segment, identified by its magic. After a stored entry the kernel's
// padding check applies: whatever follows must be 4-byte aligned.
func (w *walker) run() error {
	sr := io.NewSectionReader(w.r, 0, w.size)
	br := bufio.NewReaderSize(sr, 64<<10)
	s := &stream{r: br}
	var stored *Segment // the stored segment entries belong to, until a trailer
	afterEntry := false
	for {
		b, err := s.skipZeros()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("initrd: reading at offset %d: %w", s.off, err)
		}
		aligned := s.off%4 == 0
		if b == '0' && aligned {
			if stored == nil {
				stored = &Segment{Offset: s.off, Compression: None}
				w.segment(*stored)
			}
			at := s.off
			trailer, err := w.entry(s, *stored, w.size)
			if err != nil {
				return w.wrap(err, *stored, fmt.Sprintf("cpio entry at offset %d", at))
			}
			if trailer {
				stored = nil
			}
			afterEntry = true
			continue
		}
		if afterEntry && !aligned {
			return fmt.Errorf("initrd: offset %d, after a stored cpio entry: %w", s.off, ErrPadding)
		}
		stored, afterEntry = nil, false
		seg := Segment{Offset: s.off}
		n, err := w.compressed(&seg, br, sr)
		if err != nil {
			return err
		}
		s.off += n
		if _, err := sr.Seek(s.off, io.SeekStart); err != nil {
			return err
		}
		br.Reset(sr)
	}
}

func (w *walker) segment(seg Segment) {
	if w.onSegment != nil {
		w.onSegment(seg)
	}
}

func (w *walker) wrap(err error, seg Segment, where string) error {
	var fe fnError
	if errors.As(err, &fe) {
		return fe.err
	}
	kind := seg.Compression
	if kind == None {
		kind = "stored"
	}
	return fmt.Errorf("initrd: %s segment at offset %d: %s: %w", kind, seg.Offset, where, err)
}

// compressed reads the segment at seg.Offset (br and sr are positioned
// there) and returns how many bytes of the file it spans.
func (w *walker) compressed(seg *Segment, br *bufio.Reader, sr *io.SectionReader) (int64, error) {
	magic, _ := br.Peek(maxMagic)
	seg.Compression = compressionOf(magic)
	if u := unsupported(magic); u != "" {
		return 0, fmt.Errorf("initrd: offset %d: %w: %s, which the kernel reads and initrd does not; rebuild the initramfs with gzip, xz or zstd", seg.Offset, ErrCompression, u)
	}
	if seg.Compression == "" {
		return 0, fmt.Errorf("initrd: offset %d: %w (bytes % x); the kernel reads newc cpio, gzip, xz, lzma, zstd, lz4 -l and bzip2", seg.Offset, ErrCompression, magic)
	}
	w.segment(*seg)
	dec, err := w.dec.open(seg.Compression, w.r, seg.Offset, w.size, br, sr)
	if err != nil {
		return 0, w.wrap(err, *seg, "opening")
	}
	if w.inner == nil {
		w.inner = bufio.NewReaderSize(nil, 64<<10)
	}
	w.inner.Reset(&budgetReader{r: dec, left: &w.budget})
	s := &stream{r: w.inner}
	for {
		b, err := s.skipZeros()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, w.wrap(err, *seg, fmt.Sprintf("decompressed offset %d", s.off))
		}
		if s.off%4 != 0 {
			return 0, w.wrap(ErrPadding, *seg, fmt.Sprintf("decompressed offset %d", s.off))
		}
		if b != '0' {
			return 0, w.wrap(ErrJunk, *seg, fmt.Sprintf("decompressed offset %d", s.off))
		}
		at := s.off
		if _, err := w.entry(s, *seg, -1); err != nil {
			return 0, w.wrap(err, *seg, fmt.Sprintf("cpio entry at decompressed offset %d", at))
		}
	}
	n := dec.consumed()
	if n <= 0 {
		return 0, w.wrap(io.ErrNoProgress, *seg, "decompressor consumed nothing")
	}
	return n, nil
}

// budgetReader fails with ErrTooLarge once a decompressor produced more
// than the walk's budget.
type budgetReader struct {
	r    io.Reader
	left *int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if *b.left <= 0 {
		// Only an end of data is still acceptable.
		var one [1]byte
		if n, err := b.r.Read(one[:]); n > 0 || err == nil {
			return 0, ErrTooLarge
		} else {
			return 0, err
		}
	}
	if int64(len(p)) > *b.left {
		p = p[:*b.left]
	}
	n, err := b.r.Read(p)
	*b.left -= int64(n)
	return n, err
}

// stream counts the bytes read from r, for the kernel's 4-byte alignment
// rules (relative to the file for stored segments, to the decompressed
// data for compressed ones).
type stream struct {
	r   *bufio.Reader
	off int64
}

func (s *stream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.off += int64(n)
	return n, err
}

// skipZeros consumes zero bytes and returns the next byte, unread.
func (s *stream) skipZeros() (byte, error) {
	for {
		b, err := s.r.ReadByte()
		if err != nil {
			return 0, err
		}
		if b != 0 {
			return b, s.r.UnreadByte()
		}
		s.off++
	}
}

// discard skips n bytes.
func (s *stream) discard(n int64) error {
	for n > 0 {
		k := int(min(n, 1<<30))
		d, err := s.r.Discard(k)
		s.off += int64(d)
		n -= int64(d)
		if err != nil {
			return noEOF(err)
		}
	}
	return nil
}

// noEOF turns an end of data inside a structure into ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

package initrd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// ErrRecompress is returned by Rewrite when the last segment is
// compressed in a way initrd does not write.
var ErrRecompress = errors.New("initrd writes gzip, xz, lzma, zstd, lz4 and uncompressed segments, not bzip2")

// Rewrite writes to w the initramfs in r with its last segment made
// again: the entries keep accepts, then what add writes, compressed as
// the segment was. The segments before it are copied byte for byte. keep
// sees the entries of every segment, in order.
//
// Adding to the last archive, rather than appending an archive after it,
// is what keeps the guest's own tools seeing the added files: the kernel
// unpacks every archive, but lsinitramfs and lsinitrd decompress the
// rest of the file after the stored early archives as one stream and
// stop at its first trailer.
func Rewrite(r io.ReaderAt, size int64, w io.Writer, keep func(Entry) bool, add func(*Writer) error) error {
	var last *remade
	walk := &walker{r: r, size: size, budget: budget(size)}
	walk.onSegment = func(seg Segment) {
		last = newRemade(seg)
	}
	// Every segment is made again until the next one starts; an error
	// matters only if it is the last's.
	walk.fn = func(_ Segment, e Entry, content io.Reader) error {
		if last.err != nil || !keep(e) {
			return nil
		}
		last.err = last.cpio.WriteHeader(e)
		if last.err == nil && e.Mode.IsRegular() {
			_, last.err = io.Copy(last.cpio, content)
		}
		return nil
	}
	if err := walk.run(); err != nil {
		return err
	}
	if last == nil {
		return fmt.Errorf("initrd: no archive to add to (empty file)")
	}
	if errors.Is(last.err, ErrRecompress) {
		return fmt.Errorf("initrd: the last segment (offset %d) is %s: %w", last.seg.Offset, last.seg.Compression, ErrRecompress)
	}
	if last.err != nil {
		return last.err
	}
	if err := add(last.cpio); err != nil {
		return err
	}
	if err := last.close(); err != nil {
		return err
	}
	if _, err := io.Copy(w, io.NewSectionReader(r, 0, last.seg.Offset)); err != nil {
		return err
	}
	_, err := w.Write(last.buf.Bytes())
	return err
}

// remade is a segment being made again, in memory until the walk shows it
// is the last.
type remade struct {
	seg  Segment
	buf  bytes.Buffer
	comp io.WriteCloser // nil for a stored segment
	cpio *Writer
	err  error
}

func newRemade(seg Segment) *remade {
	m := &remade{seg: seg}
	var out io.Writer = &m.buf
	switch seg.Compression {
	case None:
	case Gzip:
		m.comp = gzip.NewWriter(&m.buf)
	case Zstd:
		m.comp, m.err = zstd.NewWriter(&m.buf, zstd.WithEncoderConcurrency(1))
	case XZ:
		// The kernel's xz decoder checks CRC32 or nothing, and bounds the
		// dictionary: the options the kernel's own scripts use.
		m.comp, m.err = xz.WriterConfig{CheckSum: xz.CRC32, DictCap: 1 << 20}.NewWriter(&m.buf)
	case LZMA:
		// The size unknown in the header and an end marker, as lzma(1)
		// writes a stream.
		m.comp, m.err = lzma.WriterConfig{DictCap: 1 << 20, EOSMarker: true}.NewWriter(&m.buf)
	case LZ4:
		m.comp = &lz4Writer{w: &m.buf}
	default:
		m.err = ErrRecompress
	}
	if m.comp != nil {
		out = m.comp
	}
	m.cpio = NewWriter(out)
	return m
}

func (m *remade) close() error {
	if err := m.cpio.Close(); err != nil {
		return err
	}
	if m.comp != nil {
		return m.comp.Close()
	}
	return nil
}

// lz4Writer writes lz4's legacy format, the one the kernel unpacks (lz4
// -l): the magic, then blocks of at most lz4BlockMax bytes, compressed,
// each after its size.
type lz4Writer struct {
	w        io.Writer
	in, out  []byte
	c        lz4.Compressor
	wroteHdr bool
}

func (l *lz4Writer) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), lz4BlockMax-len(l.in))
		l.in = append(l.in, p[:k]...)
		p = p[k:]
		if len(l.in) == lz4BlockMax {
			if err := l.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// Close writes what is left; the format has no end mark.
func (l *lz4Writer) Close() error {
	if len(l.in) == 0 && l.wroteHdr {
		return nil
	}
	return l.flush()
}

func (l *lz4Writer) flush() error {
	if !l.wroteHdr {
		if _, err := io.WriteString(l.w, magicLZ4); err != nil {
			return err
		}
		l.wroteHdr = true
	}
	if len(l.in) == 0 {
		return nil
	}
	out := grow(&l.out, int64(lz4.CompressBlockBound(len(l.in))+lz4SizeLen))
	n, err := l.c.CompressBlock(l.in, out[lz4SizeLen:])
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(out, uint32(n))
	l.in = l.in[:0]
	_, err = l.w.Write(out[:lz4SizeLen+n])
	return err
}

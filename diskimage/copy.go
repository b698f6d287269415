package diskimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/vhdprep/vhdprep/internal/progress"
	"github.com/vhdprep/vhdprep/raw"
)

// copyChunk bounds the memory a copy uses and how long it runs between
// checks for cancellation.
const copyChunk = 1 << 20

// copyData writes every data extent of src into dst at the same offsets and
// leaves holes everywhere else, so sparse images stay sparse. When the
// source's bytes are a file's own bytes at the same offsets (raw, fixed VHD),
// same is that file and the kernel copies them (copy_file_range: no trip
// through user space, and a reflink where the filesystem can share blocks).
// Other sources are read and written in chunks, skipping chunks of zeros.
// It returns the number of bytes written.
func copyData(ctx context.Context, dst *os.File, src raw.Disk, same *os.File, p progress.Reporter) (int64, error) {
	exts, err := src.Extents()
	if err != nil {
		return 0, err
	}
	exts = raw.Clip(exts, src.Size())
	var total int64
	for _, e := range exts {
		total += e.Length
	}
	p.Start("copying", total)
	defer p.Finish()

	var written int64
	buf := make([]byte, copyChunk)
	for _, e := range exts {
		var n int64
		var err error
		if same != nil {
			n, err = copyRange(ctx, dst, same, e, buf, p)
		} else {
			n, err = copyReading(ctx, dst, src, e, buf, p)
		}
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// copyRange copies one extent between files with copy_file_range, falling
// back to reading and writing where the kernel cannot (another filesystem
// before Linux 5.3, or a filesystem that does not support it).
func copyRange(ctx context.Context, dst, src *os.File, e raw.Extent, buf []byte, p progress.Reporter) (int64, error) {
	var done int64
	for done < e.Length {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		roff, woff := e.Offset+done, e.Offset+done
		n, err := unix.CopyFileRange(int(src.Fd()), &roff, int(dst.Fd()), &woff, int(min(e.Length-done, 64*copyChunk)), 0)
		if err != nil {
			if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
				rest := raw.Extent{Offset: e.Offset + done, Length: e.Length - done}
				m, err := copyReading(ctx, dst, raw.NewFile(src, e.End()), rest, buf, p)
				return done + m, err
			}
			return done, fmt.Errorf("copying at offset %d: %w", e.Offset+done, err)
		}
		if n == 0 {
			return done, fmt.Errorf("copying at offset %d: %w", e.Offset+done, io.ErrUnexpectedEOF)
		}
		done += int64(n)
		p.Add(int64(n))
	}
	return done, nil
}

// copyReading copies one extent through buf, leaving chunks of zeros as
// holes in dst.
func copyReading(ctx context.Context, dst *os.File, src io.ReaderAt, e raw.Extent, buf []byte, p progress.Reporter) (int64, error) {
	var written int64
	for off := e.Offset; off < e.End(); {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		chunk := buf[:min(int64(len(buf)), e.End()-off)]
		n, err := src.ReadAt(chunk, off)
		if n < len(chunk) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return written, fmt.Errorf("reading at offset %d: %w", off+int64(n), err)
		}
		if !isZero(chunk) {
			if _, err := dst.WriteAt(chunk, off); err != nil {
				return written, err
			}
			written += int64(len(chunk))
		}
		off += int64(len(chunk))
		p.Add(int64(len(chunk)))
	}
	return written, nil
}

var zeroChunk = make([]byte, copyChunk)

func isZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroChunk))
		if !bytes.Equal(b[:n], zeroChunk[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

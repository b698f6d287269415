package diskimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/vhdprep/vhdprep/progress"
	"github.com/vhdprep/vhdprep/raw"
)

// copyChunk bounds the memory a copy uses and how long it runs between
// checks for cancellation.
const copyChunk = 1 << 20

// maxChunk bounds the chunk a source's unit makes copyReading read
// (chunkSize): qcow2's largest cluster, 2 MiB, and a VMDK's largest grain
// fit.
const maxChunk = 4 << 20

// maxCopyWorkers bounds the chunks read at once, and so the memory a copy
// uses, on a machine with many cores.
const maxCopyWorkers = 8

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

	if same == nil {
		return copyReading(ctx, dst, src, exts, p)
	}
	var written int64
	for _, e := range exts {
		n, err := copyRange(ctx, dst, same, e, p)
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
func copyRange(ctx context.Context, dst, src *os.File, e raw.Extent, p progress.Reporter) (int64, error) {
	var done int64
	for done < e.Length {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		roff, woff := e.Offset+done, e.Offset+done
		n, err := copyFileRange(src, &roff, dst, &woff, int(min(e.Length-done, 64*copyChunk)))
		if err != nil {
			if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
				rest := raw.Extent{Offset: e.Offset + done, Length: e.Length - done}
				m, err := copyReading(ctx, dst, raw.NewFile(src, e.End()), []raw.Extent{rest}, p)
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

// copyReading copies the extents in chunks, leaving chunks of zeros as
// holes in dst. A few workers each read a chunk and write it, so that
// reading a chunk that costs CPU (a compressed qcow2 cluster decompresses
// as it is read) overlaps with the others and with writing.
func copyReading(ctx context.Context, dst *os.File, src io.ReaderAt, exts []raw.Extent, p progress.Reporter) (int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	size := chunkSize(src)
	chunks := make(chan raw.Extent)
	var written atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0)+1, maxCopyWorkers) {
		wg.Go(func() {
			buf := make([]byte, size)
			for c := range chunks {
				if ctx.Err() != nil {
					continue
				}
				n, err := copyChunkAt(dst, src, c, buf[:c.Length])
				if err != nil {
					cancel(err)
					continue
				}
				written.Add(n)
				p.Add(c.Length)
			}
		})
	}
	for _, e := range exts {
		for off := e.Offset; off < e.End() && ctx.Err() == nil; {
			// Chunks end at multiples of their size, and so of the
			// source's unit, wherever the extent begins.
			c := raw.Extent{Offset: off, Length: min((off/size+1)*size, e.End()) - off}
			select {
			case chunks <- c:
			case <-ctx.Done():
			}
			off = c.End()
		}
	}
	close(chunks)
	wg.Wait()
	return written.Load(), context.Cause(ctx)
}

// chunkSize is the length of the chunks copyReading reads from src:
// copyChunk, or where src reads in units (raw.Granular: a compressed qcow2
// cluster or VMDK grain) the least whole number of units that holds as
// much, so that no unit is cut between two chunks and decompressed for
// each.
func chunkSize(src io.ReaderAt) int64 {
	g, ok := src.(raw.Granular)
	if !ok {
		return copyChunk
	}
	unit := g.Granularity()
	if unit <= 0 || unit > maxChunk {
		return copyChunk
	}
	return (copyChunk + unit - 1) / unit * unit
}

// copyChunkAt copies chunk c through buf, its length, and returns the bytes
// written: none for a chunk of zeros.
func copyChunkAt(dst *os.File, src io.ReaderAt, c raw.Extent, buf []byte) (int64, error) {
	n, err := src.ReadAt(buf, c.Offset)
	if n < len(buf) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, fmt.Errorf("reading at offset %d: %w", c.Offset+int64(n), err)
	}
	if isZero(buf) {
		return 0, nil
	}
	if _, err := dst.WriteAt(buf, c.Offset); err != nil {
		return 0, err
	}
	return c.Length, nil
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

package upload

import (
	"context"
	"crypto/md5"
	"fmt"
	"io"

	"github.com/vhdprep/vhdprep/raw"
)

// zeroBlock is what MD5 is fed for a hole: zeros, never read from the file.
var zeroBlock [1 << 20]byte

// contentMD5 is the MD5 of the file's size bytes, whose data lies in spans
// (in order, on pages) and whose holes read as zeros. It runs beside the
// upload and reads the data itself (again; the page cache has it), so the
// upload never waits for it: MD5 has no shortcut for zeros, and a large
// sparse disk takes longer to hash than its data takes to send.
func contentMD5(ctx context.Context, r io.ReaderAt, size int64, spans []raw.Extent) ([]byte, error) {
	h := md5.New()
	buf := make([]byte, len(zeroBlock))
	zeros := func(n int64) error {
		for n > 0 {
			if err := ctx.Err(); err != nil {
				return context.Cause(ctx)
			}
			m := min(n, int64(len(zeroBlock)))
			h.Write(zeroBlock[:m])
			n -= m
		}
		return nil
	}
	pos := int64(0)
	for _, s := range spans {
		if err := zeros(s.Offset - pos); err != nil {
			return nil, err
		}
		for off := s.Offset; off < s.End(); {
			if err := ctx.Err(); err != nil {
				return nil, context.Cause(ctx)
			}
			b := buf[:min(int64(len(buf)), s.End()-off)]
			if _, err := r.ReadAt(b, off); err != nil {
				return nil, fmt.Errorf("reading at %d for the Content-MD5: %w", off, err)
			}
			h.Write(b)
			off += int64(len(b))
		}
		pos = s.End()
	}
	if err := zeros(size - pos); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

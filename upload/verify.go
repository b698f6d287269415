package upload

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"

	"github.com/vhdprep/vhdprep/raw"
)

// maxVerifiers bounds verification's memory: two windows each.
const maxVerifiers = 8

// verify reads back every range the blob holds data in, and every range the
// file does, and compares them: the blob must read as the file, zeros
// included.
func verify(ctx context.Context, o *Options, r io.ReaderAt, size int64, exts []raw.Extent) error {
	var ranges []raw.Extent
	err := retry(ctx, o, nil, "get page ranges", func(ctx context.Context) (err error) {
		ranges, err = o.Blob.PageRanges(ctx)
		return err
	})
	if err != nil {
		return err
	}
	ranges = sortedSpans(ranges, size)
	all := sortedSpans(append(slices.Clone(ranges), pageSpans(exts, size)...), size)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	windows := make(chan raw.Extent)
	var wg sync.WaitGroup
	for range min(o.Concurrency, maxVerifiers) {
		wg.Go(func() {
			file, blob := make([]byte, MaxPutPage), make([]byte, MaxPutPage)
			for w := range windows {
				if ctx.Err() != nil {
					continue
				}
				if err := compareWindow(ctx, o, r, ranges, w, file[:w.Length], blob[:w.Length]); err != nil {
					cancel(err)
				}
			}
		})
	}
	for _, s := range all {
		for w := s.Offset; w < s.End() && ctx.Err() == nil; {
			end := min((w/MaxPutPage+1)*MaxPutPage, s.End())
			_ = send(ctx, windows, raw.Extent{Offset: w, Length: end - w})
			w = end
		}
	}
	close(windows)
	wg.Wait()
	return context.Cause(ctx)
}

// sortedSpans puts ranges in order on whole pages, merged and inside size.
func sortedSpans(ranges []raw.Extent, size int64) []raw.Extent {
	slices.SortFunc(ranges, func(a, b raw.Extent) int { return cmp.Compare(a.Offset, b.Offset) })
	return raw.Clip(pageSpans(ranges, size), size)
}

// compareWindow compares window w of the file with the blob, reading from
// the blob only the parts of w inside its data ranges.
func compareWindow(ctx context.Context, o *Options, r io.ReaderAt, ranges []raw.Extent, w raw.Extent, file, blob []byte) error {
	if _, err := r.ReadAt(file, w.Offset); err != nil {
		return fmt.Errorf("reading the file at %d: %w", w.Offset, err)
	}
	clear(blob)
	i := sort.Search(len(ranges), func(i int) bool { return ranges[i].End() > w.Offset })
	for ; i < len(ranges) && ranges[i].Offset < w.End(); i++ {
		a, b := max(ranges[i].Offset, w.Offset), min(ranges[i].End(), w.End())
		part := blob[a-w.Offset : b-w.Offset]
		err := retry(ctx, o, nil, fmt.Sprintf("read %d-%d", a, b-1), func(ctx context.Context) error {
			return o.Blob.ReadAt(ctx, part, a)
		})
		if err != nil {
			return err
		}
	}
	if !bytes.Equal(file, blob) {
		at := 0
		for file[at] == blob[at] {
			at++
		}
		return fmt.Errorf("%w at byte %d; upload again with --overwrite", ErrMismatch, w.Offset+int64(at))
	}
	return nil
}

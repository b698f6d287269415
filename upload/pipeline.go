package upload

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/vhdprep/vhdprep/progress"
	"github.com/vhdprep/vhdprep/raw"
)

// pipeline reads the file's data once, in MaxPutPage windows aligned to
// MaxPutPage (so dense data goes in whole, aligned requests), and hands the
// non-zero runs of each window to the workers as Put Page jobs.
type pipeline struct {
	o     *Options
	r     io.ReaderAt
	size  int64
	spans []raw.Extent // the data extents, on page boundaries
	dest  *destination
	hi    int // cursor into dest.have: ranges before it end before the read position
	sum   *Summary
	pr    progress.Reporter
	stats stats
	lim   *limiter
	pool  *pool
	zero  [PageSize]byte
}

// job is one request: data to put at off, or (data nil) n bytes to clear.
type job struct {
	off  int64
	n    int64
	data []byte
	buf  *buffer // holds data; released when the job is done
}

func newPipeline(o Options, r io.ReaderAt, size int64, exts []raw.Extent, dest *destination, sum *Summary, pr progress.Reporter) *pipeline {
	dest.have = sortedSpans(slices.Clone(dest.have), size)
	return &pipeline{
		o: &o, r: r, size: size, spans: pageSpans(exts, size), dest: dest, sum: sum, pr: pr,
		lim:  newLimiter(o.Concurrency),
		pool: newPool(o.Concurrency + 1), // one being read
	}
}

// pageSpans widens extents to whole pages (the reads then include a few
// bytes of a hole, which read as zeros) and merges what then touches.
func pageSpans(exts []raw.Extent, size int64) []raw.Extent {
	out := make([]raw.Extent, 0, len(exts))
	for _, e := range exts {
		start := e.Offset / PageSize * PageSize
		end := min((e.End()+PageSize-1)/PageSize*PageSize, size)
		out = append(out, raw.Extent{Offset: start, Length: end - start})
	}
	return raw.Coalesce(out)
}

// run uploads what the spans hold.
func (p *pipeline) run(parent context.Context) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	defer p.tally()

	var total int64
	for _, s := range p.spans {
		total += s.Length
	}
	p.sum.DataBytes = total
	p.pr.Start("uploading", total)
	defer p.pr.Finish()

	jobs := make(chan job)
	var workers sync.WaitGroup
	for range p.o.Concurrency {
		workers.Go(func() {
			for j := range jobs {
				if ctx.Err() == nil {
					if err := p.do(ctx, j); err != nil {
						cancel(err)
					}
				}
				if j.buf != nil {
					j.buf.release()
				}
			}
		})
	}
	if err := p.read(ctx, jobs); err != nil {
		cancel(err)
	}
	close(jobs)
	workers.Wait()
	return context.Cause(ctx)
}

// tally copies the counters into the summary.
func (p *pipeline) tally() {
	s := &p.stats
	p.sum.ZeroBytes = s.zero.Load()
	p.sum.PresentBytes = s.present.Load()
	p.sum.SentBytes = s.sent.Load()
	p.sum.ClearedBytes = s.cleared.Load()
	p.sum.Requests = s.requests.Load()
	p.sum.Retries = s.retries.Load()
	p.sum.Throttled = s.throttled.Load()
	p.sum.MinConcurrency = p.lim.lowest()
}

func (p *pipeline) read(ctx context.Context, jobs chan<- job) error {
	pos := int64(0) // everything before pos is done
	for _, s := range p.spans {
		if err := p.gap(ctx, pos, s.Offset, jobs); err != nil {
			return err
		}
		for w := s.Offset; w < s.End(); {
			end := min((w/MaxPutPage+1)*MaxPutPage, s.End())
			buf, err := p.pool.get(ctx)
			if err != nil {
				return err
			}
			data := buf.b[:end-w]
			if _, err := p.r.ReadAt(data, w); err != nil {
				buf.release()
				return fmt.Errorf("reading at %d: %w", w, err)
			}
			err = p.scan(ctx, w, data, buf, jobs)
			buf.release()
			if err != nil {
				return err
			}
			w = end
		}
		pos = s.End()
	}
	return p.gap(ctx, pos, p.size, jobs)
}

// gap handles a hole [a, b): clears where the destination holds data.
func (p *pipeline) gap(ctx context.Context, a, b int64, jobs chan<- job) error {
	if a >= b {
		return nil
	}
	return p.split(a, b, func(a, b int64, in bool) error {
		if !in {
			return nil
		}
		return send(ctx, jobs, job{off: a, n: b - a})
	})
}

// scan turns a window read at off into jobs: runs of non-zero pages are put
// (less what a trusted destination holds), zero pages are cleared where the
// destination holds data, and skipped otherwise.
func (p *pipeline) scan(ctx context.Context, off int64, data []byte, buf *buffer, jobs chan<- job) error {
	for i := 0; i < len(data); {
		zero := bytes.Equal(data[i:i+PageSize], p.zero[:])
		j := i + PageSize
		for j < len(data) && bytes.Equal(data[j:j+PageSize], p.zero[:]) == zero {
			j += PageSize
		}
		a, b := off+int64(i), off+int64(j)
		err := p.split(a, b, func(a, b int64, in bool) error {
			switch {
			case zero && in:
				p.stats.zero.Add(b - a)
				p.pr.Add(b - a)
				return send(ctx, jobs, job{off: a, n: b - a})
			case zero:
				p.stats.zero.Add(b - a)
				p.pr.Add(b - a)
				return nil
			case in && p.dest.trusted:
				p.stats.present.Add(b - a)
				p.pr.Add(b - a)
				return nil
			}
			buf.refs.Add(1)
			err := send(ctx, jobs, job{off: a, n: b - a, data: data[a-off : b-off], buf: buf})
			if err != nil {
				buf.release()
			}
			return err
		})
		if err != nil {
			return err
		}
		i = j
	}
	return nil
}

// split calls fn for the pieces of [a, b) in order, saying whether each
// lies in the destination's data. Calls come in ascending order, so one
// cursor walks the destination's ranges once.
func (p *pipeline) split(a, b int64, fn func(a, b int64, in bool) error) error {
	have := p.dest.have
	for a < b {
		for p.hi < len(have) && have[p.hi].End() <= a {
			p.hi++
		}
		if p.hi == len(have) || have[p.hi].Offset >= b {
			return fn(a, b, false)
		}
		h := have[p.hi]
		if h.Offset > a {
			if err := fn(a, h.Offset, false); err != nil {
				return err
			}
			a = h.Offset
		}
		end := min(b, h.End())
		if err := fn(a, end, true); err != nil {
			return err
		}
		a = end
	}
	return nil
}

// do runs one job to the end, retrying as needed.
func (p *pipeline) do(ctx context.Context, j job) error {
	if err := checkRange(j.off, j.n, p.size, j.data != nil); err != nil {
		return err
	}
	if j.data == nil {
		err := retryLimited(ctx, p.o, &p.stats, p.lim, fmt.Sprintf("clear pages %d-%d", j.off, j.off+j.n-1), func(ctx context.Context) error {
			return p.o.Blob.ClearPages(ctx, j.off, j.n)
		})
		if err == nil {
			p.stats.cleared.Add(j.n)
			p.stats.requests.Add(1)
		}
		return err
	}
	sum := md5.Sum(j.data)
	err := retryLimited(ctx, p.o, &p.stats, p.lim, fmt.Sprintf("put pages %d-%d", j.off, j.off+j.n-1), func(ctx context.Context) error {
		p.stats.sent.Add(j.n)
		return p.o.Blob.PutPages(ctx, j.off, j.data, sum[:])
	})
	if err == nil {
		p.stats.requests.Add(1)
		p.pr.Add(j.n)
	}
	return err
}

// checkRange enforces Azure's rules for a page range here, since the local
// emulator does not.
func checkRange(off, n, size int64, put bool) error {
	switch {
	case off < 0 || n <= 0 || off%PageSize != 0 || n%PageSize != 0:
		return fmt.Errorf("internal error: range %d+%d is not on %d-byte pages", off, n, PageSize)
	case off+n > size:
		return fmt.Errorf("internal error: range %d+%d passes the blob's end at %d", off, n, size)
	case put && n > MaxPutPage:
		return fmt.Errorf("internal error: a %d-byte Put Page is above the %d-byte limit", n, MaxPutPage)
	}
	return nil
}

func send[T any](ctx context.Context, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// buffer is a window's memory, shared by the reader and the jobs that send
// parts of it; the last to release it returns it to the pool.
type buffer struct {
	b    []byte
	refs atomic.Int32
	pool *pool
}

func (b *buffer) release() {
	if b.refs.Add(-1) == 0 {
		b.pool.free <- b
	}
}

// pool bounds the memory an upload uses to n windows, made as needed.
type pool struct {
	free chan *buffer
	mu   sync.Mutex
	made int
}

func newPool(n int) *pool { return &pool{free: make(chan *buffer, n)} }

func (p *pool) get(ctx context.Context) (*buffer, error) {
	var b *buffer
	select {
	case b = <-p.free:
	default:
		p.mu.Lock()
		if p.made < cap(p.free) {
			p.made++
			b = &buffer{b: make([]byte, MaxPutPage), pool: p}
		}
		p.mu.Unlock()
		if b == nil {
			select {
			case b = <-p.free:
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		}
	}
	b.refs.Store(1)
	return b, nil
}

package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// lineInterval is how often progress lines are printed where no bar can
// be drawn: often enough for a CI log to show a job alive, seldom enough
// not to flood it.
const lineInterval = 5 * time.Second

// lines reports a progress.Reporter's job as plain lines every interval,
// and a last one when it ends, for logs that cannot show a bar (stderr
// not a terminal), as azcopy does.
type lines struct {
	w        io.Writer
	interval time.Duration

	what  string
	total int64
	done  atomic.Int64
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

func newLines(w io.Writer, interval time.Duration) *lines {
	return &lines{w: w, interval: interval}
}

func (l *lines) Start(what string, total int64) {
	l.what, l.total, l.start = what, total, time.Now()
	l.done.Store(0)
	l.stop = make(chan struct{})
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(l.interval)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				l.print(false)
			}
		}
	}()
}

func (l *lines) Add(n int64) { l.done.Add(n) }

// Finish prints the last line of a job that got to its end; one that
// stopped short says why in its error instead.
func (l *lines) Finish() {
	if l.stop == nil {
		return
	}
	close(l.stop)
	l.wg.Wait()
	l.stop = nil
	if l.total <= 0 || l.done.Load() >= l.total {
		l.print(true)
	}
}

// print writes one line: how much is done of how much, the rate, and the
// time left (or taken, at the end).
func (l *lines) print(end bool) {
	done, elapsed := l.done.Load(), time.Since(l.start)
	rate := float64(done) / max(elapsed.Seconds(), 1e-3)
	line := fmt.Sprintf("%s: %s", l.what, humanBytes(done))
	if l.total > 0 {
		line += fmt.Sprintf(" of %s (%d%%)", humanBytes(l.total), done*100/l.total)
	}
	line += fmt.Sprintf(", %s/s", humanBytes(int64(rate)))
	switch {
	case end:
		line += fmt.Sprintf(", %s", elapsed.Round(100*time.Millisecond))
	case l.total > done && rate > 0:
		left := time.Duration(float64(l.total-done) / rate * float64(time.Second))
		line += fmt.Sprintf(", about %s left", left.Round(time.Second))
	}
	fmt.Fprintln(l.w, line)
}

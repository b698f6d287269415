package main

import (
	"io"

	"github.com/schollz/progressbar/v3"
)

// bar draws a progress.Reporter's job as a byte-counting progress bar.
type bar struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func newBar(w io.Writer) *bar { return &bar{w: w} }

func (b *bar) Start(what string, total int64) {
	b.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100_000_000), // 100 ms between redraws
		progressbar.OptionFullWidth(),
		progressbar.OptionClearOnFinish(),
	)
}

func (b *bar) Add(n int64) {
	if b.bar != nil {
		b.bar.Add64(n)
	}
}

func (b *bar) Finish() {
	if b.bar != nil {
		b.bar.Finish()
		b.bar = nil
	}
}

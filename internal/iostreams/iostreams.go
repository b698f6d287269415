// Package iostreams carries the standard streams and what is known about
// them (is it a terminal?), so commands can be tested without a terminal and
// decide in one place whether to draw progress or colour.
package iostreams

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams are the streams a command reads and writes.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	outTTY bool
	errTTY bool
}

// System returns the process's own streams.
func System() *IOStreams {
	return &IOStreams{
		In:     os.Stdin,
		Out:    os.Stdout,
		ErrOut: os.Stderr,
		outTTY: term.IsTerminal(int(os.Stdout.Fd())),
		errTTY: term.IsTerminal(int(os.Stderr.Fd())),
	}
}

// Test returns streams backed by buffers, none of them a terminal.
func Test() (s *IOStreams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// SetTTY pretends, in tests, that stdout and stderr are terminals.
func (s *IOStreams) SetTTY(out, errOut bool) { s.outTTY, s.errTTY = out, errOut }

// IsStdoutTTY tells whether standard output is a terminal (colour decisions).
func (s *IOStreams) IsStdoutTTY() bool { return s.outTTY }

// IsStderrTTY tells whether standard error is a terminal (progress bars).
func (s *IOStreams) IsStderrTTY() bool { return s.errTTY }

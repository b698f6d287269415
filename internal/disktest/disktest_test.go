package disktest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/raw"
)

// memDisk is a disk in memory with the extents it claims; short makes
// ReadAt return less than asked, and say nothing.
type memDisk struct {
	b     []byte
	exts  []raw.Extent
	short bool
}

func (d *memDisk) Size() int64                    { return int64(len(d.b)) }
func (d *memDisk) Extents() ([]raw.Extent, error) { return d.exts, nil }
func (d *memDisk) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(d.b)) {
		return 0, io.EOF
	}
	n := copy(p, d.b[off:])
	if d.short && n > 1 {
		return n - 1, nil
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// recorder is a testing.TB whose Fatalf records the failure and ends the
// check's goroutine, as the real one ends the test's.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fails runs check with a recorder and returns what it failed with.
func fails(t *testing.T, check func(testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r)
	}()
	<-done
	return r.failed
}

// The checks pass a right disk and catch each kind of wrong one.
func TestChecksCatchWrongDisks(t *testing.T) {
	want := make([]byte, 4096)
	copy(want[1000:], "data")
	good := &memDisk{b: want, exts: []raw.Extent{{Offset: 512, Length: 1024}}}
	for _, check := range []func(testing.TB){
		func(tb testing.TB) { AssertSame(tb, good, want) },
		func(tb testing.TB) { Exercise(tb, good) },
	} {
		if msg := fails(t, check); msg != "" {
			t.Fatalf("a right disk fails: %s", msg)
		}
	}
	other := bytes.Clone(want)
	other[3000] = 1
	for name, c := range map[string]struct {
		check func(testing.TB)
		want  string
	}{
		"bytes": {func(tb testing.TB) { AssertSame(tb, &memDisk{b: other, exts: good.exts}, want) }, "first difference at byte 3000"},
		"size":  {func(tb testing.TB) { AssertSame(tb, &memDisk{b: want[:2048]}, want) }, "size 2048"},
		"hole": {func(tb testing.TB) {
			AssertSame(tb, &memDisk{b: want, exts: []raw.Extent{{Offset: 0, Length: 512}}}, want)
		}, "outside every extent"},
		"overlap": {func(tb testing.TB) {
			CheckExtents(tb, good, []raw.Extent{{Offset: 0, Length: 100}, {Offset: 50, Length: 100}})
		}, "out of order"},
		"past end":    {func(tb testing.TB) { CheckExtents(tb, good, []raw.Extent{{Offset: 4000, Length: 100}}) }, "outside the 4096-byte disk"},
		"empty":       {func(tb testing.TB) { CheckExtents(tb, good, []raw.Extent{{Offset: 10, Length: 0}}) }, "out of order"},
		"silent read": {func(tb testing.TB) { Exercise(tb, &memDisk{b: want, short: true}) }, "and no error"},
	} {
		t.Run(name, func(t *testing.T) {
			if msg := fails(t, c.check); !strings.Contains(msg, c.want) {
				t.Fatalf("failed with %q; want %q", msg, c.want)
			}
		})
	}
}

// Source holds data at its start, across a MiB boundary, in its middle and
// at its end, and zeros between, in the file it writes too.
func TestSource(t *testing.T) {
	const size = 8<<20 + 512
	path, data := Source(t, t.TempDir(), size)
	file, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(file, data) || len(data) != size {
		t.Fatalf("the file (%d bytes, %v) is not the data (%d bytes)", len(file), err, len(data))
	}
	for _, off := range []int{0, 3<<20 - 1, 3<<20 + 1000, size/2 + 10, size - 1} {
		if data[off] == 0 {
			t.Errorf("no data at %d", off)
		}
	}
	for _, off := range []int{1 << 20, 2 << 20, 5 << 20, size - 2000} {
		if data[off] != 0 {
			t.Errorf("data at %d, in a hole", off)
		}
	}
}

package raw

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestCoalesceMergesTouchingAndDropsEmpty(t *testing.T) {
	got := Coalesce([]Extent{{0, 10}, {10, 5}, {20, 0}, {30, 10}, {35, 10}, {50, 1}})
	want := []Extent{{0, 15}, {30, 15}, {50, 1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Coalesce = %v, want %v", got, want)
	}
}

func TestClip(t *testing.T) {
	got := Clip([]Extent{{0, 10}, {20, 20}, {50, 10}}, 30)
	want := []Extent{{0, 10}, {20, 10}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Clip = %v, want %v", got, want)
	}
}

func TestAlignMiB(t *testing.T) {
	for _, c := range []struct{ in, want int64 }{{0, 0}, {1, MiB}, {MiB - 1, MiB}, {MiB, MiB}, {MiB + 1, 2 * MiB}} {
		if got := AlignMiB(c.in); got != c.want {
			t.Errorf("AlignMiB(%d) = %d, want %d", c.in, got, c.want)
		}
		if IsMiBAligned(c.in) != (c.in == c.want) {
			t.Errorf("IsMiBAligned(%d) wrong", c.in)
		}
	}
}

// A sparse file reports only the blocks written, and reads stop at the
// virtual size even when the file is longer (a fixed VHD's footer).
func TestFileExtentsSkipHoles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sparse.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 64 * MiB
	data := bytes.Repeat([]byte{0xAB}, 1<<16)
	f.WriteAt(data, 8*MiB)
	f.WriteAt(data, 40*MiB)
	f.WriteAt([]byte("footer"), size) // beyond the virtual size
	d := NewFile(f, size)
	exts, err := d.Extents()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, e := range exts {
		if e.End() > size {
			t.Fatalf("extent %v passes the virtual size", e)
		}
		total += e.Length
	}
	if total >= size/4 {
		t.Fatalf("extents cover %d of %d bytes; holes were not skipped: %v", total, size, exts)
	}
	covered := func(off int64) bool {
		for _, e := range exts {
			if off >= e.Offset && off < e.End() {
				return true
			}
		}
		return false
	}
	if !covered(8*MiB) || !covered(40*MiB+1<<16-1) {
		t.Fatalf("written data not inside extents %v", exts)
	}
	buf := make([]byte, 16)
	n, err := d.ReadAt(buf, size-8)
	if n != 8 || err != io.EOF {
		t.Fatalf("ReadAt at the end = %d, %v; want 8, EOF", n, err)
	}
}

// Window clips reads to the disk as io.ReaderAt asks: io.EOF with what is
// inside once a read runs past the end, nothing past it, an error below 0.
func TestWindow(t *testing.T) {
	p := make([]byte, 10)
	for _, c := range []struct {
		off, size int64
		n         int
		err       error
	}{
		{0, 100, 10, nil},
		{95, 100, 5, io.EOF},
		{100, 100, 0, io.EOF},
		{150, 100, 0, io.EOF},
		{-1, 100, 0, ErrNegativeOffset},
	} {
		got, err := Window(p, c.off, c.size)
		if len(got) != c.n || !errors.Is(err, c.err) {
			t.Errorf("Window(10 bytes, %d, %d) = %d bytes, %v; want %d, %v", c.off, c.size, len(got), err, c.n, c.err)
		}
	}
}

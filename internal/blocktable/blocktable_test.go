package blocktable

import (
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// counting reads entries whose value is their own index, at any offset,
// and counts the bytes read.
type counting struct{ read int64 }

func (c *counting) ReadAt(p []byte, off int64) (int, error) {
	c.read += int64(len(p))
	for i := 0; i+4 <= len(p); i += 4 {
		binary.LittleEndian.PutUint32(p[i:], uint32((off+int64(i))/4))
	}
	return len(p), nil
}

// A table of 2^32 entries costs what the entries read need, and no more
// than the pages kept, however far apart the reads are.
func TestHugeTableStaysBounded(t *testing.T) {
	c := &counting{}
	tab := New(c, 0, 1<<32, 4, "block map", nil)
	for i := int64(0); i < 1<<32; i += 1 << 20 {
		e, err := tab.Entry(i)
		if err != nil || e != uint64(i) {
			t.Fatalf("Entry(%d) = %d, %v", i, e, err)
		}
	}
	if len(tab.pages) > cachePages {
		t.Fatalf("%d pages kept, limit %d", len(tab.pages), cachePages)
	}
	if c.read != 4096*pageBytes {
		t.Fatalf("read %d bytes for 4096 entries a page apart, want %d", c.read, 4096*pageBytes)
	}
	if _, err := tab.Entry(1 << 32); err == nil {
		t.Fatal("an entry past the table was returned")
	}
}

// check's error is returned for an entry of a page it refused, and a
// short file is io.ErrUnexpectedEOF.
func TestCheckAndShortRead(t *testing.T) {
	bad := errors.New("bad entry")
	tab := New(&counting{}, 0, 100, 8, "BAT", func(i int64, e uint64) error {
		if i == 70 {
			return bad
		}
		return nil
	})
	if _, err := tab.Entry(3); !errors.Is(err, bad) {
		t.Fatalf("err = %v, want the check's error for the page", err)
	}
	short := New(io.NewSectionReader(&counting{}, 0, 10), 0, 4, 4, "block map", nil)
	if _, err := short.Entry(0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
}

// Package blocktable reads the table that maps a sparse disk format's
// blocks to file offsets (VDI's block map, VHDX's BAT, VMDK's grain
// directory) a page at a time, as reads reach it, keeping only a few pages:
// a header may claim billions of entries in a sparse file, and opening it
// must cost no more than opening a small image.
package blocktable

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/vhdprep/vhdprep/raw"
)

// Paging: 64 KiB of 8-byte entries a page, at most 4 MiB kept.
const (
	pageBytes  = 64 << 10
	cachePages = 64
)

// Table is a table of n little-endian entries of width bytes at an offset
// of a file. It is safe for concurrent use.
type Table struct {
	r     io.ReaderAt
	off   int64
	n     int64
	width int
	per   int64 // entries a page
	check func(i int64, e uint64) error
	name  string
	mu    sync.Mutex
	pages map[int64][]uint64
}

// New describes a table of n entries of width (4 or 8) bytes at off in r.
// check is called once for each entry of a page as it is read, and its
// error is returned for any entry of that page; name names the table in
// errors. The caller bounds off and n by the file's size first.
func New(r io.ReaderAt, off, n int64, width int, name string, check func(i int64, e uint64) error) *Table {
	return &Table{r: r, off: off, n: n, width: width, per: int64(pageBytes / width), check: check, name: name, pages: map[int64][]uint64{}}
}

// Len is the number of entries.
func (t *Table) Len() int64 { return t.n }

// Entry returns entry i, reading and checking its page if it is not kept.
func (t *Table) Entry(i int64) (uint64, error) {
	if i < 0 || i >= t.n {
		return 0, fmt.Errorf("%s: entry %d of %d", t.name, i, t.n)
	}
	page := i / t.per
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.pages[page]; ok {
		return p[i%t.per], nil
	}
	first := page * t.per
	b := make([]byte, min(t.per, t.n-first)*int64(t.width))
	if err := raw.ReadFull(t.r, b, t.off+first*int64(t.width)); err != nil {
		return 0, fmt.Errorf("reading the %s at offset %d: %w", t.name, t.off+first*int64(t.width), err)
	}
	p := make([]uint64, len(b)/t.width)
	for j := range p {
		if t.width == 4 {
			p[j] = uint64(binary.LittleEndian.Uint32(b[4*j:]))
		} else {
			p[j] = binary.LittleEndian.Uint64(b[8*j:])
		}
		if t.check != nil {
			if err := t.check(first+int64(j), p[j]); err != nil {
				return 0, err
			}
		}
	}
	if len(t.pages) >= cachePages {
		for k := range t.pages {
			delete(t.pages, k)
			break
		}
	}
	t.pages[page] = p
	return p[i%t.per], nil
}

// ReadBlocks fills p, guest bytes from off, block by block: start says
// where block b's data lies in r, or -1 for a block that reads as zeros.
// It returns how much of p it filled; format names the format in errors.
func ReadBlocks(r io.ReaderAt, p []byte, off, blockSize int64, format string, start func(b int64) (int64, error)) (int, error) {
	for n := 0; n < len(p); {
		pos := off + int64(n)
		b, within := pos/blockSize, pos%blockSize
		chunk := p[n:min(len(p), n+int(blockSize-within))]
		at, err := start(b)
		if err != nil {
			return n, err
		}
		if at < 0 {
			clear(chunk)
		} else if err := raw.ReadFull(r, chunk, at+within); err != nil {
			return n, fmt.Errorf("reading %s block %d: %w", format, b, err)
		}
		n += len(chunk)
	}
	return len(p), nil
}

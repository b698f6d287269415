package pkgdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ParseRPMSqlite reads rpm's sqlite database (rpmdb.sqlite: RHEL 9,
// Fedora 33 and later): the header blob of every row of its Packages
// table. It reads the SQLite file format itself (sqlite.org/fileformat.html),
// only as far as walking one table's b-tree needs, and visits each page at
// most once.
func ParseRPMSqlite(r io.ReaderAt, size int64) ([]Package, error) {
	db, err := openSqlite(r, size)
	if err != nil {
		return nil, err
	}
	root, err := db.tableRoot("Packages")
	if err != nil {
		return nil, err
	}
	var out []Package
	err = db.walkTable(root, func(record []byte) error {
		blob, ok := recordColumn(record, 1) // hnum is the rowid: NULL here
		if !ok {
			return nil
		}
		if p, ok := parseRPMHeader(blob); ok {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

var errNotSqlite = errors.New("not an SQLite 3 database")

// sqliteDB is an SQLite file being read.
type sqliteDB struct {
	r        io.ReaderAt
	pageSize int64 // bytes in a page
	usable   int64 // a page's bytes less the reserved ones at its end
	pages    int64
	visited  map[int64]bool
}

func openSqlite(r io.ReaderAt, size int64) (*sqliteDB, error) {
	var h [100]byte
	if _, err := r.ReadAt(h[:], 0); err != nil || string(h[:16]) != "SQLite format 3\x00" {
		return nil, errNotSqlite
	}
	pageSize := int64(binary.BigEndian.Uint16(h[16:]))
	if pageSize == 1 {
		pageSize = 65536
	}
	if pageSize < 512 || pageSize&(pageSize-1) != 0 {
		return nil, fmt.Errorf("%w: page size %d", errNotSqlite, pageSize)
	}
	usable := pageSize - int64(h[20])
	if usable < 480 {
		return nil, fmt.Errorf("%w: %d usable bytes a page", errNotSqlite, usable)
	}
	return &sqliteDB{r: r, pageSize: pageSize, usable: usable, pages: size / pageSize, visited: map[int64]bool{}}, nil
}

// page reads page n (from 1), once: a page seen again means a cycle.
func (db *sqliteDB) page(n int64) ([]byte, error) {
	if n < 1 || n > db.pages {
		return nil, fmt.Errorf("page %d of %d", n, db.pages)
	}
	if db.visited[n] {
		return nil, fmt.Errorf("page %d is linked twice", n)
	}
	db.visited[n] = true
	b := make([]byte, db.pageSize)
	if _, err := db.r.ReadAt(b, (n-1)*db.pageSize); err != nil {
		return nil, err
	}
	return b[:db.usable], nil
}

// tableRoot finds a table's root page in the schema table (page 1).
func (db *sqliteDB) tableRoot(name string) (int64, error) {
	root := int64(0)
	err := db.walkTable(1, func(record []byte) error {
		typ, _ := recordColumn(record, 0)
		tbl, _ := recordColumn(record, 1)
		if string(typ) == "table" && string(tbl) == name {
			if v, ok := recordInt(record, 3); ok {
				root = v
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if root == 0 {
		return 0, fmt.Errorf("no table %s", name)
	}
	// The schema's pages are not the table's: forget them.
	db.visited = map[int64]bool{}
	return root, nil
}

// walkTable calls fn with the record of every row of the table b-tree
// rooted at page n, in rowid order.
func (db *sqliteDB) walkTable(n int64, fn func(record []byte) error) error {
	b, err := db.page(n)
	if err != nil {
		return err
	}
	hdr := 0
	if n == 1 {
		hdr = 100 // the file header comes first
	}
	if len(b) < hdr+12 {
		return fmt.Errorf("page %d is too short", n)
	}
	kind, cells := b[hdr], int(binary.BigEndian.Uint16(b[hdr+3:]))
	ptrs := hdr + 8
	if kind == 0x05 {
		ptrs = hdr + 12
	}
	if ptrs+2*cells > len(b) {
		return fmt.Errorf("page %d: %d cells do not fit", n, cells)
	}
	for i := 0; i < cells; i++ {
		off := int(binary.BigEndian.Uint16(b[ptrs+2*i:]))
		if off >= len(b) {
			return fmt.Errorf("page %d: cell %d at %d", n, i, off)
		}
		cell := b[off:]
		switch kind {
		case 0x05: // interior: left child, then the key
			if len(cell) < 4 {
				return fmt.Errorf("page %d: cell %d is cut short", n, i)
			}
			if err := db.walkTable(int64(binary.BigEndian.Uint32(cell)), fn); err != nil {
				return err
			}
		case 0x0d:
			record, err := db.payload(cell)
			if err != nil {
				return fmt.Errorf("page %d: cell %d: %w", n, i, err)
			}
			if err := fn(record); err != nil {
				return err
			}
		default:
			return fmt.Errorf("page %d is not a table b-tree page (kind %#x)", n, kind)
		}
	}
	if kind == 0x05 {
		return db.walkTable(int64(binary.BigEndian.Uint32(b[hdr+8:])), fn)
	}
	return nil
}

// payload reads a table leaf cell's record, following its overflow pages.
func (db *sqliteDB) payload(cell []byte) ([]byte, error) {
	size, n := varint(cell)
	if n == 0 {
		return nil, errors.New("bad payload size")
	}
	_, m := varint(cell[n:]) // the rowid
	if m == 0 {
		return nil, errors.New("bad rowid")
	}
	cell = cell[n+m:]
	if size > uint64(db.pages*db.usable) {
		return nil, fmt.Errorf("a %d-byte record in a %d-page file", size, db.pages)
	}
	total := int64(size)
	// How much lies in the cell itself (the file format's rule for table leaves).
	u := db.usable
	local, max := total, u-35
	if total > max {
		minLocal := (u-12)*32/255 - 23
		local = minLocal + (total-minLocal)%(u-4)
		if local > max {
			local = minLocal
		}
	}
	if int64(len(cell)) < local || (local < total && int64(len(cell)) < local+4) {
		return nil, errors.New("record cut short")
	}
	out := make([]byte, 0, total)
	out = append(out, cell[:local]...)
	next := int64(0)
	if local < total {
		next = int64(binary.BigEndian.Uint32(cell[local:]))
	}
	for int64(len(out)) < total {
		p, err := db.page(next)
		if err != nil {
			return nil, fmt.Errorf("overflow: %w", err)
		}
		chunk := p[4:]
		if rest := total - int64(len(out)); int64(len(chunk)) > rest {
			chunk = chunk[:rest]
		}
		out = append(out, chunk...)
		next = int64(binary.BigEndian.Uint32(p))
	}
	return out, nil
}

// varint reads SQLite's variable-length integer: 7 bits a byte, high bit
// set on all but the last, the ninth byte whole. n is 0 when b ends first.
func varint(b []byte) (v uint64, n int) {
	for i := 0; i < 9 && i < len(b); i++ {
		if i == 8 {
			return v<<8 | uint64(b[i]), 9
		}
		v = v<<7 | uint64(b[i]&0x7f)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

// recordField finds column i of a record: its serial type and its bytes.
func recordField(record []byte, i int) (serial uint64, body []byte, ok bool) {
	hdrSize, n := varint(record)
	if n == 0 || hdrSize > uint64(len(record)) || hdrSize < uint64(n) {
		return 0, nil, false
	}
	hdr, pos := record[n:hdrSize], hdrSize
	for col := 0; len(hdr) > 0; col++ {
		t, m := varint(hdr)
		if m == 0 {
			return 0, nil, false
		}
		hdr = hdr[m:]
		l := serialSize(t)
		if pos+l > uint64(len(record)) || pos+l < pos {
			return 0, nil, false
		}
		if col == i {
			return t, record[pos : pos+l], true
		}
		pos += l
	}
	return 0, nil, false
}

// serialSize is the length of a value of a serial type.
func serialSize(t uint64) uint64 {
	switch {
	case t >= 12:
		return (t - 12) / 2
	case t <= 4:
		return t
	case t == 5:
		return 6
	case t == 6, t == 7:
		return 8
	}
	return 0 // 8, 9: the constants 0 and 1; 10, 11: reserved
}

// recordColumn is a text or blob column's bytes.
func recordColumn(record []byte, i int) ([]byte, bool) {
	t, b, ok := recordField(record, i)
	return b, ok && t >= 12
}

// recordInt is an integer column's value.
func recordInt(record []byte, i int) (int64, bool) {
	t, b, ok := recordField(record, i)
	if !ok || t < 1 || t > 9 || t == 7 {
		return 0, false
	}
	if t == 8 || t == 9 {
		return int64(t - 8), true
	}
	var v int64
	if len(b) > 0 && b[0]&0x80 != 0 {
		v = -1
	}
	for _, c := range b {
		v = v<<8 | int64(c)
	}
	return v, true
}

// The rpm header tags pkgdb reads, and their types.
const (
	rpmTagName    = 1000
	rpmTagVersion = 1001
	rpmTagRelease = 1002
	rpmTagEpoch   = 1003
	rpmTypeInt32  = 4
	rpmTypeString = 6
)

// parseRPMHeader reads the name, epoch, version and release of an rpm
// header blob as rpmdb stores it: index entry count and data length
// (big-endian 32-bit), the index entries (tag, type, offset, count), the
// data.
func parseRPMHeader(b []byte) (Package, bool) {
	if len(b) < 8 {
		return Package{}, false
	}
	il, dl := uint64(binary.BigEndian.Uint32(b)), uint64(binary.BigEndian.Uint32(b[4:]))
	if il > uint64(len(b)-8)/16 || 8+16*il+dl > uint64(len(b)) {
		return Package{}, false
	}
	data := b[8+16*il : 8+16*il+dl]
	fields := map[uint32]string{}
	for i := uint64(0); i < il; i++ {
		e := b[8+16*i:]
		tag, typ, off := binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:]), uint64(binary.BigEndian.Uint32(e[8:]))
		if tag < rpmTagName || tag > rpmTagEpoch || off >= uint64(len(data)) {
			continue
		}
		switch typ {
		case rpmTypeString:
			s := data[off:]
			if end := strings.IndexByte(string(s), 0); end >= 0 {
				fields[tag] = string(s[:end])
			}
		case rpmTypeInt32:
			if off+4 <= uint64(len(data)) {
				fields[tag] = fmt.Sprint(binary.BigEndian.Uint32(data[off:]))
			}
		}
	}
	p := Package{Name: fields[rpmTagName], Version: fields[rpmTagVersion]}
	if p.Name == "" || p.Version == "" || strings.ContainsAny(p.Name+p.Version, "\n") {
		return Package{}, false
	}
	if r := fields[rpmTagRelease]; r != "" {
		p.Version += "-" + r
	}
	if e := fields[rpmTagEpoch]; e != "" && e != "0" {
		p.Version = e + ":" + p.Version
	}
	return p, true
}

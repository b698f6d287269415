package initrd

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// The newc and crc cpio formats: a 110-byte ASCII header (a 6-byte magic
// and 13 fields of 8 hex digits), the NUL-terminated name, the data; name
// and data each padded to 4 bytes.
const (
	headerLen  = 110
	magicNewc  = "070701"
	magicCRC   = "070702" // newc plus a sum of the data bytes
	magicODC   = "070707" // the portable format, which the kernel refuses
	trailer    = "TRAILER!!!"
	maxPathLen = 4096 // the kernel's PATH_MAX: longer names and link targets are not unpacked
)

// Indexes of the header's fields.
const (
	fieldIno       = 0
	fieldMode      = 1
	fieldUID       = 2
	fieldGID       = 3
	fieldNlink     = 4
	fieldMtime     = 5
	fieldFileSize  = 6
	fieldDevMajor  = 7
	fieldDevMinor  = 8
	fieldRdevMajor = 9
	fieldRdevMinor = 10
	fieldNameSize  = 11
	fieldCheck     = 12
	numFields      = 13
)

// Unix file types in a cpio mode.
const (
	modeType     = 0o170000
	modeSocket   = 0o140000
	modeSymlink  = 0o120000
	modeRegular  = 0o100000
	modeBlock    = 0o060000
	modeDir      = 0o040000
	modeChar     = 0o020000
	modeFIFO     = 0o010000
	modeSetuid   = 0o4000
	modeSetgid   = 0o2000
	modeSticky   = 0o1000
	modePermBits = 0o777
)

// entry reads one cpio entry from s, whose next byte is a header, and
// hands it to fn unless it is a trailer. end is the file's size for a
// stored entry, whose data must lie inside, or -1 for a decompressed one
// (bounded by the walk's budget instead).
func (w *walker) entry(s *stream, seg Segment, end int64) (isTrailer bool, err error) {
	if _, err := io.ReadFull(s, w.hdr[:]); err != nil {
		return false, noEOF(err)
	}
	magic := string(w.hdr[:6])
	if magic != magicNewc && magic != magicCRC {
		if magic == magicODC {
			return false, fmt.Errorf("%w: portable (odc) format, which the kernel refuses; rebuild with cpio -H newc", ErrHeader)
		}
		return false, fmt.Errorf("%w: magic %q, want %q or %q", ErrHeader, magic, magicNewc, magicCRC)
	}
	var f [numFields]uint32
	for i := range f {
		v, ok := parseHex(w.hdr[6+8*i : 14+8*i])
		if !ok {
			return false, fmt.Errorf("%w: field %d is %q, not 8 hex digits", ErrHeader, i, w.hdr[6+8*i:14+8*i])
		}
		f[i] = v
	}
	nameSize, size := int64(f[fieldNameSize]), int64(f[fieldFileSize])
	if nameSize < 1 || nameSize > maxPathLen {
		return false, fmt.Errorf("%w: name size %d, want 1 to %d", ErrHeader, nameSize, maxPathLen)
	}
	if cap(w.name) < maxPathLen {
		w.name = make([]byte, maxPathLen)
	}
	raw := w.name[:nameSize]
	if _, err := io.ReadFull(s, raw); err != nil {
		return false, noEOF(err)
	}
	if raw[nameSize-1] != 0 {
		return false, fmt.Errorf("%w: name %q is not NUL-terminated", ErrHeader, raw)
	}
	raw = raw[:bytes.IndexByte(raw, 0)]
	if err := s.discard(pad4(s.off)); err != nil {
		return false, err
	}
	if end >= 0 && size > end-s.off {
		return false, fmt.Errorf("%q: data of %d bytes runs past the end of the file: %w", raw, size, io.ErrUnexpectedEOF)
	}
	if string(raw) == trailer {
		return true, s.discard(size + pad4(s.off+size))
	}
	mode := f[fieldMode]
	e := Entry{Name: cleanName(string(raw)), Mode: fileMode(mode), Size: size,
		Ino: f[fieldIno], UID: f[fieldUID], GID: f[fieldGID], Nlink: f[fieldNlink], ModTime: f[fieldMtime],
		Dev: [2]uint32{f[fieldDevMajor], f[fieldDevMinor]}, Rdev: [2]uint32{f[fieldRdevMajor], f[fieldRdevMinor]}}
	c := &content{s: s, left: size, crc: magic == magicCRC && mode&modeType == modeRegular}
	if mode&modeType == modeSymlink {
		if size > maxPathLen {
			return false, fmt.Errorf("%w: %q: link target of %d bytes, more than %d", ErrHeader, e.Name, size, maxPathLen)
		}
		target := make([]byte, size)
		if _, err := io.ReadFull(c, target); err != nil {
			return false, noEOF(err)
		}
		e.LinkTarget = string(target)
	}
	if err := w.fn(seg, e, c); err != nil {
		return false, fnError{err}
	}
	if c.crc {
		if _, err := io.Copy(io.Discard, c); err != nil {
			return false, err
		}
		if c.sum != f[fieldCheck] {
			return false, fmt.Errorf("%q: %w: sum %#x, header says %#x", e.Name, ErrChecksum, c.sum, f[fieldCheck])
		}
	} else if err := s.discard(c.left); err != nil {
		return false, err
	}
	return false, s.discard(pad4(s.off))
}

// content reads an entry's data, summing it for crc archives.
type content struct {
	s    *stream
	left int64
	crc  bool
	sum  uint32
}

func (c *content) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.s.Read(p)
	c.left -= int64(n)
	if c.crc {
		for _, b := range p[:n] {
			c.sum += uint32(b)
		}
	}
	if c.left > 0 {
		err = noEOF(err)
	} else if err == io.EOF {
		err = nil
	}
	return n, err
}

func parseHex(b []byte) (uint32, bool) {
	var v uint32
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint32(c)
	}
	return v, true
}

// pad4 is how many bytes take off to the next multiple of 4.
func pad4(off int64) int64 { return -off & 3 }

// cleanName makes an archive name ("./lib", "/lib", "lib/") the path of
// the file it unpacks to, relative to the root.
func cleanName(name string) string {
	if name = strings.TrimPrefix(path.Clean("/"+name), "/"); name == "" {
		return "."
	}
	return name
}

func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & modePermBits)
	if m&modeSetuid != 0 {
		mode |= fs.ModeSetuid
	}
	if m&modeSetgid != 0 {
		mode |= fs.ModeSetgid
	}
	if m&modeSticky != 0 {
		mode |= fs.ModeSticky
	}
	switch m & modeType {
	case modeRegular:
	case modeDir:
		mode |= fs.ModeDir
	case modeSymlink:
		mode |= fs.ModeSymlink
	case modeBlock:
		mode |= fs.ModeDevice
	case modeChar:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case modeFIFO:
		mode |= fs.ModeNamedPipe
	case modeSocket:
		mode |= fs.ModeSocket
	default:
		mode |= fs.ModeIrregular
	}
	return mode
}

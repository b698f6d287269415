package raw

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// File is a Disk whose bytes are the first size bytes of a file: a raw image,
// or the data part of a fixed VHD (everything before the footer).
type File struct {
	f    *os.File
	size int64
}

// NewFile wraps the first size bytes of f as a Disk. The caller keeps
// ownership of f.
func NewFile(f *os.File, size int64) *File { return &File{f: f, size: size} }

// ReadAt reads guest bytes; reads past the virtual size end with io.EOF.
func (d *File) ReadAt(p []byte, off int64) (int, error) {
	if off >= d.size {
		return 0, io.EOF
	}
	short := false
	if rest := d.size - off; int64(len(p)) > rest {
		p, short = p[:rest], true
	}
	n, err := d.f.ReadAt(p, off)
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

// Size is the virtual size.
func (d *File) Size() int64 { return d.size }

// Extents asks the filesystem where the file holds data (SEEK_DATA and
// SEEK_HOLE), so holes are skipped without being read. Where the filesystem
// cannot say, the whole file is one extent and callers fall back to scanning
// for zeros.
func (d *File) Extents() ([]Extent, error) {
	exts, err := seekExtents(d.f, d.size)
	if err != nil {
		return nil, fmt.Errorf("%s: finding data extents: %w", d.f.Name(), err)
	}
	return exts, nil
}

func seekExtents(f *os.File, size int64) ([]Extent, error) {
	fd := int(f.Fd())
	var exts []Extent
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // no data past off
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return []Extent{{0, size}}, nil
		}
		if err != nil {
			return nil, err
		}
		if data >= size {
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		if hole > size {
			hole = size
		}
		exts = append(exts, Extent{data, hole - data})
		off = hole
	}
	return exts, nil
}

package raw

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// ErrNotImage is returned for a path that is neither a regular file nor a
// block device: a FIFO, character device, socket or directory.
var ErrNotImage = errors.New("not an image file or block device")

// OpenFile opens an image for reading (flag os.O_RDONLY) or changing
// (os.O_RDWR) and returns it with its length: a regular file's size, or a
// block device's, which stat does not give. Anything else is refused at
// once: opening a FIFO would wait for a writer, and a character device has
// no size.
func OpenFile(path string, flag int) (*os.File, int64, error) {
	// O_NONBLOCK makes opening a FIFO return at once, so it can be refused.
	f, err := os.OpenFile(path, flag|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, err // *PathError names the file and the reason
	}
	size, err := imageSize(f)
	if err == nil {
		err = unix.SetNonblock(int(f.Fd()), false)
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	return f, size, nil
}

func imageSize(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	switch m := st.Mode(); {
	case m.IsRegular():
		return st.Size(), nil
	case m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0:
		return f.Seek(0, io.SeekEnd)
	default:
		return 0, fmt.Errorf("%w (a %s); give an image file", ErrNotImage, kindOf(m))
	}
}

func kindOf(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&os.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

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
	p, eof := Window(p, off, d.size)
	if len(p) == 0 {
		return 0, eof
	}
	n, err := d.f.ReadAt(p, off)
	if err == nil {
		err = eof
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

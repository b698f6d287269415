package initrd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// Errors of a Writer.
var (
	ErrWriteTooLong = errors.New("initrd: write past the entry's size")
	ErrMissingData  = errors.New("initrd: entry ended before its size was written")
	ErrName         = errors.New("initrd: entry name empty, with a NUL, or longer than PATH_MAX")
)

// Writer writes a newc cpio archive, the format the kernel unpacks.
type Writer struct {
	w    io.Writer
	off  int64 // bytes written, for the 4-byte padding
	left int64 // data the current entry still owes
	err  error
}

// NewWriter returns a Writer writing an archive to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// WriteHeader ends the entry before (which must have had all its data)
// and starts e. A regular file's e.Size bytes follow with Write; a
// symbolic link's target is e.LinkTarget, which WriteHeader writes.
func (w *Writer) WriteHeader(e Entry) error {
	if err := w.endEntry(); err != nil {
		return err
	}
	size := e.Size
	if e.Mode&fs.ModeSymlink != 0 {
		size = int64(len(e.LinkTarget))
	} else if !e.Mode.IsRegular() {
		size = 0
	}
	if err := w.header(e.Name, cpioMode(e.Mode), size, e); err != nil {
		return err
	}
	w.left = size
	if e.Mode&fs.ModeSymlink != 0 {
		_, err := io.WriteString(w, e.LinkTarget)
		return err
	}
	return nil
}

// Write writes the current entry's data.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if int64(len(p)) > w.left {
		return 0, ErrWriteTooLong
	}
	n, err := w.w.Write(p)
	w.off += int64(n)
	w.left -= int64(n)
	w.err = err
	return n, err
}

// blockSize is what GNU cpio pads an archive to, and what tools that cut
// a file into archives by cpio's own count of blocks rely on.
const blockSize = 512

// Close ends the archive with its trailer, padded to a whole block. It
// does not close the writer underneath.
func (w *Writer) Close() error {
	if err := w.endEntry(); err != nil {
		return err
	}
	if err := w.header(trailer, 0, 0, Entry{Nlink: 1}); err != nil {
		return err
	}
	_, err := w.w.Write(make([]byte, -w.off&(blockSize-1)))
	if err != nil {
		w.err = err
	}
	return err
}

func (w *Writer) endEntry() error {
	if w.err != nil {
		return w.err
	}
	if w.left > 0 {
		w.err = fmt.Errorf("%w: %d bytes missing", ErrMissingData, w.left)
		return w.err
	}
	return w.pad()
}

func (w *Writer) header(name string, mode uint32, size int64, e Entry) error {
	if name == "" || strings.IndexByte(name, 0) >= 0 || len(name)+1 > maxPathLen {
		return fmt.Errorf("%w: %q", ErrName, name)
	}
	if size > 1<<32-1 {
		return fmt.Errorf("initrd: %s: %d bytes, more than newc's 4 GiB", name, size)
	}
	nlink := max(e.Nlink, 1)
	hdr := fmt.Sprintf("%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", magicNewc,
		e.Ino, mode, e.UID, e.GID, nlink, e.ModTime, size, e.Dev[0], e.Dev[1], e.Rdev[0], e.Rdev[1], len(name)+1, 0)
	if _, err := io.WriteString(w.w, hdr+name+"\x00"); err != nil {
		w.err = err
		return err
	}
	w.off += int64(len(hdr) + len(name) + 1)
	return w.pad()
}

func (w *Writer) pad() error {
	var zeros [3]byte
	n, err := w.w.Write(zeros[:pad4(w.off)])
	w.off += int64(n)
	if err != nil {
		w.err = err
	}
	return err
}

// cpioMode is fileMode's inverse.
func cpioMode(m fs.FileMode) uint32 {
	c := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		c |= modeSetuid
	}
	if m&fs.ModeSetgid != 0 {
		c |= modeSetgid
	}
	if m&fs.ModeSticky != 0 {
		c |= modeSticky
	}
	switch {
	case m.IsDir():
		c |= modeDir
	case m&fs.ModeSymlink != 0:
		c |= modeSymlink
	case m&fs.ModeCharDevice != 0:
		c |= modeChar
	case m&fs.ModeDevice != 0:
		c |= modeBlock
	case m&fs.ModeNamedPipe != 0:
		c |= modeFIFO
	case m&fs.ModeSocket != 0:
		c |= modeSocket
	default:
		c |= modeRegular
	}
	return c
}

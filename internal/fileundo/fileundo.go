// Package fileundo makes a change of a file's bytes and size in place
// (resize, convert --in-place) survive a kill: before the change, the bytes
// it will overwrite or cut off and the file's size go to an undo file
// beside it, written whole or not at all; the change removes it once the
// result is verified, and whatever opens the file next puts the old bytes
// back if it is still there.
//
// An undo file is bound to its file: it records the file's device and
// inode and the sizes the change gives it, and a SHA-256 of its own
// content. One that does not match (written for another file, planted
// beside this one, or left from before the file changed some other way)
// or is damaged is refused, and the file is left alone.
package fileundo

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"syscall"
)

// Suffix names a file's undo file: FILE.vhdprep-resize-undo, beside it.
const Suffix = ".vhdprep-resize-undo"

// magic starts every undo file; the version is in it.
const magic = "VHDPREP-RESIZE-UNDO-2\n"

// Errors.
var (
	ErrNoSpace = errors.New("not enough free space for the undo file")
	ErrCorrupt = errors.New("the undo file is damaged")
	ErrForeign = errors.New("it does not belong to this file as it is now")
)

// Sizes are a file's size when its undo file is written and the smallest
// and largest it has while the change runs.
type Sizes struct {
	Before, Min, Max int64
}

// header is what an undo file says of its file, after the magic.
type header struct {
	Sizes
	Dev, Ino uint64
	N        int64 // ranges that follow
}

// headerSize is header's size as written.
const headerSize = 6 * 8

// Range is a byte range of the file whose bytes the change needs back.
type Range struct {
	Off, Len int64
}

// Undo is a saved undo file, for one change of one file.
type Undo struct {
	f    *os.File
	name string
}

// Save writes the undo file of f (the file at path, sizes.Before bytes
// long now): f's identity and sizes, every range's bytes as they are, then
// a SHA-256 of the whole. It is written to a temporary file, synced and
// renamed into place, so a kill leaves either no undo file (nothing was
// changed yet) or a whole one. A directory without room for it is refused
// with the numbers.
func Save(path string, f *os.File, sizes Sizes, ranges []Range) (*Undo, error) {
	name := path + Suffix
	dir := filepath.Dir(name)
	var fst syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &fst); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// A kill while Restore puts the file back leaves it at its old size.
	sizes.Min, sizes.Max = min(sizes.Min, sizes.Before), max(sizes.Max, sizes.Before)
	h := header{Sizes: sizes, Dev: fst.Dev, Ino: fst.Ino, N: int64(len(ranges))}
	need := int64(len(magic)) + headerSize + sha256.Size
	for _, r := range ranges {
		need += 16 + r.Len
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil, fmt.Errorf("%s: cannot tell the free space of %s: %w", path, dir, err)
	}
	if free := int64(st.Bavail) * int64(st.Bsize); free < need {
		return nil, fmt.Errorf("%s: %w: %s has %.1f MiB free, and the undo file needs %.1f MiB; free some space or work on a copy elsewhere",
			path, ErrNoSpace, dir, float64(free)/(1<<20), float64(need)/(1<<20))
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(name)+".*")
	if err != nil {
		return nil, fmt.Errorf("%s: cannot write its undo file: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	err = write(tmp, f, h, ranges)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: cannot write its undo file: %w", path, err)
	}
	return &Undo{f: f, name: name}, nil
}

func write(w io.Writer, f *os.File, h header, ranges []Range) error {
	sum := sha256.New()
	bw := bufio.NewWriter(io.MultiWriter(w, sum))
	bw.WriteString(magic)
	binary.Write(bw, binary.BigEndian, h)
	for _, r := range ranges {
		binary.Write(bw, binary.BigEndian, [2]int64{r.Off, r.Len})
		if _, err := io.Copy(bw, io.NewSectionReader(f, r.Off, r.Len)); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(sum.Sum(nil))
	return err
}

// Restore puts the file back as it was when Save ran and removes the undo
// file.
func (u *Undo) Restore() error {
	if err := restore(u.name, u.f); err != nil {
		return err
	}
	return u.Done()
}

// Done removes the undo file: the change is complete and verified.
func (u *Undo) Done() error {
	if err := os.Remove(u.name); err != nil {
		return err
	}
	return syncDir(filepath.Dir(u.name))
}

// Recover undoes an interrupted change of the file at path, if its undo
// file is there, and tells whether it did. The caller holds the file's
// lock. An undo file that is damaged or not the file's is refused with
// what to do, and neither it nor the file is touched.
func Recover(path string) (bool, error) {
	name := path + Suffix
	if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Errorf("%s: an interrupted resize left %s, and the file cannot be opened to undo it: %w", path, name, err)
	}
	defer f.Close()
	if err := restore(name, f); errors.Is(err, ErrForeign) || errors.Is(err, ErrCorrupt) {
		return false, fmt.Errorf("%s: %w; neither is changed: if no resize or convert --in-place of %s was interrupted, remove %s, else restore the file from a backup", path, err, path, name)
	} else if err != nil {
		return false, fmt.Errorf("%s: undoing an interrupted resize: %w; %s is kept: restore the file from a backup", path, err, name)
	}
	return true, (&Undo{f: f, name: name}).Done()
}

// restore checks the undo file whole, and that it is f's, before it
// writes anything, then puts its size and bytes back into f and syncs it.
func restore(name string, f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	u, err := OpenBeside(name, fi)
	if err != nil {
		return err
	}
	defer u.Close()
	h, err := verify(u)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := belongs(f, h); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	r := bufio.NewReader(io.NewSectionReader(u, int64(len(magic))+headerSize, math.MaxInt64))
	if err := f.Truncate(h.Before); err != nil {
		return err
	}
	for range h.N {
		var rg Range
		if err := binary.Read(r, binary.BigEndian, &rg); err != nil {
			return err
		}
		if _, err := io.CopyN(io.NewOffsetWriter(f, rg.Off), r, rg.Len); err != nil {
			return err
		}
	}
	return f.Sync()
}

// OpenBeside opens name, a file vhdprep keeps beside an image (an undo
// file, the record of a change), to read it, and refuses with ErrForeign
// one vhdprep cannot have written: a symbolic link, anything but a regular
// file (a FIFO is not waited on), one owned by neither the user nor the
// image's owner, or one others may write. image describes the image.
func OpenBeside(name string, image fs.FileInfo) (*os.File, error) {
	u, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s: %w: it is a symbolic link", name, ErrForeign)
	}
	if err != nil {
		return nil, err
	}
	var ust syscall.Stat_t
	if err := syscall.Fstat(int(u.Fd()), &ust); err != nil {
		u.Close()
		return nil, err
	}
	imageUID := image.Sys().(*syscall.Stat_t).Uid
	switch {
	case ust.Mode&syscall.S_IFMT != syscall.S_IFREG:
		err = fmt.Errorf("%w: it is not a regular file", ErrForeign)
	case ust.Uid != uint32(os.Geteuid()) && ust.Uid != imageUID:
		err = fmt.Errorf("%w: it is owned by uid %d, neither you nor the image's owner", ErrForeign, ust.Uid)
	case ust.Mode&0o022 != 0:
		err = fmt.Errorf("%w: others may write it (mode %04o)", ErrForeign, ust.Mode&0o7777)
	}
	if err != nil {
		u.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return u, nil
}

// belongs checks that an undo file, with header h, is f's: written for
// this very file (its device and inode), and that f's size is one the
// change gives it, so f has not been changed some other way since.
func belongs(f *os.File, h header) error {
	var fst syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &fst); err != nil {
		return err
	}
	switch {
	case h.Dev != fst.Dev || h.Ino != fst.Ino:
		return fmt.Errorf("%w: it was written for inode %d of device %#x, and the file is inode %d of device %#x", ErrForeign, h.Ino, h.Dev, fst.Ino, fst.Dev)
	case fst.Size < h.Min || fst.Size > h.Max:
		return fmt.Errorf("%w: it was written for a change between %d and %d bytes, and the file is %d bytes", ErrForeign, h.Min, h.Max, fst.Size)
	}
	return nil
}

// verify checks the undo file before anything is written back: its
// checksum, its magic, and that every range lies inside the file's old size
// and inside the undo file. It returns the header.
func verify(u *os.File) (header, error) {
	var h header
	st, err := u.Stat()
	if err != nil {
		return h, err
	}
	body := st.Size() - sha256.Size
	if body < int64(len(magic))+headerSize {
		return h, ErrCorrupt
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, io.NewSectionReader(u, 0, body)); err != nil {
		return h, err
	}
	want := make([]byte, sha256.Size)
	if _, err := u.ReadAt(want, body); err != nil || !bytes.Equal(want, sum.Sum(nil)) {
		return h, ErrCorrupt
	}
	r := bufio.NewReader(io.NewSectionReader(u, 0, body))
	h, err = readHeader(r)
	if err != nil {
		return h, err
	}
	size, n := h.Before, h.N
	left := body - int64(len(magic)) - headerSize
	if size < 0 || n < 0 || n > left/16 {
		return h, ErrCorrupt
	}
	for range n {
		var rg Range
		if err := binary.Read(r, binary.BigEndian, &rg); err != nil {
			return h, ErrCorrupt
		}
		left -= 16
		if rg.Off < 0 || rg.Len < 0 || rg.Len > size-rg.Off || rg.Len > left {
			return h, ErrCorrupt
		}
		if _, err := r.Discard(int(rg.Len)); err != nil {
			return h, ErrCorrupt
		}
		left -= rg.Len
	}
	if left != 0 {
		return h, ErrCorrupt
	}
	return h, nil
}

// readHeader reads the magic and the header.
func readHeader(r io.Reader) (header, error) {
	m := make([]byte, len(magic))
	var h header
	if _, err := io.ReadFull(r, m); err != nil || string(m) != magic {
		return h, ErrCorrupt
	}
	if err := binary.Read(r, binary.BigEndian, &h); err != nil {
		return h, ErrCorrupt
	}
	return h, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Package fileundo makes a change of a file's bytes and size in place
// (resize, convert --in-place) survive a kill: before the change, the bytes
// it will overwrite or cut off and the file's size go to an undo file
// beside it, written whole or not at all; the change removes it once the
// result is verified, and whatever opens the file next puts the old bytes
// back if it is still there.
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
	"os"
	"path/filepath"
	"syscall"
)

// Suffix names a file's undo file: FILE.vhdprep-resize-undo, beside it.
const Suffix = ".vhdprep-resize-undo"

// magic starts every undo file; the version is in it.
const magic = "VHDPREP-RESIZE-UNDO-1\n"

// Errors.
var (
	ErrNoSpace = errors.New("not enough free space for the undo file")
	ErrCorrupt = errors.New("the undo file is damaged")
)

// Range is a byte range of the file whose bytes the change needs back.
type Range struct {
	Off, Len int64
}

// Undo is a saved undo file, for one change of one file.
type Undo struct {
	f    *os.File
	name string
}

// Save writes the undo file of f (the file at path, size bytes long now):
// every range's bytes as they are, then a SHA-256 of the whole. It is
// written to a temporary file, synced and renamed into place, so a kill
// leaves either no undo file (nothing was changed yet) or a whole one.
// A directory without room for it is refused with the numbers.
func Save(path string, f *os.File, size int64, ranges []Range) (*Undo, error) {
	name := path + Suffix
	dir := filepath.Dir(name)
	need := int64(len(magic)) + 16 + sha256.Size
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
	err = write(tmp, f, size, ranges)
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

func write(w io.Writer, f *os.File, size int64, ranges []Range) error {
	sum := sha256.New()
	bw := bufio.NewWriter(io.MultiWriter(w, sum))
	bw.WriteString(magic)
	binary.Write(bw, binary.BigEndian, [2]int64{size, int64(len(ranges))})
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
// lock.
func Recover(path string) (bool, error) {
	name := path + Suffix
	if _, err := os.Stat(name); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Errorf("%s: an interrupted resize left %s, and the file cannot be opened to undo it: %w", path, name, err)
	}
	defer f.Close()
	if err := restore(name, f); err != nil {
		return false, fmt.Errorf("%s: undoing an interrupted resize: %w; %s is kept: restore the file from a backup", path, err, name)
	}
	return true, (&Undo{f: f, name: name}).Done()
}

// restore checks the undo file whole before it writes anything, then puts
// its size and bytes back into f and syncs it.
func restore(name string, f *os.File) error {
	u, err := os.Open(name)
	if err != nil {
		return err
	}
	defer u.Close()
	if err := verify(u); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if _, err := u.Seek(0, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReader(u)
	size, n, err := readHeader(r)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		return err
	}
	for range n {
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

// verify checks the undo file before anything is written back: its
// checksum, its magic, and that every range lies inside the file's old size
// and inside the undo file.
func verify(u *os.File) error {
	st, err := u.Stat()
	if err != nil {
		return err
	}
	body := st.Size() - sha256.Size
	if body < int64(len(magic))+16 {
		return ErrCorrupt
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, io.NewSectionReader(u, 0, body)); err != nil {
		return err
	}
	want := make([]byte, sha256.Size)
	if _, err := u.ReadAt(want, body); err != nil || !bytes.Equal(want, sum.Sum(nil)) {
		return ErrCorrupt
	}
	r := bufio.NewReader(io.NewSectionReader(u, 0, body))
	size, n, err := readHeader(r)
	if err != nil {
		return err
	}
	left := body - int64(len(magic)) - 16
	if size < 0 || n < 0 || n > left/16 {
		return ErrCorrupt
	}
	for range n {
		var rg Range
		if err := binary.Read(r, binary.BigEndian, &rg); err != nil {
			return ErrCorrupt
		}
		left -= 16
		if rg.Off < 0 || rg.Len < 0 || rg.Len > size-rg.Off || rg.Len > left {
			return ErrCorrupt
		}
		if _, err := r.Discard(int(rg.Len)); err != nil {
			return ErrCorrupt
		}
		left -= rg.Len
	}
	if left != 0 {
		return ErrCorrupt
	}
	return nil
}

// readHeader reads the magic, the file's old size and the number of ranges.
func readHeader(r io.Reader) (size, n int64, err error) {
	m := make([]byte, len(magic))
	var h [2]int64
	if _, err := io.ReadFull(r, m); err != nil || string(m) != magic {
		return 0, 0, ErrCorrupt
	}
	if err := binary.Read(r, binary.BigEndian, &h); err != nil {
		return 0, 0, ErrCorrupt
	}
	return h[0], h[1], nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Package atomicfile writes an output so that it either appears whole or not
// at all: data goes to a temporary file beside the target, which is synced
// and renamed over the target only when the writer commits. The output's
// permissions follow the umask, as any other tool's output does.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// ErrExists is returned when the target exists and overwriting was not asked for.
var ErrExists = errors.New("already exists; use --force to overwrite it")

// File is a temporary file that becomes the target on Commit.
type File struct {
	*os.File
	target    string
	overwrite bool
	done      bool
}

// Create opens a new temporary file in the target's directory, so the final
// rename never crosses filesystems. Unless overwrite is set, an existing
// target is refused here and again at Commit.
func Create(target string, overwrite bool) (*File, error) {
	if !overwrite {
		if _, err := os.Lstat(target); err == nil {
			return nil, fmt.Errorf("%s %w", target, ErrExists)
		}
	}
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	f, err := createTemp(dir, base)
	if err != nil {
		return nil, err
	}
	return &File{File: f, target: target, overwrite: overwrite}, nil
}

// outputPerm is the mode outputs are created with, before the umask: what
// the shell's > and cp give a new file.
const outputPerm = 0o666

// maxTempTries bounds the search for an unused temporary name.
const maxTempTries = 10000

// createTemp is os.CreateTemp with outputPerm instead of 0600, so the
// kernel applies the umask: reading the umask to chmod afterwards would
// race with other goroutines.
func createTemp(dir, base string) (*os.File, error) {
	for range maxTempTries {
		name := filepath.Join(dir, "."+base+".vhdprep-"+strconv.FormatUint(uint64(rand.Uint32()), 10)+".tmp")
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, outputPerm)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, fmt.Errorf("%s: no unused temporary name for %s", dir, base)
}

// Commit syncs the data, renames the temporary file to the target and syncs
// the directory so the rename itself survives a crash.
func (f *File) Commit() error {
	if f.done {
		return errors.New("atomicfile: already committed or aborted")
	}
	if err := f.Sync(); err != nil {
		f.Abort()
		return err
	}
	if err := f.File.Close(); err != nil {
		f.Abort()
		return err
	}
	if !f.overwrite {
		if _, err := os.Lstat(f.target); err == nil {
			f.Abort()
			return fmt.Errorf("%s %w", f.target, ErrExists)
		} else if !errors.Is(err, fs.ErrNotExist) {
			f.Abort()
			return err
		}
	}
	if err := os.Rename(f.Name(), f.target); err != nil {
		f.Abort()
		return err
	}
	f.done = true
	return syncDir(filepath.Dir(f.target))
}

// Abort removes the temporary file. It is safe to call after Commit, so
// callers can always defer it.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.Name())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Package imagelock keeps two vhdprep processes off one image: every
// command that changes an image (fix, deprovision, agent inject, resize,
// convert --in-place) holds IMAGE.vhdprep-lock while it does, and a second
// one is refused with the holder's pid and command.
package imagelock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked is returned when another live process holds the lock.
var ErrLocked = errors.New("another vhdprep is changing this image")

// Suffix names an image's lock file: IMAGE.vhdprep-lock, beside the image.
const Suffix = ".vhdprep-lock"

// Lock is a held lock.
type Lock struct {
	name string
}

// Take creates image's lock file, holding this process's pid and command
// line; a lock whose process is gone is taken over. The lock appears with
// its content already in it (written to a temporary file, then linked into
// place), so no one ever reads an empty lock and takes it for a stale one.
func Take(image string) (*Lock, error) {
	name := image + Suffix
	tmp, err := os.CreateTemp(filepath.Dir(image), filepath.Base(name)+".*")
	if err != nil {
		return nil, fmt.Errorf("%s: cannot make its lock file: %w", image, err)
	}
	defer os.Remove(tmp.Name())
	_, err = fmt.Fprintf(tmp, "%d\n%s\n", os.Getpid(), commandLine())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("%s: cannot make its lock file: %w", image, err)
	}
	for range 2 {
		err := os.Link(tmp.Name(), name)
		if err == nil {
			return &Lock{name: name}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%s: cannot take its lock: %w", image, err)
		}
		pid, command := holder(name)
		if pid > 0 && syscall.Kill(pid, 0) == nil {
			if command != "" {
				return nil, fmt.Errorf("%s: %w (pid %d: %s); wait for it, or remove %s if it is gone", image, ErrLocked, pid, command, name)
			}
			return nil, fmt.Errorf("%s: %w (pid %d); wait for it, or remove %s if it is gone", image, ErrLocked, pid, name)
		}
		os.Remove(name) // stale: its process is gone
	}
	return nil, fmt.Errorf("%s: %w", image, ErrLocked)
}

// holder reads a lock file: the pid on its first line, the command on its
// second (older vhdprep wrote only the pid).
func holder(name string) (pid int, command string) {
	b, _ := os.ReadFile(name)
	first, rest, _ := strings.Cut(string(b), "\n")
	pid, _ = strconv.Atoi(strings.TrimSpace(first))
	return pid, strings.TrimSpace(rest)
}

// commandLine is this process's command, on one line.
func commandLine() string {
	words := append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...)
	return strings.ReplaceAll(strings.Join(words, " "), "\n", " ")
}

// Release removes the lock. Releasing twice does nothing.
func (l *Lock) Release() error {
	if l == nil || l.name == "" {
		return nil
	}
	name := l.name
	l.name = ""
	return os.Remove(name)
}

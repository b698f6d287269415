// Package imagelock keeps two vhdprep processes off one image: every
// command that changes an image (fix, deprovision, agent inject, resize,
// convert --in-place) holds IMAGE.vhdprep-lock while it does, and a second
// one is refused with the holder's pid and command.
package imagelock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrLocked is returned when another live process holds the lock.
var ErrLocked = errors.New("another vhdprep is changing this image")

// Suffix names an image's lock file: IMAGE.vhdprep-lock, beside the image.
const Suffix = ".vhdprep-lock"

// Lock is a held lock.
type Lock struct {
	f *os.File
}

// Take takes image's lock: an flock on IMAGE.vhdprep-lock, which the
// kernel drops when its process dies, so a lock left by a killed vhdprep
// is free without anyone judging it stale, and two processes can never
// both take it over. The file holds the holder's pid and command line,
// only for the message a refused caller prints. It is removed on release;
// a taker that locked a file already removed (or replaced) tries again on
// the new one.
func Take(image string) (*Lock, error) {
	name := image + Suffix
	for {
		// Never through a symbolic link: one planted as the lock file would
		// have the pid written over the file it points to.
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s: its lock file %s is a symbolic link, which vhdprep never makes; remove it", image, name)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: cannot make its lock file: %w", image, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if !errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("%s: cannot take its lock %s: %w", image, name, err)
			}
			return nil, fmt.Errorf("%s: %w (%s); wait for it to finish", image, ErrLocked, holder(name))
		}
		if sameFile(f, name) {
			if err := f.Truncate(0); err == nil {
				_, err = fmt.Fprintf(f, "%d\n%s\n", os.Getpid(), commandLine())
			}
			return &Lock{f: f}, nil
		}
		f.Close() // released and removed while this one opened it
	}
}

// holderWait bounds how long a refusal waits for the holder to write its
// pid and command, which it does just after it takes the lock.
const holderWait = 250 * time.Millisecond

// holder describes who holds a lock file: the pid on its first line, the
// command on its second (older vhdprep wrote only the pid).
func holder(name string) string {
	var b []byte
	for deadline := time.Now().Add(holderWait); ; time.Sleep(10 * time.Millisecond) {
		b, _ = os.ReadFile(name)
		if strings.Contains(string(b), "\n") || time.Now().After(deadline) {
			break
		}
	}
	first, rest, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	switch command := strings.TrimSpace(rest); {
	case err != nil:
		return "a process starting"
	case command != "":
		return fmt.Sprintf("pid %d: %s", pid, command)
	default:
		return fmt.Sprintf("pid %d", pid)
	}
}

// sameFile tells whether f is still the file at name.
func sameFile(f *os.File, name string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(name)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// commandLine is this process's command, on one line.
func commandLine() string {
	words := append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...)
	return strings.ReplaceAll(strings.Join(words, " "), "\n", " ")
}

// Release removes the lock file while still holding it, then drops the
// lock. Releasing twice does nothing.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	err := os.Remove(f.Name())
	f.Close()
	return err
}

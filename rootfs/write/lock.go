package write

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked: another process holds the image's lock.
var ErrLocked = errors.New("another vhdprep is changing this image")

const lockSuffix = ".vhdprep-lock"

// takeLock takes IMAGE.vhdprep-lock: an flock on that file, which the
// kernel drops when its process dies, so a lock left by a killed vhdprep
// is free without anyone deciding that it is stale, and two processes can
// never both take it over. The file is removed on release; an opener that
// locked a file already removed (or replaced) tries again on the new one.
// The pid in the file is only for the message a refused caller prints.
func takeLock(image string) (*os.File, error) {
	name := image + lockSuffix
	for {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("%s: cannot make its lock file: %w", image, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			b, _ := os.ReadFile(name)
			f.Close()
			if !errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("%s: cannot take its lock %s: %w", image, name, err)
			}
			holder := "pid " + strings.TrimSpace(string(b))
			if _, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
				holder = "a process starting"
			}
			return nil, fmt.Errorf("%s: %w (%s); wait for it to finish", image, ErrLocked, holder)
		}
		if sameFile(f, name) {
			if err := f.Truncate(0); err == nil {
				_, err = fmt.Fprintf(f, "%d\n", os.Getpid())
			}
			return f, nil
		}
		f.Close() // released and removed while this one opened it
	}
}

// sameFile tells whether f is still the file at name.
func sameFile(f *os.File, name string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(name)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// releaseLock removes the lock file while still holding it, then drops it.
func releaseLock(lock *os.File) error {
	err := os.Remove(lock.Name())
	lock.Close()
	return err
}

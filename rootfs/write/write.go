// Package write changes files inside a guest: an ext2/3/4 filesystem inside
// an image file, through e2fsprogs' debugfs (no mount, no root), or a plain
// directory tree. A change is made in an Overlay of the guest's files and
// queued on each filesystem it touches. A change to an image is all or
// nothing: debugfs keeps an undo file, the result is checked with e2fsck
// and read back, and on any failure, or after a crash, the image is
// restored to its exact previous bytes.
package write

import (
	"io/fs"
)

// FS is a file tree that changes can be queued on and applied at once.
type FS interface {
	// WriteFile creates or replaces a regular file.
	WriteFile(name string, data []byte, perm fs.FileMode, uid, gid int) error
	// Mkdir creates a directory (parents must exist).
	Mkdir(name string, perm fs.FileMode, uid, gid int) error
	// Symlink creates name pointing at target.
	Symlink(target, name string) error
	// Remove removes a file or symlink; a missing one is not an error.
	Remove(name string) error
	// Rmdir removes an empty directory (queue its contents' removal first).
	Rmdir(name string) error
	// Apply carries out the queued changes, verifies them and, on any
	// failure, leaves the tree as it was.
	Apply() error
	// Close releases the tree (and its lock) without applying anything.
	Close() error
}

// Package inode holds what the inode-addressed filesystem readers
// (rootfs/internal/ext4, rootfs/internal/xfs) have in common: attributes in
// Linux's st_mode terms and directory entries.
package inode

import (
	"io"
	"io/fs"
	"time"
)

// Linux st_mode file type bits, shared by ext4 and XFS on disk.
const (
	TypeMask = 0o170000
	TypeFIFO = 0o010000
	TypeChar = 0o020000
	TypeDir  = 0o040000
	TypeBlk  = 0o060000
	TypeReg  = 0o100000
	TypeLink = 0o120000
	TypeSock = 0o140000

	setUID = 0o4000
	setGID = 0o2000
	sticky = 0o1000
)

// Attr is an inode's attributes.
type Attr struct {
	Ino   uint64
	Mode  uint32 // st_mode: type and permission bits as Linux has them
	UID   uint32
	GID   uint32
	Nlink uint32
	Size  int64
	Mtime time.Time
}

// FileMode converts a Linux st_mode to an fs.FileMode.
func FileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&setUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&setGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&sticky != 0 {
		mode |= fs.ModeSticky
	}
	switch m & TypeMask {
	case TypeReg:
	case TypeDir:
		mode |= fs.ModeDir
	case TypeLink:
		mode |= fs.ModeSymlink
	case TypeChar:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case TypeBlk:
		mode |= fs.ModeDevice
	case TypeFIFO:
		mode |= fs.ModeNamedPipe
	case TypeSock:
		mode |= fs.ModeSocket
	default:
		mode |= fs.ModeIrregular
	}
	return mode
}

// Dirent is one directory entry. Type is the st_mode type bits the
// directory records, or 0 when it records none (then stat the inode).
type Dirent struct {
	Name string
	Ino  uint64
	Type uint32
}

// DirType maps the file type byte ext4 and XFS (with ftype) store in
// directory entries to st_mode type bits; unknown values give 0.
func DirType(t uint8) uint32 {
	switch t {
	case 1:
		return TypeReg
	case 2:
		return TypeDir
	case 3:
		return TypeChar
	case 4:
		return TypeBlk
	case 5:
		return TypeFIFO
	case 6:
		return TypeSock
	case 7:
		return TypeLink
	}
	return 0
}

// FS is a read-only filesystem addressed by inode number.
type FS interface {
	Root() uint64
	Attr(ino uint64) (Attr, error)
	// ReadDir lists a directory without "." and "..".
	ReadDir(ino uint64) ([]Dirent, error)
	ReadLink(ino uint64) (string, error)
	// OpenFile opens a regular file.
	OpenFile(ino uint64) (File, error)
}

// File is a regular file's content.
type File interface {
	io.ReaderAt
	Size() int64
}

// Package inode holds what the inode-addressed filesystem readers
// (rootfs/internal/ext4, rootfs/internal/xfs) have in common: attributes in
// Linux's st_mode terms and directory entries.
package inode

import (
	"io"
	"io/fs"
	"sync"
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

// maxCachedBlocks bounds a BlockCache; past it the cache starts afresh.
const maxCachedBlocks = 64

// BlockCache keeps recently read inode-table blocks, so reading the inodes
// of one directory costs a few block reads rather than one read each.
type BlockCache struct {
	size   int64
	mu     sync.Mutex
	blocks map[int64][]byte
}

// NewBlockCache caches blocks of size bytes (a power of two).
func NewBlockCache(size int64) *BlockCache {
	return &BlockCache{size: size, blocks: map[int64][]byte{}}
}

// ReadAt fills b, which must lie inside one block, from the block at off's
// block boundary, reading the block with read on a miss.
func (c *BlockCache) ReadAt(b []byte, off int64, read func(block []byte, off int64) error) error {
	start := off &^ (c.size - 1)
	if off+int64(len(b)) > start+c.size {
		return read(b, off) // straddles blocks: not worth caching
	}
	c.mu.Lock()
	blk, ok := c.blocks[start]
	c.mu.Unlock()
	if !ok {
		blk = make([]byte, c.size)
		if err := read(blk, start); err != nil {
			return err
		}
		c.mu.Lock()
		if len(c.blocks) >= maxCachedBlocks {
			clear(c.blocks)
		}
		c.blocks[start] = blk
		c.mu.Unlock()
	}
	copy(b, blk[off-start:])
	return nil
}

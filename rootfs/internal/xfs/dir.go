package xfs

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/vhdprep/vhdprep/rootfs/internal/inode"
)

const (
	dirBlockMagic  = 0x58444233 // "XDB3": a single-block directory
	dirDataMagic   = 0x58444433 // "XDD3": a data block of a larger one
	dirHeaderSize  = 64
	dirTailSize    = 8
	dirLeafEntSize = 8
	dirFreeTag     = 0xFFFF
	// Directory data lives below 32 GiB of the directory's address space;
	// the leaf and free index blocks above it are not needed to list it.
	dirLeafOffset = int64(32) << 30
)

// ReadDir lists directory ino, without "." and "..".
func (f *FS) ReadDir(ino uint64) ([]inode.Dirent, error) {
	in, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	if in.mode&inode.TypeMask != inode.TypeDir {
		return nil, fmt.Errorf("inode %d: %w", ino, ErrNotDir)
	}
	if in.format == fmtLocal {
		return f.shortform(in)
	}
	fl, err := f.file(in, dirLeafOffset)
	if err != nil {
		return nil, err
	}
	perBlock := uint64(f.dirBlock / f.bs)
	leafBlock := uint64(dirLeafOffset / f.bs)
	buf := make([]byte, f.dirBlock)
	var ents []inode.Dirent
	read, last := int64(0), int64(-1)
	for _, e := range fl.ext {
		for b := e.off / perBlock; b*perBlock < min(e.off+e.count, leafBlock); b++ {
			if int64(b) == last { // a directory block spanning two extents
				continue
			}
			last = int64(b)
			// No more distinct directory blocks than the volume holds.
			if read += f.dirBlock; read > f.size {
				return nil, fmt.Errorf("%w: directory inode %d is larger than the volume", ErrCorrupt, ino)
			}
			if _, err := fl.ReadAt(buf, int64(b)*f.dirBlock); err != nil {
				return nil, err
			}
			if ents, err = f.parseDataBlock(ents, buf, ino); err != nil {
				return nil, err
			}
		}
	}
	return ents, nil
}

// parseDataBlock appends the entries of one directory data block.
func (f *FS) parseDataBlock(ents []inode.Dirent, b []byte, dir uint64) ([]inode.Dirent, error) {
	be := binary.BigEndian
	end := len(b)
	switch be.Uint32(b) {
	case dirBlockMagic: // the leaf entries and a tail share the block
		count := be.Uint32(b[end-dirTailSize:])
		if uint64(count) > uint64(end-dirTailSize-dirHeaderSize)/dirLeafEntSize {
			return nil, fmt.Errorf("%w: directory inode %d: %d leaf entries in its block", ErrCorrupt, dir, count)
		}
		end -= dirTailSize + int(count)*dirLeafEntSize
	case dirDataMagic:
	default:
		return nil, fmt.Errorf("%w: directory inode %d: bad data block magic %#x", ErrCorrupt, dir, be.Uint32(b))
	}
	for off := dirHeaderSize; off < end; {
		if end-off < 8 {
			return nil, fmt.Errorf("%w: directory inode %d: truncated entry at byte %d", ErrCorrupt, dir, off)
		}
		if be.Uint16(b[off:]) == dirFreeTag {
			n := int(be.Uint16(b[off+2:]))
			if n < 8 || n%8 != 0 || n > end-off {
				return nil, fmt.Errorf("%w: directory inode %d: free space of %d bytes at byte %d", ErrCorrupt, dir, n, off)
			}
			off += n
			continue
		}
		ino, nameLen := be.Uint64(b[off:]), int(b[off+8])
		size := 8 + 1 + nameLen + 2
		if f.ftype {
			size++
		}
		size = (size + 7) &^ 7
		if nameLen == 0 || size > end-off {
			return nil, fmt.Errorf("%w: directory inode %d: entry at byte %d", ErrCorrupt, dir, off)
		}
		var t uint8
		if f.ftype {
			t = b[off+9+nameLen]
		}
		var err error
		if ents, err = appendEntry(ents, string(b[off+9:off+9+nameLen]), ino, t, dir); err != nil {
			return nil, err
		}
		off += size
	}
	return ents, nil
}

func appendEntry(ents []inode.Dirent, name string, ino uint64, t uint8, dir uint64) ([]inode.Dirent, error) {
	switch {
	case name == "." || name == "..":
		return ents, nil
	case strings.ContainsAny(name, "/\x00"):
		return nil, fmt.Errorf("%w: directory inode %d: entry name %q", ErrCorrupt, dir, name)
	}
	return append(ents, inode.Dirent{Name: name, Ino: ino, Type: inode.DirType(t)}), nil
}

// shortform lists a directory stored inside its inode.
func (f *FS) shortform(in *rawInode) ([]inode.Dirent, error) {
	if in.size < 6 || in.size > int64(len(in.fork)) {
		return nil, fmt.Errorf("%w: directory inode %d: short form of %d bytes", ErrCorrupt, in.ino, in.size)
	}
	b := in.fork[:in.size]
	count, inoLen := int(b[0]), 4
	if b[1] != 0 {
		inoLen = 8
	}
	off := 2 + inoLen
	var ents []inode.Dirent
	for range count {
		if off+3 > len(b) {
			return nil, fmt.Errorf("%w: directory inode %d: short form ends early", ErrCorrupt, in.ino)
		}
		nameLen := int(b[off])
		p := off + 3 + nameLen
		var t uint8
		if f.ftype && p < len(b) {
			t = b[p]
			p++
		}
		if nameLen == 0 || p+inoLen > len(b) {
			return nil, fmt.Errorf("%w: directory inode %d: short form entry at byte %d", ErrCorrupt, in.ino, off)
		}
		var ino uint64
		if inoLen == 8 {
			ino = binary.BigEndian.Uint64(b[p:])
		} else {
			ino = uint64(binary.BigEndian.Uint32(b[p:]))
		}
		var err error
		if ents, err = appendEntry(ents, string(b[off+3:off+3+nameLen]), ino, t, in.ino); err != nil {
			return nil, err
		}
		off = p + inoLen
	}
	return ents, nil
}

// ReadLink returns the target of symlink ino.
func (f *FS) ReadLink(ino uint64) (string, error) {
	in, err := f.inode(ino)
	if err != nil {
		return "", err
	}
	if in.mode&inode.TypeMask != inode.TypeLink {
		return "", fmt.Errorf("inode %d: %w", ino, ErrNotSymlink)
	}
	if in.size == 0 || in.size > maxSymlinkLen {
		return "", fmt.Errorf("%w: symlink inode %d has length %d", ErrCorrupt, ino, in.size)
	}
	if in.format == fmtLocal {
		if in.size > int64(len(in.fork)) {
			return "", fmt.Errorf("%w: symlink inode %d is longer than its fork", ErrCorrupt, ino)
		}
		return string(in.fork[:in.size]), nil
	}
	// A remote symlink: each block starts with a header, then its bytes.
	per := f.bs - symlinkHeaderSize
	blocks := (in.size + per - 1) / per
	fl, err := f.file(in, blocks*f.bs)
	if err != nil {
		return "", err
	}
	out := make([]byte, 0, in.size)
	b := make([]byte, f.bs)
	for i := range blocks {
		if _, err := fl.ReadAt(b, i*f.bs); err != nil {
			return "", err
		}
		if binary.BigEndian.Uint32(b) != symlinkMagic {
			return "", fmt.Errorf("%w: symlink inode %d: bad block header", ErrCorrupt, ino)
		}
		out = append(out, b[symlinkHeaderSize:symlinkHeaderSize+min(per, in.size-int64(len(out)))]...)
	}
	return string(out), nil
}

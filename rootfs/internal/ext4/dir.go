package ext4

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/vhdprep/vhdprep/rootfs/internal/inode"
)

// inlineDirParent is the size of the parent inode number that starts an
// inline directory.
const inlineDirParent = 4

// ReadDir lists directory ino, without "." and "..". Directory blocks are
// read in order, which covers htree directories too: their index blocks
// look like empty entries to a linear reader.
func (f *FS) ReadDir(ino uint64) ([]inode.Dirent, error) {
	in, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	if in.mode&inode.TypeMask != inode.TypeDir {
		return nil, fmt.Errorf("inode %d: %w", ino, ErrNotDir)
	}
	if in.flags&flagEncrypt != 0 {
		return nil, fmt.Errorf("%w: directory inode %d is encrypted", ErrUnsupported, ino)
	}
	if in.flags&flagInlineData != 0 {
		data, err := in.inlineData()
		if err != nil {
			return nil, err
		}
		ents, err := f.parseDirBlock(nil, data[inlineDirParent:inodeBlockBytes], ino)
		if err != nil {
			return nil, err
		}
		return f.parseDirBlock(ents, data[inodeBlockBytes:], ino)
	}
	m := mapper{f: f, in: in}
	blocks := (uint64(in.size) + uint64(f.bs) - 1) / uint64(f.bs)
	buf := make([]byte, f.bs)
	var ents []inode.Dirent
	read := int64(0)
	for lblk := uint64(0); lblk < blocks; {
		phys, n, err := m.find(lblk)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: directory inode %d: empty block run", ErrCorrupt, ino)
		}
		n = min(n, blocks-lblk)
		if phys != 0 {
			// A directory holds no more distinct blocks than the volume;
			// a tree mapping the same blocks over and over must stop.
			if read += int64(n) * f.bs; read > f.size {
				return nil, fmt.Errorf("%w: directory inode %d is larger than the volume", ErrCorrupt, ino)
			}
			for i := range n {
				if err := f.readBlocks(buf, phys+i, fmt.Sprintf("directory inode %d", ino)); err != nil {
					return nil, err
				}
				if ents, err = f.parseDirBlock(ents, buf, ino); err != nil {
					return nil, err
				}
			}
		}
		lblk += n
	}
	return ents, nil
}

// parseDirBlock appends the entries of one block of linear directory
// entries (ext4_dir_entry_2) to ents.
func (f *FS) parseDirBlock(ents []inode.Dirent, b []byte, dir uint64) ([]inode.Dirent, error) {
	le := binary.LittleEndian
	for off := 0; off+dirEntryHeaderSize <= len(b); {
		ino := uint64(le.Uint32(b[off:]))
		recLen := int(le.Uint16(b[off+4:]))
		if f.bs > maxRecLenSmallBlocks && (recLen == 0 || recLen == maxRecLenSmallBlocks) {
			recLen = 1 << 16 // how 64 KiB blocks encode a record spanning the block
		}
		nameLen, ftype := int(b[off+6]), b[off+7]
		if f.incompat&incompatFiletype == 0 {
			ftype = 0
		}
		if recLen < dirEntryHeaderSize || recLen%4 != 0 || off+recLen > len(b) || (ino != 0 && dirEntryHeaderSize+nameLen > recLen) {
			return nil, fmt.Errorf("%w: directory inode %d: bad entry at byte %d (record length %d)", ErrCorrupt, dir, off, recLen)
		}
		if ino == 0 { // unused space, or an htree index block
			off += recLen
			continue
		}
		name := string(b[off+dirEntryHeaderSize : off+dirEntryHeaderSize+nameLen])
		switch {
		case name == "." || name == "..":
		case name == "" || strings.ContainsAny(name, "/\x00"):
			return nil, fmt.Errorf("%w: directory inode %d: entry name %q", ErrCorrupt, dir, name)
		default:
			ents = append(ents, inode.Dirent{Name: name, Ino: ino, Type: inode.DirType(ftype)})
		}
		off += recLen
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
	if in.size < inodeBlockBytes && in.flags&(flagExtents|flagInlineData) == 0 {
		return string(in.iblock()[:in.size]), nil // a fast symlink, stored in i_block
	}
	fl, err := f.file(in)
	if err != nil {
		return "", err
	}
	b := make([]byte, in.size)
	if _, err := fl.ReadAt(b, 0); err != nil {
		return "", err
	}
	return string(b), nil
}

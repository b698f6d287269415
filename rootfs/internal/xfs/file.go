package xfs

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"

	"github.com/vhdprep/vhdprep/rootfs/internal/inode"
)

// extent is one mapping of a fork: count blocks from logical block off
// are at filesystem block blk.
type extent struct {
	off, blk, count uint64
	unwritten       bool
}

// decodeExtent unpacks a 128-bit big-endian xfs_bmbt_rec.
func decodeExtent(b []byte) extent {
	l0, l1 := binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])
	return extent{
		unwritten: l0>>63 != 0,
		off:       (l0 & (1<<63 - 1)) >> 9,
		blk:       (l0&0x1FF)<<43 | l1>>21,
		count:     l1 & (1<<21 - 1),
	}
}

// extents lists an inode's data fork mappings in logical order. There can
// be no more of them than the volume has blocks, which bounds the list by
// the input's real size whatever the inode claims.
func (f *FS) extents(in *rawInode) ([]extent, error) {
	maxExtents := uint64(f.size / f.bs)
	if in.nextents > maxExtents {
		return nil, fmt.Errorf("%w: inode %d claims %d extents", ErrCorrupt, in.ino, in.nextents)
	}
	var out []extent
	switch in.format {
	case fmtExtents:
		if in.nextents*extentSize > uint64(len(in.fork)) {
			return nil, fmt.Errorf("%w: inode %d: %d extents do not fit its fork", ErrCorrupt, in.ino, in.nextents)
		}
		for i := range in.nextents {
			out = append(out, decodeExtent(in.fork[i*extentSize:]))
		}
	case fmtBtree:
		be := binary.BigEndian
		if len(in.fork) < 4 {
			return nil, fmt.Errorf("%w: inode %d: no room for a B+tree root", ErrCorrupt, in.ino)
		}
		level, numrecs := int(be.Uint16(in.fork)), int(be.Uint16(in.fork[2:]))
		maxrecs := (len(in.fork) - 4) / 16
		if level == 0 || level > maxBtreeLevels || numrecs > maxrecs {
			return nil, fmt.Errorf("%w: inode %d: B+tree root of level %d with %d records", ErrCorrupt, in.ino, level, numrecs)
		}
		ptrs := in.fork[4+maxrecs*8:]
		budget := int64(maxExtents)
		for i := range numrecs {
			if err := f.walkBmbt(in.ino, be.Uint64(ptrs[8*i:]), level-1, &out, &budget); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("%w: inode %d has data fork format %d, not extents", ErrCorrupt, in.ino, in.format)
	}
	for i, e := range out {
		if e.count == 0 || (i > 0 && e.off < out[i-1].off+out[i-1].count) {
			return nil, fmt.Errorf("%w: inode %d: extents out of order at %d", ErrCorrupt, in.ino, i)
		}
		if _, err := f.daddr(e.blk, e.count); err != nil {
			return nil, fmt.Errorf("inode %d: %w", in.ino, err)
		}
	}
	return out, nil
}

// walkBmbt appends the extents under B+tree block fsb. budget counts the
// blocks a walk may still visit, so a tree whose pointers repeat ends.
func (f *FS) walkBmbt(ino, fsb uint64, level int, out *[]extent, budget *int64) error {
	if *budget--; *budget < 0 {
		return fmt.Errorf("%w: inode %d: extent B+tree larger than the volume", ErrCorrupt, ino)
	}
	off, err := f.daddr(fsb, 1)
	if err != nil {
		return fmt.Errorf("inode %d: B+tree block: %w", ino, err)
	}
	b := make([]byte, f.bs)
	if err := f.readAt(b, off, fmt.Sprintf("inode %d's B+tree", ino)); err != nil {
		return err
	}
	be := binary.BigEndian
	numrecs, maxrecs := int(be.Uint16(b[6:])), int(f.bs-bmapHeaderSize)/16
	if be.Uint32(b) != bmapMagic || int(be.Uint16(b[4:])) != level || numrecs > maxrecs {
		return fmt.Errorf("%w: inode %d: bad B+tree block %d", ErrCorrupt, ino, fsb)
	}
	if level == 0 {
		for i := range numrecs {
			*out = append(*out, decodeExtent(b[bmapHeaderSize+i*extentSize:]))
		}
		if int64(len(*out)) > f.size/f.bs {
			return fmt.Errorf("%w: inode %d: more extents than the volume has blocks", ErrCorrupt, ino)
		}
		return nil
	}
	ptrs := b[bmapHeaderSize+maxrecs*8:]
	for i := range numrecs {
		if err := f.walkBmbt(ino, be.Uint64(ptrs[8*i:]), level-1, out, budget); err != nil {
			return err
		}
	}
	return nil
}

// File is a regular file's (or a directory's or symlink's) content.
type File struct {
	f    *FS
	ino  uint64
	size int64
	ext  []extent
}

// OpenFile opens regular file ino for reading.
func (f *FS) OpenFile(ino uint64) (inode.File, error) {
	in, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	if in.mode&inode.TypeMask != inode.TypeReg {
		return nil, fmt.Errorf("inode %d: %w", ino, ErrNotRegular)
	}
	return f.file(in, in.size)
}

func (f *FS) file(in *rawInode, size int64) (*File, error) {
	ext, err := f.extents(in)
	if err != nil {
		return nil, err
	}
	return &File{f: f, ino: in.ino, size: size, ext: ext}, nil
}

// Size is the file's length in bytes.
func (fl *File) Size() int64 { return fl.size }

// ReadAt reads the file's bytes at off; holes and unwritten extents read
// as zeros.
func (fl *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("xfs: negative offset %d", off)
	}
	if off >= fl.size {
		return 0, io.EOF
	}
	want := p[:min(int64(len(p)), fl.size-off)]
	log := fl.f.blockLog
	n := 0
	for n < len(want) {
		pos := off + int64(n)
		lblk, within := uint64(pos>>log), pos&(fl.f.bs-1)
		i := sort.Search(len(fl.ext), func(i int) bool { return fl.ext[i].off+fl.ext[i].count > lblk })
		left := int64(len(want) - n)
		// span is how many bytes from pos on a run of blocks covers,
		// counted in blocks first so a huge run cannot overflow.
		span := func(blocks uint64) int64 {
			return min(int64(min(blocks, uint64(left>>log)+2))<<log-within, left)
		}
		var chunk int64
		switch {
		case i == len(fl.ext):
			chunk = left
			clear(want[n:])
		case fl.ext[i].off > lblk:
			chunk = span(fl.ext[i].off - lblk)
			clear(want[n : n+int(chunk)])
		default:
			e := fl.ext[i]
			chunk = span(e.off + e.count - lblk)
			dst := want[n : n+int(chunk)]
			if e.unwritten {
				clear(dst)
				break
			}
			at, err := fl.f.daddr(e.blk, e.count)
			if err != nil {
				return n, err
			}
			if err := fl.f.readAt(dst, at+int64(lblk-e.off)<<log+within, fmt.Sprintf("inode %d's data", fl.ino)); err != nil {
				return n, err
			}
		}
		n += int(chunk)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

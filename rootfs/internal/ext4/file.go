package ext4

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/vhdprep/vhdprep/rootfs/internal/inode"
)

// maxLogicalBlock is one past the last logical block an extent can map
// (logical block numbers are 32 bits).
const maxLogicalBlock = uint64(1) << 32

// mapper finds where an inode's logical blocks lie on disk. It keeps the
// last tree block read at each level, so walking a file in order reads
// each extent-tree or indirect block once.
type mapper struct {
	f     *FS
	in    *rawInode
	cache [maxExtentDepth + 1]struct {
		blk uint64
		b   []byte
	}
}

// block reads tree block blk for level, through the cache.
func (m *mapper) block(level int, blk uint64) ([]byte, error) {
	c := &m.cache[level]
	if c.b != nil && c.blk == blk {
		return c.b, nil
	}
	if c.b == nil {
		c.b = make([]byte, m.f.bs)
	}
	c.blk = 0
	if err := m.f.readBlocks(c.b, blk, fmt.Sprintf("inode %d's block map", m.in.ino)); err != nil {
		return nil, err
	}
	c.blk = blk
	return c.b, nil
}

// find returns where logical block lblk lies: its physical block, or 0 for
// a hole (or unwritten space, which reads as zeros), and how many blocks
// from lblk on continue the same way (at least 1).
func (m *mapper) find(lblk uint64) (phys, n uint64, err error) {
	if m.in.flags&flagExtents != 0 {
		return m.extent(lblk)
	}
	return m.indirect(lblk)
}

func (m *mapper) extent(lblk uint64) (uint64, uint64, error) {
	if lblk >= maxLogicalBlock {
		return 0, 0, fmt.Errorf("%w: inode %d: logical block %d beyond what extents address", ErrCorrupt, m.in.ino, lblk)
	}
	le := binary.LittleEndian
	node := m.in.iblock()
	limit := maxLogicalBlock // where the subtree being searched ends
	depth := -1
	for level := 0; ; level++ {
		if len(node) < extentHeaderSize || le.Uint16(node) != extentMagic {
			return 0, 0, fmt.Errorf("%w: inode %d: bad extent header at level %d", ErrCorrupt, m.in.ino, level)
		}
		entries, max, d := int(le.Uint16(node[2:])), int(le.Uint16(node[4:])), int(le.Uint16(node[6:]))
		switch {
		case entries > max || extentHeaderSize+max*extentEntrySize > len(node):
			return 0, 0, fmt.Errorf("%w: inode %d: %d extents in a node for %d", ErrCorrupt, m.in.ino, entries, max)
		case level == 0 && d > maxExtentDepth, level > 0 && d != depth-1:
			return 0, 0, fmt.Errorf("%w: inode %d: extent tree depth %d at level %d", ErrCorrupt, m.in.ino, d, level)
		}
		depth = d
		if d == 0 {
			for i := range entries {
				e := node[extentHeaderSize+i*extentEntrySize:]
				start, length := uint64(le.Uint32(e)), uint64(le.Uint16(e[4:]))
				if lblk < start {
					return 0, min(start, limit) - lblk, nil
				}
				uninit := length > uninitExtentLen
				if uninit {
					length -= uninitExtentLen
				}
				if lblk >= start+length {
					continue
				}
				n := start + length - lblk
				if uninit {
					return 0, n, nil
				}
				phys := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
				p := phys + lblk - start
				if phys == 0 || p >= m.f.blocks || n > m.f.blocks-p {
					return 0, 0, fmt.Errorf("%w: inode %d: extent at block %d", errBlockOutside, m.in.ino, phys)
				}
				return p, n, nil
			}
			return 0, limit - lblk, nil
		}
		idx := -1
		for i := range entries {
			start := uint64(le.Uint32(node[extentHeaderSize+i*extentEntrySize:]))
			if start > lblk {
				limit = min(limit, start)
				break
			}
			idx = i
		}
		if idx < 0 {
			return 0, limit - lblk, nil
		}
		e := node[extentHeaderSize+idx*extentEntrySize:]
		child := uint64(le.Uint32(e[4:])) | uint64(le.Uint16(e[8:]))<<32
		var err error
		if node, err = m.block(level, child); err != nil {
			return 0, 0, err
		}
	}
}

func (m *mapper) indirect(lblk uint64) (uint64, uint64, error) {
	le := binary.LittleEndian
	ib := m.in.iblock()
	if lblk < directBlocks {
		return m.run(ib[:4*directBlocks], lblk)
	}
	lblk -= directBlocks
	perBlock := uint64(m.f.bs / 4)
	span := uint64(1)
	for level := 1; level <= indirectLevels; level++ {
		span *= perBlock // blocks the level's pointer in i_block covers
		if lblk >= span {
			lblk -= span
			continue
		}
		blk, sub := uint64(le.Uint32(ib[4*(directBlocks+level-1):])), span
		for depth := 0; ; depth++ {
			if blk == 0 {
				return 0, sub - lblk, nil
			}
			b, err := m.block(depth, blk)
			if err != nil {
				return 0, 0, err
			}
			sub /= perBlock
			i := lblk / sub
			lblk %= sub
			if sub == 1 {
				return m.run(b, i)
			}
			blk = uint64(le.Uint32(b[4*i:]))
		}
	}
	return 0, 0, fmt.Errorf("%w: inode %d: logical block past triple indirect addressing", ErrCorrupt, m.in.ino)
}

// run reads pointer i of a block-pointer array and counts how many
// pointers after it continue the same run (contiguous blocks, or holes).
func (m *mapper) run(ptrs []byte, i uint64) (uint64, uint64, error) {
	le := binary.LittleEndian
	count := uint64(len(ptrs) / 4)
	phys := uint64(le.Uint32(ptrs[4*i:]))
	n := uint64(1)
	for j := i + 1; j < count; j++ {
		next := uint64(le.Uint32(ptrs[4*j:]))
		if (phys == 0 && next != 0) || (phys != 0 && next != phys+n) {
			break
		}
		n++
	}
	if phys != 0 && (phys >= m.f.blocks || n > m.f.blocks-phys) {
		return 0, 0, fmt.Errorf("%w: inode %d: block %d", errBlockOutside, m.in.ino, phys)
	}
	return phys, n, nil
}

// File is a regular file's content.
type File struct {
	f      *FS
	size   int64
	inline []byte // content of an inline-data file
	mu     sync.Mutex
	m      mapper
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
	return f.file(in)
}

func (f *FS) file(in *rawInode) (*File, error) {
	fl := &File{f: f, size: in.size, m: mapper{f: f, in: in}}
	if in.flags&flagInlineData != 0 {
		data, err := in.inlineData()
		if err != nil {
			return nil, err
		}
		if int64(len(data)) < in.size {
			return nil, fmt.Errorf("%w: inode %d: %d bytes of inline data for a size of %d", ErrCorrupt, in.ino, len(data), in.size)
		}
		fl.inline = data[:in.size]
	}
	return fl, nil
}

// Size is the file's length in bytes.
func (fl *File) Size() int64 { return fl.size }

// ReadAt reads the file's bytes at off; holes read as zeros.
func (fl *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("ext4: negative offset %d", off)
	}
	if off >= fl.size {
		return 0, io.EOF
	}
	want := p[:min(int64(len(p)), fl.size-off)]
	if fl.inline != nil {
		n := copy(want, fl.inline[off:])
		return n, eofIfShort(n, len(p))
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	bs := fl.f.bs
	n := 0
	for n < len(want) {
		pos := off + int64(n)
		within := pos % bs
		phys, count, err := fl.m.find(uint64(pos / bs))
		if err != nil {
			return n, err
		}
		if count == 0 {
			return n, fmt.Errorf("%w: inode %d: empty block run", ErrCorrupt, fl.m.in.ino)
		}
		left := int64(len(want) - n)
		count = min(count, uint64((left+within+bs-1)/bs))
		chunk := min(int64(count)*bs-within, left)
		dst := want[n : n+int(chunk)]
		if phys == 0 {
			clear(dst)
		} else if err := fl.f.readAt(dst, int64(phys)*bs+within, fmt.Sprintf("inode %d's data", fl.m.in.ino)); err != nil {
			return n, err
		}
		n += int(chunk)
	}
	return n, eofIfShort(n, len(p))
}

func eofIfShort(n, want int) error {
	if n < want {
		return io.EOF
	}
	return nil
}

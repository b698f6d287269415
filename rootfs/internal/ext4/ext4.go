// Package ext4 reads ext2, ext3 and ext4 filesystems: superblock, group
// descriptors (32 and 64 bit, meta_bg), inodes, extent trees and block
// maps, linear and htree directories, inline data and symlinks. It is
// read-only and checks every on-disk number before using it.
package ext4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vhdprep/vhdprep/rootfs/internal/inode"
)

// Errors.
var (
	ErrNotExt       = errors.New("not an ext2/3/4 filesystem")
	ErrCorrupt      = errors.New("corrupt ext4 filesystem")
	ErrUnsupported  = errors.New("unsupported ext4 feature")
	ErrNotDir       = errors.New("not a directory")
	ErrNotSymlink   = errors.New("not a symbolic link")
	ErrNotRegular   = errors.New("not a regular file")
	errBlockOutside = errors.New("block number past the end of the filesystem")
)

const (
	sbOffset = 1024
	sbSize   = 1024
	sbMagic  = 0xEF53

	rootIno = 2

	// Superblock feature bits.
	compatSparseSuper2   = 0x200
	roCompatSparseSuper  = 0x1
	incompatCompression  = 0x1
	incompatFiletype     = 0x2
	incompatRecover      = 0x4
	incompatJournalDev   = 0x8
	incompatMetaBG       = 0x10
	incompatExtents      = 0x40
	incompat64bit        = 0x80
	incompatMMP          = 0x100
	incompatFlexBG       = 0x200
	incompatEAInode      = 0x400
	incompatDirData      = 0x1000
	incompatCsumSeed     = 0x2000
	incompatLargeDir     = 0x4000
	incompatInlineData   = 0x8000
	incompatEncrypt      = 0x10000
	incompatCasefold     = 0x20000
	incompatReadable     = incompatFiletype | incompatRecover | incompatMetaBG | incompatExtents | incompat64bit | incompatMMP | incompatFlexBG | incompatEAInode | incompatCsumSeed | incompatLargeDir | incompatInlineData | incompatEncrypt | incompatCasefold
	incompatNotReadable  = incompatCompression | incompatJournalDev | incompatDirData
	minDescSize64        = 64
	maxDescSize          = 1024
	goodOldInodeSize     = 128
	goodOldRev           = 0
	maxLogBlockSize      = 6 // 64 KiB blocks
	inodeBlockBytes      = 60
	inodeExtraOffset     = 0x80
	xattrMagic           = 0xEA020000
	xattrIndexSystem     = 7
	maxSymlinkLen        = 4096
	flagIndex            = 0x1000
	flagEncrypt          = 0x800
	flagExtents          = 0x80000
	flagInlineData       = 0x10000000
	extentMagic          = 0xF30A
	extentHeaderSize     = 12
	extentEntrySize      = 12
	maxExtentDepth       = 5
	uninitExtentLen      = 32768
	directBlocks         = 12
	indirectLevels       = 3
	dirEntryHeaderSize   = 8
	maxRecLenSmallBlocks = 65535
)

// FS is an opened ext2/3/4 filesystem. Its methods are safe for
// concurrent use.
type FS struct {
	r           io.ReaderAt
	size        int64 // bytes readable through r
	bs          int64
	blocks      uint64
	firstData   uint64
	perGroup    uint64 // blocks per group
	inoPer      uint64 // inodes per group
	inodes      uint64
	inodeSize   int64
	descSize    int64
	compat      uint32
	roCompat    uint32
	incompat    uint32
	firstMeta   uint64
	backupBGs   [2]uint64
	mu          sync.Mutex
	inodeTable  map[uint64]uint64 // group -> first block of its inode table
	inodeBlocks *inode.BlockCache
}

// Open reads the superblock of the filesystem r holds (size bytes).
func Open(r io.ReaderAt, size int64) (*FS, error) {
	sb := make([]byte, sbSize)
	if _, err := r.ReadAt(sb, sbOffset); err != nil {
		return nil, fmt.Errorf("reading the ext4 superblock: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint16(sb[0x38:]) != sbMagic {
		return nil, ErrNotExt
	}
	f := &FS{
		r:          r,
		size:       size,
		inodes:     uint64(le.Uint32(sb[0x0:])),
		blocks:     uint64(le.Uint32(sb[0x4:])),
		firstData:  uint64(le.Uint32(sb[0x14:])),
		perGroup:   uint64(le.Uint32(sb[0x20:])),
		inoPer:     uint64(le.Uint32(sb[0x28:])),
		compat:     le.Uint32(sb[0x5C:]),
		incompat:   le.Uint32(sb[0x60:]),
		roCompat:   le.Uint32(sb[0x64:]),
		firstMeta:  uint64(le.Uint32(sb[0x104:])),
		backupBGs:  [2]uint64{uint64(le.Uint32(sb[0x24C:])), uint64(le.Uint32(sb[0x250:]))},
		inodeSize:  goodOldInodeSize,
		descSize:   32,
		inodeTable: map[uint64]uint64{},
	}
	logBS := le.Uint32(sb[0x18:])
	if logBS > maxLogBlockSize {
		return nil, fmt.Errorf("%w: block size 2^%d KiB", ErrCorrupt, logBS)
	}
	f.bs = 1024 << logBS
	f.inodeBlocks = inode.NewBlockCache(f.bs)
	if f.incompat&incompatNotReadable != 0 || f.incompat&^(incompatReadable|incompatNotReadable) != 0 {
		return nil, fmt.Errorf("%w: incompatible feature flags %#x", ErrUnsupported, f.incompat&^incompatReadable)
	}
	if f.incompat&incompat64bit != 0 {
		f.blocks |= uint64(le.Uint32(sb[0x150:])) << 32
		f.descSize = int64(le.Uint16(sb[0xFE:]))
		if f.descSize < minDescSize64 || f.descSize > maxDescSize || f.descSize&(f.descSize-1) != 0 {
			return nil, fmt.Errorf("%w: group descriptor size %d", ErrCorrupt, f.descSize)
		}
	}
	if le.Uint32(sb[0x4C:]) != goodOldRev {
		f.inodeSize = int64(le.Uint16(sb[0x58:]))
	}
	switch {
	case f.inodeSize < goodOldInodeSize || f.inodeSize > f.bs || f.inodeSize&(f.inodeSize-1) != 0:
		return nil, fmt.Errorf("%w: inode size %d", ErrCorrupt, f.inodeSize)
	case f.perGroup == 0 || f.perGroup > uint64(8*f.bs):
		return nil, fmt.Errorf("%w: %d blocks per group", ErrCorrupt, f.perGroup)
	case f.inoPer == 0 || f.inoPer > uint64(8*f.bs):
		return nil, fmt.Errorf("%w: %d inodes per group", ErrCorrupt, f.inoPer)
	case f.firstData >= f.blocks:
		return nil, fmt.Errorf("%w: first data block %d of %d", ErrCorrupt, f.firstData, f.blocks)
	case f.blocks > uint64(1)<<48:
		return nil, fmt.Errorf("%w: %d blocks", ErrCorrupt, f.blocks)
	}
	return f, nil
}

// Root is the root directory's inode number.
func (f *FS) Root() uint64 { return rootIno }

// BlockSize is the filesystem's block size in bytes.
func (f *FS) BlockSize() int64 { return f.bs }

func (f *FS) groups() uint64 { return (f.blocks - f.firstData + f.perGroup - 1) / f.perGroup }

// readAt reads exactly len(b) bytes at off, or fails saying where.
func (f *FS) readAt(b []byte, off int64, what string) error {
	if off < 0 || off+int64(len(b)) > f.size {
		return fmt.Errorf("%w: %s at byte %d lies past the end of the volume (%d bytes)", ErrCorrupt, what, off, f.size)
	}
	if _, err := f.r.ReadAt(b, off); err != nil {
		return fmt.Errorf("reading %s at byte %d: %w", what, off, err)
	}
	return nil
}

// readBlocks reads len(b) bytes starting at block blk.
func (f *FS) readBlocks(b []byte, blk uint64, what string) error {
	if blk >= f.blocks || uint64(len(b)) > (f.blocks-blk)*uint64(f.bs) {
		return fmt.Errorf("%w: %s: block %d (of %d)", errBlockOutside, what, blk, f.blocks)
	}
	return f.readAt(b, int64(blk)*f.bs, what)
}

// hasSuper tells whether group g holds a superblock backup (and so its
// descriptor blocks come after it under meta_bg).
func (f *FS) hasSuper(g uint64) bool {
	switch {
	case g == 0:
		return true
	case f.compat&compatSparseSuper2 != 0:
		return g == f.backupBGs[0] || g == f.backupBGs[1]
	case f.roCompat&roCompatSparseSuper == 0 || g == 1:
		return true
	case g%2 == 0:
		return false
	}
	for _, base := range []uint64{3, 5, 7} {
		n := base
		for n < g {
			n *= base
		}
		if n == g {
			return true
		}
	}
	return false
}

// inodeTableOf finds the first block of group g's inode table.
func (f *FS) inodeTableOf(g uint64) (uint64, error) {
	f.mu.Lock()
	blk, ok := f.inodeTable[g]
	f.mu.Unlock()
	if ok {
		return blk, nil
	}
	perBlock := uint64(f.bs / f.descSize)
	descBlock := g / perBlock
	var at uint64
	if f.incompat&incompatMetaBG != 0 && descBlock >= f.firstMeta {
		first := descBlock * perBlock // meta group's first group holds its descriptors
		at = f.firstData + first*f.perGroup
		if f.hasSuper(first) {
			at++
		}
	} else {
		at = f.firstData + 1 + descBlock
	}
	d := make([]byte, f.descSize)
	if at >= f.blocks {
		return 0, fmt.Errorf("%w: descriptor of group %d", errBlockOutside, g)
	}
	if err := f.readAt(d, int64(at)*f.bs+int64(g%perBlock)*f.descSize, fmt.Sprintf("group descriptor %d", g)); err != nil {
		return 0, err
	}
	blk = uint64(binary.LittleEndian.Uint32(d[0x8:]))
	if f.descSize >= minDescSize64 {
		blk |= uint64(binary.LittleEndian.Uint32(d[0x28:])) << 32
	}
	tableBlocks := (f.inoPer*uint64(f.inodeSize) + uint64(f.bs) - 1) / uint64(f.bs)
	if blk == 0 || blk >= f.blocks || tableBlocks > f.blocks-blk {
		return 0, fmt.Errorf("%w: group %d's inode table at block %d", ErrCorrupt, g, blk)
	}
	f.mu.Lock()
	f.inodeTable[g] = blk
	f.mu.Unlock()
	return blk, nil
}

// rawInode is an inode as read from disk.
type rawInode struct {
	ino   uint64
	b     []byte // the whole on-disk inode (inodeSize bytes)
	mode  uint32
	size  int64
	flags uint32
}

func (in *rawInode) iblock() []byte { return in.b[0x28 : 0x28+inodeBlockBytes] }

func (f *FS) inode(ino uint64) (*rawInode, error) {
	if ino == 0 || ino > f.inodes {
		return nil, fmt.Errorf("%w: inode number %d (of %d)", ErrCorrupt, ino, f.inodes)
	}
	g, idx := (ino-1)/f.inoPer, (ino-1)%f.inoPer
	if g >= f.groups() {
		return nil, fmt.Errorf("%w: inode %d is in group %d of %d", ErrCorrupt, ino, g, f.groups())
	}
	table, err := f.inodeTableOf(g)
	if err != nil {
		return nil, err
	}
	b := make([]byte, f.inodeSize)
	what := fmt.Sprintf("inode %d", ino)
	err = f.inodeBlocks.ReadAt(b, int64(table)*f.bs+int64(idx)*f.inodeSize, func(b []byte, off int64) error { return f.readAt(b, off, what) })
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	in := &rawInode{ino: ino, b: b, mode: uint32(le.Uint16(b[0x0:])), flags: le.Uint32(b[0x20:])}
	in.size = int64(uint64(le.Uint32(b[0x4:])) | uint64(le.Uint32(b[0x6C:]))<<32)
	if in.size < 0 {
		return nil, fmt.Errorf("%w: inode %d has size %d", ErrCorrupt, ino, in.size)
	}
	return in, nil
}

// extra returns the 4 bytes at off in the inode's extra space, if the
// inode's i_extra_isize covers them.
func (in *rawInode) extra(off int) (uint32, bool) {
	if len(in.b) <= inodeExtraOffset+2 {
		return 0, false
	}
	end := inodeExtraOffset + int(binary.LittleEndian.Uint16(in.b[inodeExtraOffset:]))
	if off+4 > end || end > len(in.b) {
		return 0, false
	}
	return binary.LittleEndian.Uint32(in.b[off:]), true
}

// Attr returns inode ino's attributes.
func (f *FS) Attr(ino uint64) (inode.Attr, error) {
	in, err := f.inode(ino)
	if err != nil {
		return inode.Attr{}, err
	}
	le := binary.LittleEndian
	b := in.b
	secs := int64(int32(le.Uint32(b[0x10:])))
	var nsec int64
	if x, ok := in.extra(0x88); ok { // i_mtime_extra: epoch bits and nanoseconds
		secs += int64(x&3) << 32
		nsec = int64(x >> 2)
	}
	return inode.Attr{
		Ino:   ino,
		Mode:  in.mode,
		UID:   uint32(le.Uint16(b[0x2:])) | uint32(le.Uint16(b[0x78:]))<<16,
		GID:   uint32(le.Uint16(b[0x18:])) | uint32(le.Uint16(b[0x7A:]))<<16,
		Nlink: uint32(le.Uint16(b[0x1A:])),
		Size:  in.size,
		Mtime: time.Unix(secs, nsec),
	}, nil
}

// inlineData is the content of an inline-data inode: the 60 bytes of
// i_block, then the value of its system.data extended attribute.
func (in *rawInode) inlineData() ([]byte, error) {
	out := append([]byte{}, in.iblock()...)
	b := in.b
	if len(b) < inodeExtraOffset+2 {
		return out, nil
	}
	start := inodeExtraOffset + int(binary.LittleEndian.Uint16(b[inodeExtraOffset:]))
	if start+4 > len(b) || binary.LittleEndian.Uint32(b[start:]) != xattrMagic {
		return out, nil
	}
	first := start + 4
	for e := first; e+16 <= len(b) && binary.LittleEndian.Uint32(b[e:]) != 0; {
		nameLen := int(b[e])
		index := b[e+1]
		valOff := int(binary.LittleEndian.Uint16(b[e+2:]))
		valInode := binary.LittleEndian.Uint32(b[e+4:])
		valSize := int(binary.LittleEndian.Uint32(b[e+8:]))
		if e+16+nameLen > len(b) {
			return nil, fmt.Errorf("%w: inode %d: extended attribute name past the inode", ErrCorrupt, in.ino)
		}
		if index == xattrIndexSystem && string(b[e+16:e+16+nameLen]) == "data" {
			if valInode != 0 || valSize < 0 || first+valOff+valSize > len(b) {
				return nil, fmt.Errorf("%w: inode %d: inline data value outside the inode", ErrCorrupt, in.ino)
			}
			return append(out, b[first+valOff:first+valOff+valSize]...), nil
		}
		e += 16 + (nameLen+3)&^3
	}
	return out, nil
}

var _ inode.FS = (*FS)(nil)

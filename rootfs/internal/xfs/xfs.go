// Package xfs reads version 5 XFS filesystems (the default since
// xfsprogs 3.2.3): inodes, extent lists and extent B+trees, shortform,
// block, leaf and node directories, and local and remote symlinks. It is
// read-only, checks every on-disk number before using it, and reports
// version 4 filesystems as unsupported.
package xfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"

	"github.com/vhdprep/vhdprep/rootfs/internal/inode"
)

// Errors.
var (
	ErrNotXFS       = errors.New("not an XFS filesystem")
	ErrCorrupt      = errors.New("corrupt XFS filesystem")
	ErrUnsupported  = errors.New("unsupported XFS feature")
	ErrNotDir       = errors.New("not a directory")
	ErrNotSymlink   = errors.New("not a symbolic link")
	ErrNotRegular   = errors.New("not a regular file")
	errBlockOutside = errors.New("block outside the filesystem")
)

const (
	sbMagic        = 0x58465342 // "XFSB"
	sbSize         = 512
	versionMask    = 0xF
	version4       = 4
	version5       = 5
	incompatFtype  = 0x1
	incompatSpino  = 0x2
	incompatMetaID = 0x4
	incompatBigTS  = 0x8
	incompatRepair = 0x10
	incompatNrext  = 0x20
	incompatExch   = 0x40
	incompatParent = 0x80
	incompatKnown  = incompatFtype | incompatSpino | incompatMetaID | incompatBigTS | incompatRepair | incompatNrext | incompatExch | incompatParent

	inodeMagic    = 0x494E // "IN"
	inodeCoreSize = 176    // a version 3 inode's core; the data fork follows
	inodeVersion3 = 3
	flagRealtime  = 0x1
	flag2BigTime  = 0x8
	flag2Nrext64  = 0x10

	fmtLocal   = 1
	fmtExtents = 2
	fmtBtree   = 3

	extentSize     = 16
	bmapMagic      = 0x424D4133 // "BMA3"
	bmapHeaderSize = 72
	maxBtreeLevels = 9 // more than a 2^63-byte file needs

	symlinkMagic      = 0x58534C4D // "XSLM"
	symlinkHeaderSize = 56
	maxSymlinkLen     = 1024

	// bigtime timestamps count nanoseconds from the oldest 32-bit time.
	bigtimeEpochOffset = int64(1) << 31
)

// FS is an opened XFS filesystem. Its methods are safe for concurrent use.
type FS struct {
	r         io.ReaderAt
	size      int64
	bs        int64
	blockLog  uint
	dblocks   uint64
	agBlocks  uint64
	agCount   uint64
	agBlkLog  uint
	inodeSize int64
	inoPBLog  uint
	rootIno   uint64
	dirBlock  int64 // directory block size in bytes
	ftype     bool

	inodeBlocks *inode.BlockCache
}

// Open reads the primary superblock of the filesystem r holds.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	sb := make([]byte, sbSize)
	if _, err := r.ReadAt(sb, 0); err != nil {
		return nil, fmt.Errorf("reading the XFS superblock: %w", err)
	}
	be := binary.BigEndian
	if be.Uint32(sb) != sbMagic {
		return nil, ErrNotXFS
	}
	switch v := be.Uint16(sb[0x64:]) & versionMask; v {
	case version5:
	case version4:
		return nil, fmt.Errorf("%w: XFS version 4 (xfsprogs before 3.2.3; the kernel drops it in 2030); only version 5 is read", ErrUnsupported)
	default:
		return nil, fmt.Errorf("%w: version %d", ErrCorrupt, v)
	}
	incompat := be.Uint32(sb[0xD8:])
	if incompat&^incompatKnown != 0 {
		return nil, fmt.Errorf("%w: incompatible feature flags %#x", ErrUnsupported, incompat&^incompatKnown)
	}
	f := &FS{
		r:         r,
		size:      size,
		bs:        int64(be.Uint32(sb[0x4:])),
		dblocks:   be.Uint64(sb[0x8:]),
		rootIno:   be.Uint64(sb[0x38:]),
		agBlocks:  uint64(be.Uint32(sb[0x54:])),
		agCount:   uint64(be.Uint32(sb[0x58:])),
		inodeSize: int64(be.Uint16(sb[0x68:])),
		blockLog:  uint(sb[0x78]),
		inoPBLog:  uint(sb[0x7B]),
		agBlkLog:  uint(sb[0x7C]),
		ftype:     incompat&incompatFtype != 0,
	}
	dirBlkLog := uint(sb[0xC0])
	switch {
	case f.blockLog < 9 || f.blockLog > 16 || f.bs != 1<<f.blockLog:
		return nil, fmt.Errorf("%w: block size %d", ErrCorrupt, f.bs)
	case f.inodeSize < 512 || f.inodeSize > 2048 || f.inodeSize&(f.inodeSize-1) != 0 || f.bs>>f.inoPBLog != f.inodeSize:
		return nil, fmt.Errorf("%w: inode size %d", ErrCorrupt, f.inodeSize)
	case f.agBlocks == 0 || f.agCount == 0 || f.agBlkLog > 31 || f.agBlocks > 1<<f.agBlkLog || uint(bits.Len64(f.agBlocks-1)) != f.agBlkLog:
		return nil, fmt.Errorf("%w: %d allocation groups of %d blocks", ErrCorrupt, f.agCount, f.agBlocks)
	case f.dblocks == 0 || f.dblocks > f.agCount*f.agBlocks:
		return nil, fmt.Errorf("%w: %d blocks in %d allocation groups", ErrCorrupt, f.dblocks, f.agCount)
	case f.blockLog+dirBlkLog > 16:
		return nil, fmt.Errorf("%w: directory block size 2^%d", ErrCorrupt, f.blockLog+dirBlkLog)
	}
	f.dirBlock = f.bs << dirBlkLog
	f.inodeBlocks = inode.NewBlockCache(f.bs)
	return f, nil
}

// Root is the root directory's inode number.
func (f *FS) Root() uint64 { return f.rootIno }

func (f *FS) readAt(b []byte, off int64, what string) error {
	if off < 0 || off > f.size-int64(len(b)) {
		return fmt.Errorf("%w: %s at byte %d lies past the end of the volume (%d bytes)", ErrCorrupt, what, off, f.size)
	}
	if _, err := f.r.ReadAt(b, off); err != nil {
		return fmt.Errorf("reading %s at byte %d: %w", what, off, err)
	}
	return nil
}

// daddr converts a filesystem block number (AG number and block in the AG)
// and a count of blocks from it to a byte offset on the volume.
func (f *FS) daddr(fsb, count uint64) (int64, error) {
	ag, agbno := fsb>>f.agBlkLog, fsb&(1<<f.agBlkLog-1)
	if ag >= f.agCount || agbno >= f.agBlocks || count > f.agBlocks-agbno {
		return 0, fmt.Errorf("%w: block %d (AG %d, block %d) + %d", errBlockOutside, fsb, ag, agbno, count)
	}
	return int64(ag*f.agBlocks+agbno) << f.blockLog, nil
}

// rawInode is an inode as read from disk.
type rawInode struct {
	ino      uint64
	b        []byte
	mode     uint32
	format   uint8
	size     int64
	nextents uint64
	fork     []byte // the data fork
}

func (f *FS) inode(ino uint64) (*rawInode, error) {
	shift := f.agBlkLog + f.inoPBLog
	ag, agino := ino>>shift, ino&(1<<shift-1)
	agbno := agino >> f.inoPBLog
	if ino == 0 || ag >= f.agCount || agbno >= f.agBlocks {
		return nil, fmt.Errorf("%w: inode number %d", ErrCorrupt, ino)
	}
	off := int64(ag*f.agBlocks+agbno)<<f.blockLog + int64(agino&(1<<f.inoPBLog-1))*f.inodeSize
	b := make([]byte, f.inodeSize)
	what := fmt.Sprintf("inode %d", ino)
	if err := f.inodeBlocks.ReadAt(b, off, func(b []byte, off int64) error { return f.readAt(b, off, what) }); err != nil {
		return nil, err
	}
	be := binary.BigEndian
	if be.Uint16(b) != inodeMagic || b[4] != inodeVersion3 || be.Uint64(b[0x98:]) != ino {
		return nil, fmt.Errorf("%w: inode %d has a bad header", ErrCorrupt, ino)
	}
	in := &rawInode{ino: ino, b: b, mode: uint32(be.Uint16(b[0x2:])), format: b[5], size: int64(be.Uint64(b[0x38:]))}
	if be.Uint64(b[0x78:])&flag2Nrext64 != 0 {
		in.nextents = be.Uint64(b[0x18:])
	} else {
		in.nextents = uint64(be.Uint32(b[0x4C:]))
	}
	forkEnd := f.inodeSize
	if off := int64(b[0x52]) * 8; off != 0 {
		forkEnd = inodeCoreSize + off
	}
	if in.size < 0 || forkEnd > f.inodeSize {
		return nil, fmt.Errorf("%w: inode %d: size %d, fork offset %d", ErrCorrupt, ino, in.size, b[0x52])
	}
	in.fork = b[inodeCoreSize:forkEnd]
	if be.Uint16(b[0x5A:])&flagRealtime != 0 && in.mode&inode.TypeMask == inode.TypeReg {
		return nil, fmt.Errorf("%w: inode %d is on the realtime device", ErrUnsupported, ino)
	}
	return in, nil
}

// Attr returns inode ino's attributes.
func (f *FS) Attr(ino uint64) (inode.Attr, error) {
	in, err := f.inode(ino)
	if err != nil {
		return inode.Attr{}, err
	}
	be := binary.BigEndian
	b := in.b
	var mtime time.Time
	if be.Uint64(b[0x78:])&flag2BigTime != 0 {
		ns := be.Uint64(b[0x28:])
		mtime = time.Unix(int64(ns/1e9)-bigtimeEpochOffset, int64(ns%1e9))
	} else {
		mtime = time.Unix(int64(int32(be.Uint32(b[0x28:]))), int64(be.Uint32(b[0x2C:])))
	}
	return inode.Attr{
		Ino:   ino,
		Mode:  in.mode,
		UID:   be.Uint32(b[0x8:]),
		GID:   be.Uint32(b[0xC:]),
		Nlink: be.Uint32(b[0x10:]),
		Size:  in.size,
		Mtime: mtime,
	}, nil
}

var _ inode.FS = (*FS)(nil)

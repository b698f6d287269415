package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vhdprep/vhdprep/raw/probe"
	"github.com/vhdprep/vhdprep/rootfs/internal/ext4"
	"github.com/vhdprep/vhdprep/rootfs/internal/xfs"
)

// OpenFS opens the filesystem of type fstype (as raw/probe names it) held
// by r as a read-only tree.
func OpenFS(r io.ReaderAt, size int64, fstype string) (*Tree, error) {
	switch fstype {
	case probe.Ext2, probe.Ext3, probe.Ext4:
		e, err := ext4.Open(r, size)
		if errors.Is(err, ext4.ErrUnsupported) {
			return nil, fmt.Errorf("%w: reading %s: %w", ErrUnsupported, fstype, err)
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", fstype, err)
		}
		return newTree(newInodeDriver(e)), nil
	case probe.XFS:
		x, err := xfs.Open(r, size)
		if errors.Is(err, xfs.ErrUnsupported) {
			return nil, fmt.Errorf("%w: reading xfs: %w", ErrUnsupported, err)
		}
		if err != nil {
			return nil, fmt.Errorf("reading xfs: %w", err)
		}
		return newTree(newInodeDriver(x)), nil
	case probe.VFAT:
		f, err := openFAT(r, size)
		if err != nil {
			return nil, fmt.Errorf("reading vfat: %w", err)
		}
		return newTree(f), nil
	case "":
		return nil, fmt.Errorf("%w: no filesystem signature found", ErrUnsupported)
	}
	return nil, fmt.Errorf("%w: vhdprep cannot read %s; run with --root on a mounted tree", ErrUnsupported, fstype)
}

// Dir is a host directory tree as a Tree. Its symlinks resolve inside it,
// as they would on the guest, never to the host's own files.
func Dir(root string) *Tree { return newTree(dirDriver(root)) }

type dirDriver string

func (d dirDriver) host(name string) string {
	return filepath.Join(string(d), filepath.FromSlash(name))
}

func (d dirDriver) lstat(name string) (fs.FileInfo, error) {
	info, err := os.Lstat(d.host(name))
	if err != nil {
		return nil, err
	}
	return hostInfo{info}, nil
}

func (d dirDriver) readDir(name string) ([]fs.DirEntry, error) {
	ents, err := os.ReadDir(d.host(name))
	for i, e := range ents {
		ents[i] = hostDirEntry{e}
	}
	return ents, err
}

func (d dirDriver) readLink(name string) (string, error) { return os.Readlink(d.host(name)) }

// open opens a resolved path: every directory on the way is real and the
// file itself is not a symlink, so the host's kernel follows nothing.
func (d dirDriver) open(name string) (fs.File, error) {
	f, err := os.Open(d.host(name))
	if err != nil {
		return nil, err
	}
	return hostFile{f}, nil
}

// hostInfo is a host file's FileInfo with Sys giving *Stat.
type hostInfo struct{ fs.FileInfo }

func (h hostInfo) Sys() any { return hostStat(h.FileInfo) }

type hostDirEntry struct{ fs.DirEntry }

func (e hostDirEntry) Info() (fs.FileInfo, error) {
	info, err := e.DirEntry.Info()
	if err != nil {
		return nil, err
	}
	return hostInfo{info}, nil
}

type hostFile struct{ *os.File }

func (f hostFile) Stat() (fs.FileInfo, error) {
	info, err := f.File.Stat()
	if err != nil {
		return nil, err
	}
	return hostInfo{info}, nil
}

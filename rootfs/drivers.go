package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/masahiro331/go-xfs-filesystem/xfs"

	"github.com/vhdprep/vhdprep/raw/probe"
	"github.com/vhdprep/vhdprep/rootfs/internal/ext4"
)

// OpenFS opens the filesystem of type fstype (as raw/probe names it) held
// by r as a read-only tree.
func OpenFS(r io.ReaderAt, size int64, fstype string) (*Tree, error) {
	sr := io.NewSectionReader(r, 0, size)
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
		var x *xfs.FileSystem
		err := safely(func() (err error) { x, err = xfs.NewFS(*sr, newLibCache()); return err })
		if err != nil {
			return nil, fmt.Errorf("reading xfs (only version 5 is supported): %w", err)
		}
		return newTree(libDriver{name: fstype, fsys: x, lstatFn: x.Stat}), nil
	case probe.VFAT:
		f, err := openFAT(r, size)
		if err != nil {
			return nil, fmt.Errorf("reading vfat: %w", err)
		}
		return newTree(f), nil
	case "":
		return nil, fmt.Errorf("%w: no filesystem signature found", ErrUnsupported)
	}
	return nil, fmt.Errorf("%w: the volume holds %s; run vhdprep with --root on the mounted tree instead", ErrUnsupported, fstype)
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

// libDriver adapts a third-party read-only filesystem. The libraries may
// panic on corrupt input; every call turns a panic into an error.
type libDriver struct {
	name string
	fsys interface {
		fs.FS
		ReadDir(string) ([]fs.DirEntry, error)
	}
	lstatFn    func(string) (fs.FileInfo, error)
	readLinkFn func(string) (string, error) // nil: the library cannot read symlinks
}

func (l libDriver) path(name string) string {
	if name == "." {
		return "/"
	}
	return name
}

func (l libDriver) lstat(name string) (info fs.FileInfo, err error) {
	err = safely(func() (err error) { info, err = l.lstatFn(l.path(name)); return err })
	return info, err
}

func (l libDriver) readDir(name string) (ents []fs.DirEntry, err error) {
	err = safely(func() (err error) { ents, err = l.fsys.ReadDir(l.path(name)); return err })
	return ents, err
}

func (l libDriver) open(name string) (f fs.File, err error) {
	err = safely(func() (err error) { f, err = l.fsys.Open(name); return err })
	return f, err
}

func (l libDriver) readLink(name string) (target string, err error) {
	if l.readLinkFn == nil {
		return "", fmt.Errorf("%w: reading symlinks on %s is not supported yet", ErrUnsupported, l.name)
	}
	err = safely(func() (err error) { target, err = l.readLinkFn(name); return err })
	return target, err
}

// safely runs fn, turning a panic into an error.
func safely(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt or unsupported filesystem structure (%v)", p)
		}
	}()
	return fn()
}

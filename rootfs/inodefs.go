package rootfs

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vhdprep/vhdprep/rootfs/internal/inode"
)

// Stat is what FileInfo.Sys returns for every FS, so checks can look at
// ownership and permission bits as the guest has them.
type Stat struct {
	Mode  uint32 // st_mode: file type and permission bits, as on Linux
	UID   uint32
	GID   uint32
	Inode uint64
	Nlink uint32
}

// maxCachedDirents bounds the directory listings an inodeDriver keeps
// (a few MiB of names); past it the cache starts afresh.
const maxCachedDirents = 1 << 16

// inodeDriver serves paths over an inode-addressed filesystem reader,
// keeping recent directory listings so lookups read each directory once.
type inodeDriver struct {
	fsys inode.FS

	mu      sync.Mutex
	dirs    map[uint64]map[string]inode.Dirent
	entries int
}

func newInodeDriver(f inode.FS) *inodeDriver {
	return &inodeDriver{fsys: f, dirs: map[uint64]map[string]inode.Dirent{}}
}

// list returns directory ino's entries by name.
func (d *inodeDriver) list(ino uint64) (map[string]inode.Dirent, error) {
	d.mu.Lock()
	m, ok := d.dirs[ino]
	d.mu.Unlock()
	if ok {
		return m, nil
	}
	ents, err := d.fsys.ReadDir(ino)
	if err != nil {
		return nil, err
	}
	m = make(map[string]inode.Dirent, len(ents))
	for _, e := range ents {
		m[e.Name] = e
	}
	d.mu.Lock()
	if d.entries+len(ents) > maxCachedDirents {
		d.dirs, d.entries = map[uint64]map[string]inode.Dirent{}, 0
	}
	d.dirs[ino] = m
	d.entries += len(ents)
	d.mu.Unlock()
	return m, nil
}

// lookup finds the inode of a resolved path ("." is the root). A
// directory met twice on one path is a loop (a corrupt filesystem), which
// would otherwise let a walk go on forever.
func (d *inodeDriver) lookup(name string) (uint64, error) {
	ino := d.fsys.Root()
	if name == "." {
		return ino, nil
	}
	seen := []uint64{ino}
	for _, comp := range strings.Split(name, "/") {
		m, err := d.list(ino)
		if err != nil {
			return 0, err
		}
		e, ok := m[comp]
		if !ok {
			return 0, fs.ErrNotExist
		}
		if slices.Contains(seen, e.Ino) {
			return 0, ErrDirLoop
		}
		ino = e.Ino
		seen = append(seen, ino)
	}
	return ino, nil
}

func (d *inodeDriver) info(name string, ino uint64) (fs.FileInfo, error) {
	a, err := d.fsys.Attr(ino)
	if err != nil {
		return nil, err
	}
	return inodeInfo{name: path.Base(name), a: a}, nil
}

func (d *inodeDriver) lstat(name string) (fs.FileInfo, error) {
	ino, err := d.lookup(name)
	if err != nil {
		return nil, err
	}
	return d.info(name, ino)
}

func (d *inodeDriver) readDir(name string) ([]fs.DirEntry, error) {
	ino, err := d.lookup(name)
	if err != nil {
		return nil, err
	}
	m, err := d.list(ino)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, 0, len(m))
	for _, e := range m {
		de := inodeDirEntry{d: d, e: e}
		if e.Type == 0 { // the directory does not record types: ask the inode
			a, err := d.fsys.Attr(e.Ino)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", e.Name, err)
			}
			de.e.Type = a.Mode & inode.TypeMask
		}
		out = append(out, de)
	}
	return out, nil
}

func (d *inodeDriver) open(name string) (fs.File, error) {
	ino, err := d.lookup(name)
	if err != nil {
		return nil, err
	}
	info, err := d.info(name, ino)
	if err != nil {
		return nil, err
	}
	f, err := d.fsys.OpenFile(ino)
	if err != nil {
		return nil, err
	}
	return &inodeFile{SectionReader: io.NewSectionReader(f, 0, f.Size()), info: info}, nil
}

func (d *inodeDriver) readLink(name string) (string, error) {
	ino, err := d.lookup(name)
	if err != nil {
		return "", err
	}
	return d.fsys.ReadLink(ino)
}

// inodeInfo is an fs.FileInfo from inode attributes.
type inodeInfo struct {
	name string
	a    inode.Attr
}

func (i inodeInfo) Name() string       { return i.name }
func (i inodeInfo) Size() int64        { return i.a.Size }
func (i inodeInfo) Mode() fs.FileMode  { return inode.FileMode(i.a.Mode) }
func (i inodeInfo) ModTime() time.Time { return i.a.Mtime }
func (i inodeInfo) IsDir() bool        { return i.a.Mode&inode.TypeMask == inode.TypeDir }
func (i inodeInfo) Sys() any {
	return &Stat{Mode: i.a.Mode, UID: i.a.UID, GID: i.a.GID, Inode: i.a.Ino, Nlink: i.a.Nlink}
}

type inodeDirEntry struct {
	d *inodeDriver
	e inode.Dirent
}

func (e inodeDirEntry) Name() string      { return e.e.Name }
func (e inodeDirEntry) IsDir() bool       { return e.e.Type == inode.TypeDir }
func (e inodeDirEntry) Type() fs.FileMode { return inode.FileMode(e.e.Type).Type() }
func (e inodeDirEntry) Info() (fs.FileInfo, error) {
	return e.d.info(e.e.Name, e.e.Ino)
}

// inodeFile is an opened regular file.
type inodeFile struct {
	*io.SectionReader
	info fs.FileInfo
}

func (f *inodeFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *inodeFile) Close() error               { return nil }

// Package rootfs gives mount-less, read-only access to a guest's files: a
// filesystem inside an image as an fs.FS, a host directory tree the same
// way, and the guest's root assembled from its fstab with /boot and
// /boot/efi where they are on the real machine. Symlinks resolve inside
// the guest, never on the host.
package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"syscall"
)

// maxSymlinkHops is how many symlinks one lookup may follow, as on Linux.
const maxSymlinkHops = 40

// Errors.
var (
	ErrUnsupported = errors.New("unsupported filesystem")
	ErrLoop        = errors.New("too many levels of symbolic links")
	ErrDirLoop     = errors.New("directory loop: a directory holds itself (corrupt filesystem; run fsck)")
)

// FS is a read-only file tree: fs.FS plus what checking an OS needs.
type FS interface {
	fs.FS
	fs.ReadDirFS
	fs.ReadFileFS
	fs.StatFS
	// Lstat describes name without following a final symlink.
	Lstat(name string) (fs.FileInfo, error)
	// ReadLink returns a symlink's target.
	ReadLink(name string) (string, error)
}

// driver is one filesystem's primitive operations. Names are clean and
// relative ("." is the root), and every directory on the way is a real
// directory: the Tree has resolved symlinks before calling.
type driver interface {
	lstat(name string) (fs.FileInfo, error)
	readDir(name string) ([]fs.DirEntry, error)
	open(name string) (fs.File, error)
	readLink(name string) (string, error)
}

// mount is a driver seen at a place in the tree ("" is the root).
type mount struct {
	at string
	d  driver
}

// Tree is an FS made of one or more mounted drivers; it resolves paths and
// symlinks itself, so no lookup ever leaves the guest.
type Tree struct {
	mounts []mount // longest mount point first
}

func newTree(d driver) *Tree { return &Tree{mounts: []mount{{"", d}}} }

// mount adds d at dir (a clean relative path).
func (t *Tree) mount(dir string, d driver) {
	t.mounts = append(t.mounts, mount{dir, d})
	sort.SliceStable(t.mounts, func(i, j int) bool { return len(t.mounts[i].at) > len(t.mounts[j].at) })
}

// route finds the driver that holds p and p's name inside it.
func (t *Tree) route(p string) (driver, string) {
	for _, m := range t.mounts {
		switch {
		case m.at == "":
			return m.d, p
		case p == m.at:
			return m.d, "."
		case strings.HasPrefix(p, m.at+"/"):
			return m.d, p[len(m.at)+1:]
		}
	}
	panic("rootfs: no root mount") // newTree always adds one
}

func (t *Tree) lstatRaw(p string) (fs.FileInfo, error) {
	d, rel := t.route(p)
	return d.lstat(rel)
}

// resolve turns name into the path of what it names, following symlinks
// inside the tree (the last one too when followLast is set).
func (t *Tree) resolve(op, name string, followLast bool) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	var cur []string
	rest := splitPath(name)
	hops := 0
	for len(rest) > 0 {
		comp := rest[0]
		rest = rest[1:]
		if comp == ".." {
			if len(cur) > 0 {
				cur = cur[:len(cur)-1]
			}
			continue
		}
		p := path.Join(append(append([]string{}, cur...), comp)...)
		info, err := t.lstatRaw(p)
		if err != nil {
			return "", &fs.PathError{Op: op, Path: name, Err: unwrapNotExist(err)}
		}
		last := len(rest) == 0
		if info.Mode()&fs.ModeSymlink != 0 && (!last || followLast) {
			if hops++; hops > maxSymlinkHops {
				return "", &fs.PathError{Op: op, Path: name, Err: ErrLoop}
			}
			d, rel := t.route(p)
			target, err := d.readLink(rel)
			if err != nil {
				return "", &fs.PathError{Op: op, Path: name, Err: err}
			}
			if strings.HasPrefix(target, "/") {
				cur = nil // absolute links start again at the guest's root
			}
			rest = append(splitPath(target), rest...)
			continue
		}
		if !last && !info.IsDir() {
			return "", &fs.PathError{Op: op, Path: name, Err: syscall.ENOTDIR}
		}
		cur = append(cur, comp)
	}
	if len(cur) == 0 {
		return ".", nil
	}
	return path.Join(cur...), nil
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// unwrapNotExist keeps fs.ErrNotExist recognizable through the libraries'
// own error wrapping.
func unwrapNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fs.ErrNotExist
	}
	return err
}

// Open opens name, following symlinks.
func (t *Tree) Open(name string) (fs.File, error) {
	p, err := t.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	d, rel := t.route(p)
	info, err := d.lstat(rel)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: unwrapNotExist(err)}
	}
	if info.IsDir() {
		return &dirFile{info: info, read: func() ([]fs.DirEntry, error) { return d.readDir(rel) }}, nil
	}
	f, err := d.open(rel)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return f, nil
}

// Stat describes name, following symlinks.
func (t *Tree) Stat(name string) (fs.FileInfo, error) {
	p, err := t.resolve("stat", name, true)
	if err != nil {
		return nil, err
	}
	return t.lstatRaw(p)
}

// Lstat describes name without following a final symlink.
func (t *Tree) Lstat(name string) (fs.FileInfo, error) {
	p, err := t.resolve("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return t.lstatRaw(p)
}

// ReadLink returns the target of the symlink name.
func (t *Tree) ReadLink(name string) (string, error) {
	p, err := t.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	d, rel := t.route(p)
	return d.readLink(rel)
}

// ReadDir lists a directory, following symlinks, sorted by name.
func (t *Tree) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := t.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	d, rel := t.route(p)
	ents, err := d.readDir(rel)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	return ents, nil
}

// maxReadFile bounds ReadFile; larger files (initramfs, kernels) are
// streamed through Open.
const maxReadFile = 64 << 20

// ReadFile reads a whole file of at most 64 MiB.
func (t *Tree) ReadFile(name string) ([]byte, error) {
	f, err := t.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tooBig := &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("larger than %d MiB", maxReadFile>>20)}
	if info, err := f.Stat(); err == nil && info.Size() > maxReadFile {
		return nil, tooBig // without reading the first 64 MiB of it
	}
	b, err := io.ReadAll(io.LimitReader(f, maxReadFile+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	if len(b) > maxReadFile {
		return nil, tooBig
	}
	return b, nil
}

// dirFile is an opened directory.
type dirFile struct {
	info fs.FileInfo
	read func() ([]fs.DirEntry, error)
	ents []fs.DirEntry
	done bool
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.Name(), Err: syscall.EISDIR}
}
func (d *dirFile) Close() error { return nil }

// ReadDir makes an opened directory an fs.ReadDirFile, so fs.WalkDir works.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.done {
		ents, err := d.read()
		if err != nil {
			return nil, err
		}
		d.ents, d.done = ents, true
	}
	if n <= 0 {
		ents := d.ents
		d.ents = nil
		return ents, nil
	}
	if len(d.ents) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.ents))
	ents := d.ents[:n]
	d.ents = d.ents[n:]
	return ents, nil
}

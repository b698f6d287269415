package write

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/vhdprep/vhdprep/rootfs"
)

// Overlay holds the guest files a change is made of, over the guest's own
// files, so several edits (fix's repairs, deprovision's steps, agent
// inject) can change one file in turn before anything is written.
type Overlay struct {
	root    rootfs.FS
	files   map[string][]byte // path without leading slash -> new content
	removed map[string]bool
	dirs    map[string]bool // removed directories
	orig    map[string][]byte
	modes   map[string]fs.FileMode // permissions a write sets
	links   map[string]string      // symlinks to make -> target
	notes   []string               // what the user must still do
}

// NewOverlay starts an overlay on a guest tree.
func NewOverlay(root rootfs.FS) *Overlay {
	return &Overlay{root: root, files: map[string][]byte{}, removed: map[string]bool{}, dirs: map[string]bool{}, orig: map[string][]byte{},
		modes: map[string]fs.FileMode{}, links: map[string]string{}}
}

// Root is the guest's own file tree, under the edits.
func (o *Overlay) Root() rootfs.FS { return o.root }

// Read returns a file as the edits so far left it.
func (o *Overlay) Read(name string) ([]byte, error) {
	if b, ok := o.files[name]; ok {
		return b, nil
	}
	b, err := o.root.ReadFile(name)
	if err == nil {
		o.orig[name] = b
	}
	return b, err
}

// Write replaces a file's content.
func (o *Overlay) Write(name string, b []byte) {
	o.files[name] = b
	delete(o.removed, name)
	delete(o.links, name)
}

// WriteMode replaces a file's content and sets its permissions.
func (o *Overlay) WriteMode(name string, b []byte, mode fs.FileMode) {
	o.Write(name, b)
	o.modes[name] = mode.Perm()
}

// Note records something the user must do that a change of files cannot,
// such as rebuilding an initramfs.
func (o *Overlay) Note(format string, args ...any) {
	o.notes = append(o.notes, fmt.Sprintf(format, args...))
}

// Notes lists what Note recorded, in order.
func (o *Overlay) Notes() []string { return o.notes }

// Symlink makes name a symbolic link to target.
func (o *Overlay) Symlink(name, target string) {
	o.links[name] = target
	delete(o.files, name)
	delete(o.removed, name)
}

// Remove deletes a file or symlink.
func (o *Overlay) Remove(name string) {
	o.removed[name] = true
	delete(o.files, name)
	delete(o.links, name)
}

// RemoveTree deletes a directory and everything in it (symlinks inside are
// removed, never followed).
func (o *Overlay) RemoveTree(name string) error {
	ents, err := o.root.ReadDir(name)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := name + "/" + e.Name()
		if e.IsDir() {
			if err := o.RemoveTree(p); err != nil {
				return err
			}
			continue
		}
		o.Remove(p)
	}
	o.dirs[name] = true
	return nil
}

// Change is one file's change.
type Change struct {
	Path     string // with a leading slash
	Old, New []byte
	Removed  bool
	Dir      bool        // a removed directory
	Mode     fs.FileMode // permissions of New; 0 keeps the file's own (0644 when new)
	Link     string      // the target, when the change makes a symlink
}

// Changes lists what differs from the guest, sorted by path.
func (o *Overlay) Changes() []Change {
	var out []Change
	for name, b := range o.files {
		if old, ok := o.orig[name]; !ok || string(old) != string(b) || !o.hasMode(name) {
			out = append(out, Change{Path: "/" + name, Old: o.orig[name], New: b, Mode: o.modes[name]})
		}
	}
	for name, target := range o.links {
		if cur, err := o.root.ReadLink(name); err != nil || cur != target {
			out = append(out, Change{Path: "/" + name, Link: target})
		}
	}
	for name := range o.removed {
		old, _ := o.root.ReadFile(name)
		out = append(out, Change{Path: "/" + name, Old: old, Removed: true})
	}
	for name := range o.dirs {
		out = append(out, Change{Path: "/" + name, Removed: true, Dir: true})
	}
	// Paths in order, except that a removed directory comes after everything
	// inside it, as its removal must.
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Dir && strings.HasPrefix(b.Path, a.Path+"/") {
			return false
		}
		if b.Dir && strings.HasPrefix(a.Path, b.Path+"/") {
			return true
		}
		return a.Path < b.Path
	})
	return out
}

// hasMode tells whether a file already has the permissions a write sets
// (or the write sets none).
func (o *Overlay) hasMode(name string) bool {
	mode, ok := o.modes[name]
	if !ok {
		return true
	}
	info, err := o.root.Lstat(name)
	return err == nil && info.Mode().Perm() == mode
}

// Queue queues changes to the files under one mount point on w, which
// holds that filesystem. root is the whole guest: a replaced file keeps
// the permissions and owner it has there, and the directories a new file
// needs that root lacks are made.
func Queue(w FS, root rootfs.FS, mountPath string, changes []Change) {
	made := map[string]bool{}
	for _, c := range changes {
		if c.Removed || c.Old != nil {
			continue
		}
		for _, dir := range parents(c.Path, mountPath) {
			if _, err := root.Lstat(strings.TrimPrefix(dir, "/")); err != nil && !made[dir] {
				made[dir] = true
				w.Mkdir(strings.TrimPrefix(dir, strings.TrimSuffix(mountPath, "/")), 0o755, 0, 0)
			}
		}
	}
	for _, c := range changes {
		rel := strings.TrimPrefix(c.Path, strings.TrimSuffix(mountPath, "/"))
		switch {
		case c.Dir:
			w.Rmdir(rel)
			continue
		case c.Removed:
			w.Remove(rel)
			continue
		case c.Link != "":
			w.Symlink(c.Link, rel)
			continue
		}
		// A replaced file keeps its permissions and owner; a new one is
		// root's, 0644, unless the change says otherwise.
		perm, uid, gid := fs.FileMode(0o644), 0, 0
		if info, err := root.Lstat(strings.TrimPrefix(c.Path, "/")); err == nil {
			perm = info.Mode().Perm()
			if st, ok := info.Sys().(*rootfs.Stat); ok {
				uid, gid = int(st.UID), int(st.GID)
			}
		}
		if c.Mode != 0 {
			perm = c.Mode
		}
		w.WriteFile(rel, c.New, perm, uid, gid)
	}
}

// parents lists the directories between a mount point and a path, outermost
// first.
func parents(p, mountPath string) []string {
	var out []string
	for dir := path.Dir(p); dir != "/" && dir != "." && dir != mountPath; dir = path.Dir(dir) {
		out = append([]string{dir}, out...)
	}
	return out
}

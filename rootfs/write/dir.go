package write

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Dir queues changes to a directory tree (an unpacked or mounted root).
type Dir struct {
	root string
	ops  []op
}

// OpenDir prepares to change the tree at root.
func OpenDir(root string) (*Dir, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", root)
	}
	return &Dir{root: root}, nil
}

func (d *Dir) WriteFile(name string, data []byte, perm fs.FileMode, uid, gid int) error {
	d.ops = append(d.ops, op{kind: "write", name: clean(name), data: data, perm: perm, uid: uid, gid: gid})
	return nil
}

func (d *Dir) Mkdir(name string, perm fs.FileMode, uid, gid int) error {
	d.ops = append(d.ops, op{kind: "mkdir", name: clean(name), perm: perm, uid: uid, gid: gid})
	return nil
}

func (d *Dir) Symlink(target, name string) error {
	d.ops = append(d.ops, op{kind: "symlink", name: clean(name), target: target})
	return nil
}

func (d *Dir) Remove(name string) error {
	d.ops = append(d.ops, op{kind: "rm", name: clean(name)})
	return nil
}

func (d *Dir) Rmdir(name string) error {
	d.ops = append(d.ops, op{kind: "rmdir", name: clean(name)})
	return nil
}

func (d *Dir) Close() error { return nil }

// host maps a guest path into the tree. Intermediate symlinks are refused
// rather than followed, so no change lands outside the tree.
func (d *Dir) host(name string) (string, error) {
	p := d.root
	parts := strings.Split(strings.TrimPrefix(name, "/"), "/")
	for _, c := range parts[:len(parts)-1] {
		p = filepath.Join(p, c)
		if info, err := os.Lstat(p); err == nil && info.Mode()&fs.ModeSymlink != 0 {
			return "", fmt.Errorf("%s: %s is a symlink; write to the path it points to", name, p)
		}
	}
	return filepath.Join(p, parts[len(parts)-1]), nil
}

// saved is how a path was before a change, to put it back.
type saved struct {
	path    string
	existed bool
	tmp     string // a copy of a file or symlink that was replaced
}

// Apply makes the changes one by one; if one fails, the ones made are undone.
func (d *Dir) Apply() (err error) {
	var undo []saved
	defer func() {
		for i := len(undo) - 1; i >= 0; i-- {
			s := undo[i]
			if err != nil {
				os.RemoveAll(s.path)
				if s.existed {
					os.Rename(s.tmp, s.path)
				}
			} else if s.tmp != "" {
				os.RemoveAll(s.tmp) // a removed directory's copy holds its files' copies
			}
		}
	}()
	for _, o := range d.ops {
		p, err := d.host(o.name)
		if err != nil {
			return err
		}
		if info, err := os.Lstat(p); err == nil && o.kind == "mkdir" && info.IsDir() {
			continue // already there
		}
		s := saved{path: p}
		if _, err := os.Lstat(p); err == nil {
			s.existed, s.tmp = true, p+".vhdprep-saved"
			if err := os.Rename(p, s.tmp); err != nil {
				return err
			}
		}
		undo = append(undo, s)
		if err := d.do(o, p); err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
	}
	d.ops = nil
	return nil
}

func (d *Dir) do(o op, p string) error {
	switch o.kind {
	case "write":
		if err := os.WriteFile(p, o.data, o.perm.Perm()); err != nil {
			return err
		}
		return chown(p, o)
	case "mkdir":
		if err := os.Mkdir(p, o.perm.Perm()); err != nil {
			return err
		}
		return chown(p, o)
	case "symlink":
		return os.Symlink(o.target, p)
	}
	return nil // rm, rmdir: moving it aside was the removal
}

// chown sets ownership where the caller may; an ordinary user's tree keeps
// the user's ownership (the image build sets it when it packs the tree).
func chown(p string, o op) error {
	if err := os.Lchown(p, o.uid, o.gid); err != nil && !errors.Is(err, fs.ErrPermission) {
		return err
	}
	return nil
}

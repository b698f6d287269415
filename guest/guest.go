// Package guest opens an image (or a directory tree) all the way to the
// operating system inside: the container, the disk layout, the root
// filesystem assembled from fstab, and what the OS is. inspect, check, fix
// and agent inject all start here.
package guest

import (
	"errors"
	"fmt"
	"os"

	"github.com/vhdprep/vhdprep/diskimage"
	"github.com/vhdprep/vhdprep/raw/volume"
	"github.com/vhdprep/vhdprep/rootfs"
	"github.com/vhdprep/vhdprep/rootfs/write"
)

// Guest is an opened image or directory.
type Guest struct {
	Name string
	// Image and Layout are nil for a directory.
	Image  *diskimage.Image
	Layout *volume.Layout
	// Root is the guest's file tree; nil when no root filesystem could be
	// read (RootErr says why).
	Root    rootfs.FS
	RootErr error
	// Mounts lists where each filesystem is (for a directory: just "/").
	Mounts   []rootfs.Mounted
	Warnings []string

	// change holds the image's lock from before the guest is read until
	// its changes are applied; nil for a guest opened only to read.
	change *write.Image
}

// ErrLayout wraps what makes a disk's layout (its partition table, its
// LVM) unreadable.
var ErrLayout = errors.New("reading the disk layout")

// Open opens an image read-only. A disk whose root cannot be read (btrfs,
// LUKS, no OS at all) still opens: RootErr says why, and the layout is there.
func Open(path string) (*Guest, error) {
	im, err := diskimage.Open(path)
	if err != nil {
		return nil, err
	}
	layout, err := volume.List(im.Disk)
	if err != nil {
		im.Close()
		return nil, fmt.Errorf("%s: %w: %w", path, ErrLayout, err)
	}
	g := &Guest{Name: path, Image: im, Layout: layout, Warnings: layout.Warnings}
	root, err := rootfs.Assemble(rootfs.VolumesOf(layout))
	if err != nil {
		g.RootErr = err
		return g, nil
	}
	g.Root, g.Mounts = root, root.Mounts
	g.Warnings = append(g.Warnings, root.Warnings...)
	return g, nil
}

// OpenDir opens a directory tree (an unpacked or mounted root filesystem).
func OpenDir(dir string) (*Guest, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return &Guest{Name: dir, Root: rootfs.Dir(dir), Mounts: []rootfs.Mounted{{Path: "/", Volume: dir, FSType: "directory"}}}, nil
}

// Close releases the image's lock, if held, and closes the image file.
func (g *Guest) Close() error {
	if g.change != nil {
		g.change.Close()
		g.change = nil
	}
	if g.Image != nil {
		return g.Image.Close()
	}
	return nil
}

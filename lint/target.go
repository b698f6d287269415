package lint

import (
	"errors"
	"io/fs"

	"github.com/vhdprep/vhdprep/diskimage"
	"github.com/vhdprep/vhdprep/guest"
	"github.com/vhdprep/vhdprep/initrd"
	"github.com/vhdprep/vhdprep/kernel"
	"github.com/vhdprep/vhdprep/rootfs"
)

// Target is what the rules look at: the image's container, its layout and
// the guest's files, with the facts several rules share worked out once.
type Target struct {
	// Name is the image file or root directory, for reports.
	Name string
	// Container describes the image file; nil when checking a directory.
	Container *Container
	Guest     *guest.Guest
	// layoutErr says why an image's layout could not be read; Guest is
	// nil then.
	layoutErr error

	config   *Config
	cmdlines []kernel.Location
	arch     string
	facts    bool
	initrds  map[string]*initrd.Inventory // by path, read once per check
}

// Container is what the container rules need to know of the image file:
// what diskimage.AzureVerdict decides from.
type Container = diskimage.Container

// OpenImage opens an image file as a check target. A container vhdprep
// cannot read (a differencing VHD, an ISO) is still a target: the
// container rules report it, with the command that converts it.
func OpenImage(path string) (*Target, error) {
	g, err := guest.Open(path)
	return newTarget(path, g, err)
}

// Opener opens the image, or with dir set instead the directory tree, as
// a target, the way guest.Opener opens it: what Fix and Deprovision open.
func Opener(image, dir string) func(change bool) (*Target, error) {
	open := guest.Opener(image, dir)
	return func(change bool) (*Target, error) {
		g, err := open(change)
		return newTarget(image, g, err)
	}
}

// NewTarget is the target of a guest opened with guest.Opener.
func NewTarget(g *guest.Guest) *Target {
	t, _ := newTarget(g.Name, g, nil)
	return t
}

// newTarget is the target of what opening the image at path (or a
// directory) gave.
func newTarget(path string, g *guest.Guest, err error) (*Target, error) {
	var unreadable *diskimage.UnreadableError
	switch {
	case errors.As(err, &unreadable):
		return &Target{Name: path, Container: &Container{Path: path, Format: unreadable.Format, FileSize: unreadable.FileSize}}, nil
	case errors.Is(err, guest.ErrLayout):
		return unreadableLayout(path, err)
	case err != nil:
		return nil, err
	case g.Image == nil:
		return &Target{Name: g.Name, Guest: g}, nil
	}
	c := g.Image.ContainerOf(g.Layout.Table, func() (bool, string) {
		b := g.DetectBoot()
		return b.Gen2, b.Detail
	})
	return &Target{Name: path, Guest: g, Container: &c}, nil
}

// unreadableLayout is the target of an image whose partition table or LVM
// cannot be read (a GPT of 100 000 entries): the container rules still
// judge the file, DSK001 reports why the layout is unreadable, and the
// rules that need the guest are skipped pointing at it.
func unreadableLayout(path string, layoutErr error) (*Target, error) {
	im, err := diskimage.Open(path)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	c := im.Container(func() (bool, string) { return false, "the partition table cannot be read" })
	return &Target{Name: path, Container: &c, layoutErr: layoutErr}, nil
}

// Close releases the image, and its lock.
func (t *Target) Close() error {
	if t.Guest != nil {
		return t.Guest.Close()
	}
	return nil
}

// option returns a rule's configured option, or def.
func (t *Target) option(rule, key, def string) string {
	if t.config == nil {
		return def
	}
	return t.config.option(rule, key, def)
}

// root is the guest's file tree, or a skip saying why there is none.
func (t *Target) root() (rootfs.FS, error) {
	if t.layoutErr != nil {
		return nil, Skip("the disk layout cannot be read (see DSK001)")
	}
	if t.Guest == nil || t.Guest.Root == nil {
		if t.Guest != nil && t.Guest.RootErr != nil {
			return nil, Skip("the root filesystem is not readable: %v", t.Guest.RootErr)
		}
		return nil, Skip("no guest file tree to check")
	}
	return t.Guest.Root, nil
}

// layout is the disk layout, or a skip for a directory.
func (t *Target) layout() (*guest.Guest, error) {
	if t.layoutErr != nil {
		return nil, Skip("the disk layout cannot be read (see DSK001)")
	}
	if t.Guest == nil || t.Guest.Layout == nil {
		return nil, Skip("a directory has no disk layout to check")
	}
	return t.Guest, nil
}

// learn works out the shared facts once.
func (t *Target) learn() {
	if t.facts || t.Guest == nil || t.Guest.Root == nil {
		return
	}
	t.facts = true
	t.cmdlines = kernel.FindCmdlines(t.Guest.Root)
	t.arch, _ = guest.DetectArch(t.Guest.Root)
}

// readFile reads a guest file; a missing file is (nil, nil).
func readFile(root rootfs.FS, name string) ([]byte, error) {
	b, err := root.ReadFile(name)
	if err != nil && isNotExist(err) {
		return nil, nil
	}
	return b, err
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

func exists(root rootfs.FS, name string) bool {
	_, err := root.Lstat(name)
	return err == nil
}

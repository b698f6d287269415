package guest

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/vhdprep/vhdprep/diskimage"
	"github.com/vhdprep/vhdprep/internal/shell"
	"github.com/vhdprep/vhdprep/raw/probe"
	"github.com/vhdprep/vhdprep/raw/volume"
	"github.com/vhdprep/vhdprep/rootfs/write"
)

// OpenToChange opens an image to plan a change and apply it: the image's
// lock is taken, and an interrupted change undone, before anything is
// read, and the lock is held until Close, so what is planned is what is
// changed.
func OpenToChange(path string) (*Guest, error) {
	change, err := write.OpenImage(path)
	if err != nil {
		return nil, err
	}
	g, err := Open(path)
	if err != nil {
		change.Close()
		return nil, err
	}
	g.change = change
	return g, nil
}

// CheckWritable tells, before anything is printed or changed, whether
// Apply can write every one of changes into g: an image must be raw or a
// fixed VHD, and each filesystem a change lands on ext2/3/4 on a partition
// or a linear logical volume. A refusal names what to run instead of
// command, the vhdprep command that made the changes ("fix").
func (g *Guest) CheckWritable(changes []write.Change, command string) error {
	_, err := g.volumes(changes, command)
	return err
}

// volumes groups the changes to an image by the volume each lands on,
// keyed by mount point, or refuses as CheckWritable does.
func (g *Guest) volumes(changes []write.Change, command string) (map[string]volume.Volume, error) {
	if len(changes) == 0 || g.Image == nil {
		return nil, nil
	}
	if f := g.Image.Format; f != diskimage.Raw && f != diskimage.VHDFixed {
		fixed := shell.Quote(diskimage.FixedVHDName(g.Name))
		return nil, fmt.Errorf("%s is %s, and vhdprep %s writes only raw images and fixed VHDs: run 'vhdprep convert %s %s', then 'vhdprep %s %s'",
			g.Name, f, command, shell.Quote(g.Name), fixed, command, fixed)
	}
	out := map[string]volume.Volume{}
	for _, c := range changes {
		m := g.mountOf(c.Path)
		if _, ok := out[m]; ok {
			continue
		}
		v, err := g.volumeAt(m, command)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", g.Name, err)
		}
		out[m] = v
	}
	return out, nil
}

// Apply writes changes into the guest: the ext2/3/4 filesystems of a raw
// image or fixed VHD opened with OpenToChange, or the directory. The
// changes of every filesystem are applied together, verified, and undone
// on failure. command is as for CheckWritable.
func (g *Guest) Apply(changes []write.Change, command string) error {
	if len(changes) == 0 {
		return nil
	}
	if g.Image == nil {
		d, err := write.OpenDir(g.Name)
		if err != nil {
			return err
		}
		write.Queue(d, g.Root, "/", changes)
		return d.Apply()
	}
	volumes, err := g.volumes(changes, command)
	if err != nil {
		return err
	}
	if g.change == nil {
		return fmt.Errorf("%s was opened to read, not to change (guest.OpenToChange)", g.Name)
	}
	byMount := map[string][]write.Change{}
	for _, c := range changes {
		m := g.mountOf(c.Path)
		byMount[m] = append(byMount[m], c)
	}
	// Every filesystem is opened, and its preconditions checked, before the
	// first is written.
	mounts := make([]string, 0, len(byMount))
	for m := range byMount {
		mounts = append(mounts, m)
	}
	sort.Strings(mounts)
	for _, m := range mounts {
		v := volumes[m]
		w, err := g.change.Ext4(v.Offset, v.Size)
		if err != nil {
			return err
		}
		write.Queue(w, g.Root, m, byMount[m])
	}
	return g.change.Apply()
}

// mountOf is the mount point holding a guest path (the longest match).
func (g *Guest) mountOf(p string) string {
	best := "/"
	for _, m := range g.Mounts {
		if (p == m.Path || strings.HasPrefix(p, strings.TrimSuffix(m.Path, "/")+"/")) && len(m.Path) > len(best) {
			best = m.Path
		}
	}
	return best
}

// volumeAt finds the writable volume mounted at mountPath, with its place
// on the disk; a refusal names what command should do instead.
func (g *Guest) volumeAt(mountPath, command string) (volume.Volume, error) {
	for _, m := range g.Mounts {
		if m.Path != mountPath {
			continue
		}
		for _, v := range g.Layout.Volumes {
			if v.Name != m.Volume {
				continue
			}
			if v.FS.Type != probe.Ext2 && v.FS.Type != probe.Ext3 && v.FS.Type != probe.Ext4 {
				return v, fmt.Errorf("%s is %s, which vhdprep cannot write (only ext2/3/4): %s", mountPath, v.FS.Type, onMountedTree(command))
			}
			off, err := g.Layout.OnDisk(v)
			if err != nil {
				return v, fmt.Errorf("%s is on LVM logical volume %s, which %s; vhdprep writes only linear LVs of one segment: %s", mountPath, v.Name, err, onMountedTree(command))
			}
			v.Offset = off
			return v, nil
		}
	}
	return volume.Volume{}, fmt.Errorf("no volume is mounted at %s", mountPath)
}

// onMountedTree is the remedy where vhdprep cannot write a filesystem:
// the same command on the tree, mounted by the system's own driver.
func onMountedTree(command string) string {
	return fmt.Sprintf("mount the image's filesystems (e.g. with guestmount, or a loop device) and run 'vhdprep %s --root MOUNTPOINT'", command)
}

// Write writes changes, which command ("fix", "agent inject") planned
// from g, into g, and closes g. Changes g cannot take are refused before
// shown sees them; a dry run shows them, with the refusal, and writes
// nothing; so does a run whose ctx ended while it planned (the error wraps
// ctx's). After a run that wrote, the command opens g again to check
// what it wrote.
func Write(ctx context.Context, g *Guest, changes []write.Change, command string, dryRun bool, shown func(refused error)) error {
	defer g.Close()
	refused := g.CheckWritable(changes, command)
	if refused != nil && !dryRun {
		return refused
	}
	shown(refused)
	if dryRun {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: nothing was written: %w", command, g.Name, err)
	}
	if err := g.Apply(changes, command); err != nil {
		return fmt.Errorf("%s %s: %w", command, g.Name, err)
	}
	return nil
}

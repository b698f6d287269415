package lint

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/vhdprep/vhdprep/diskimage"
	"github.com/vhdprep/vhdprep/internal/shell"
	"github.com/vhdprep/vhdprep/raw/probe"
	"github.com/vhdprep/vhdprep/raw/volume"
	"github.com/vhdprep/vhdprep/rootfs"
	"github.com/vhdprep/vhdprep/rootfs/write"
)

// Plan is what vhdprep fix would change.
type Plan struct {
	Report  *Report   // the check the plan answers
	Rules   []RuleFix // per rule: what its repair touched, or why it could not
	Changes []Change  // every file change, merged
	// Command is the vhdprep command that writes the plan ("fix" when
	// empty), named in the remedies of a refusal.
	Command string
	overlay *Overlay
}

// Commands that write plans into images, as their refusals name them.
const (
	CommandFix         = "fix"
	CommandDeprovision = "deprovision"
)

func (p *Plan) command() string {
	if p.Command == "" {
		return CommandFix
	}
	return p.Command
}

// RuleFix is one rule's part of a plan.
type RuleFix struct {
	ID    string   `json:"id"`
	Files []string `json:"files"`
	Notes []string `json:"notes,omitempty"` // what the user must still do
	// Command is the other vhdprep command that fixes the rule (agent
	// inject, deprovision), where fix itself does not.
	Command string `json:"command,omitempty"`
	Error   string `json:"error,omitempty"`
}

// PlanFix checks the target and lets every failing rule that can repair
// itself (only those named in only, when given) edit an overlay.
func PlanFix(t *Target, catalog []*Rule, cfg *Config, only []string) (*Plan, error) {
	root, err := t.root()
	if err != nil {
		return nil, fmt.Errorf("fix needs the guest's files: %w", err)
	}
	rep := Run(t, catalog, cfg)
	p := &Plan{Report: rep, Command: CommandFix, overlay: NewOverlay(root)}
	for _, o := range rep.Outcomes {
		if o.Status != Failed || !o.Rule.Fixable || (len(only) > 0 && !contains(only, o.ID)) {
			continue
		}
		if o.Rule.Repair == nil {
			// Another command's: the one check found works here, or why
			// none does.
			rf := RuleFix{ID: o.ID, Command: commandOf(o)}
			if rf.Command == "" {
				rf.Error = cannotSay(o)
			}
			p.Rules = append(p.Rules, rf)
			continue
		}
		before, notes := p.overlay.Changes(), len(p.overlay.notes)
		rf := RuleFix{ID: o.ID}
		if err := o.Rule.Repair(t, p.overlay); err != nil {
			rf.Error = err.Error()
		}
		rf.Files = newPaths(before, p.overlay.Changes())
		rf.Notes = p.overlay.notes[notes:]
		if rf.Error == "" && len(rf.Files) == 0 && len(rf.Notes) == 0 {
			rf.Error = cannotSay(o)
		}
		p.Rules = append(p.Rules, rf)
	}
	p.Changes = p.overlay.Changes()
	return p, nil
}

// commandOf is the vhdprep command check found repairs a rule here.
func commandOf(o Outcome) string {
	for _, f := range o.Findings {
		if f.Command != "" {
			return f.Command
		}
	}
	return ""
}

// cannotSay is why vhdprep repairs none of a rule's findings here: the
// first hint check gave, which says what to do instead.
func cannotSay(o Outcome) string {
	for _, f := range o.Findings {
		if f.Fix != "" {
			return f.Fix
		}
	}
	return "vhdprep has nothing to change for what check finds (see vhdprep check)"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// newPaths lists the files after touches that before did not, or that
// changed since.
func newPaths(before, after []Change) []string {
	old := map[string]string{}
	for _, c := range before {
		old[c.Path] = string(c.New)
	}
	var out []string
	for _, c := range after {
		if prev, ok := old[c.Path]; !ok || prev != string(c.New) {
			out = append(out, c.Path)
		}
	}
	return out
}

// CheckWritable tells, before anything is printed or changed, whether
// Apply can write every change of the plan into t: an image must be raw or
// a fixed VHD, and each filesystem a change lands on ext2/3/4 on a
// partition or a linear logical volume. A refusal names what to run
// instead, for the command that made the plan.
func (p *Plan) CheckWritable(t *Target) error {
	_, err := p.volumes(t)
	return err
}

// volumes groups the plan's changes of an image by the volume each lands
// on, keyed by mount point, or refuses as CheckWritable does.
func (p *Plan) volumes(t *Target) (map[string]volume.Volume, error) {
	if len(p.Changes) == 0 || t.Guest == nil || t.Guest.Image == nil {
		return nil, nil
	}
	if f := t.Container.Format; f != diskimage.Raw && f != diskimage.VHDFixed {
		fixed := shell.Quote(diskimage.FixedVHDName(t.Name))
		return nil, fmt.Errorf("%s is %s, and vhdprep %s writes only raw images and fixed VHDs: run 'vhdprep convert %s %s', then 'vhdprep %s %s'",
			t.Name, f, p.command(), shell.Quote(t.Name), fixed, p.command(), fixed)
	}
	out := map[string]volume.Volume{}
	for _, c := range p.Changes {
		m := mountOf(t, c.Path)
		if _, ok := out[m]; ok {
			continue
		}
		v, err := volumeAt(t, m, p.command())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		out[m] = v
	}
	return out, nil
}

// Apply writes the plan into the image (ext2/3/4 filesystems of a raw image
// or fixed VHD, opened with OpenImageToChange) or the directory. The changes
// of every filesystem are applied together, verified, and undone on failure.
func (p *Plan) Apply(t *Target) error {
	if len(p.Changes) == 0 {
		return nil
	}
	if t.Guest.Image == nil {
		d, err := write.OpenDir(t.Name)
		if err != nil {
			return err
		}
		return applyTo(d, p.Changes, "/", t)
	}
	volumes, err := p.volumes(t)
	if err != nil {
		return err
	}
	if t.change == nil {
		return fmt.Errorf("%s was opened to read, not to change (lint.OpenImageToChange)", t.Name)
	}
	byMount := map[string][]Change{}
	for _, c := range p.Changes {
		m := mountOf(t, c.Path)
		byMount[m] = append(byMount[m], c)
	}
	// Every filesystem is opened, and its preconditions checked, before the
	// first is written.
	mounts := make([]string, 0, len(byMount))
	for m := range byMount {
		mounts = append(mounts, m)
	}
	sort.Strings(mounts)
	for _, mountPath := range mounts {
		changes := byMount[mountPath]
		v := volumes[mountPath]
		w, err := t.change.Ext4(v.Offset, v.Size)
		if err != nil {
			return err
		}
		queue(w, changes, mountPath, t)
	}
	return t.change.Apply()
}

// mountOf is the mount point holding a guest path (the longest match).
func mountOf(t *Target, p string) string {
	best := "/"
	for _, m := range t.Guest.Mounts {
		if (p == m.Path || strings.HasPrefix(p, strings.TrimSuffix(m.Path, "/")+"/")) && len(m.Path) > len(best) {
			best = m.Path
		}
	}
	return best
}

// volumeAt finds the writable partition mounted at mountPath; a refusal
// names what command should do instead.
func volumeAt(t *Target, mountPath, command string) (volume.Volume, error) {
	for _, m := range t.Guest.Mounts {
		if m.Path != mountPath {
			continue
		}
		for _, v := range t.Guest.Layout.Volumes {
			if v.Name != m.Volume {
				continue
			}
			if v.FS.Type != probe.Ext2 && v.FS.Type != probe.Ext3 && v.FS.Type != probe.Ext4 {
				return v, fmt.Errorf("%s is %s, which vhdprep cannot write (only ext2/3/4): %s", mountPath, v.FS.Type, onMountedTree(command))
			}
			off, err := t.Guest.Layout.OnDisk(v)
			if err != nil {
				return v, fmt.Errorf("%s is on LVM logical volume %s, which %s; vhdprep writes only linear LVs of one segment: %s", mountPath, v.Name, err, onMountedTree(command))
			}
			v.Offset = off
			return v, nil
		}
	}
	return volume.Volume{}, fmt.Errorf("no volume is mounted at %s", mountPath)
}

// applyTo queues the changes under one mount point and applies them.
func applyTo(w write.FS, changes []Change, mountPath string, t *Target) error {
	queue(w, changes, mountPath, t)
	return w.Apply()
}

// queue queues the changes under one mount point, keeping the permissions
// of the files they replace and making the directories new files need.
func queue(w write.FS, changes []Change, mountPath string, t *Target) {
	made := map[string]bool{}
	for _, c := range changes {
		if c.Removed || c.Old != nil {
			continue
		}
		for _, dir := range parents(c.Path, mountPath) {
			if _, err := t.Guest.Root.Lstat(strings.TrimPrefix(dir, "/")); err != nil && !made[dir] {
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
		if info, err := t.Guest.Root.Lstat(strings.TrimPrefix(c.Path, "/")); err == nil {
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

// onMountedTree is the remedy where vhdprep cannot write a filesystem:
// the same command on the tree, mounted by the system's own driver.
func onMountedTree(command string) string {
	return fmt.Sprintf("mount the image's filesystems (e.g. with guestmount, or a loop device) and run 'vhdprep %s --root MOUNTPOINT'", command)
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

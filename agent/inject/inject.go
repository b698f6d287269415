// Package inject installs vhdprep's guest agent into an image or a
// directory tree: the static binary for the guest's architecture, its
// systemd units and their enable links, and its configuration. It writes
// through the same session as `vhdprep fix` (write.Overlay, applied by
// guest.Guest.Apply), so an image changes as fix changes it (debugfs,
// e2fsck, undone on failure). A record of what it
// created, replaced and disabled lets Remove put back exactly that.
package inject

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/vhdprep/vhdprep/agent/layout"
	"github.com/vhdprep/vhdprep/guest"
	"github.com/vhdprep/vhdprep/guest/agents"
	"github.com/vhdprep/vhdprep/rootfs"
	"github.com/vhdprep/vhdprep/rootfs/write"
)

// Options says how to inject.
type Options struct {
	// ReplaceAgents disables the other provisioning agents that start at
	// boot (WALinuxAgent, azure-init, cloud-init with the Azure
	// datasource) instead of refusing.
	ReplaceAgents bool
	// Binary is the agent to install; nil means the one built into vhdprep
	// for the guest's architecture.
	Binary []byte
	// Verify, when set, holds Inject to its claims on a fresh view of what
	// it wrote: the rules it claims to repair (see Plan.Claimed) must pass
	// check now (lint.VerifyGuest).
	Verify func(after *guest.Guest, command string, claimed []string) error
}

// Plan is what Inject or Remove changes.
type Plan struct {
	Changes []write.Change
	Arch    string   // the guest's architecture (inject only)
	Agents  []string // provisioning agents inject disables, or remove enables again
	// ResourceDisk says what the agent's configuration does with the
	// resource disk (inject only).
	ResourceDisk string
	// Media says what becomes of the provisioning media once the VM is
	// provisioned (inject only).
	Media   string
	command string // "agent inject" or "agent remove", for refusals
}

// The commands that write these plans, as refusals name them.
const (
	commandInject = "agent inject"
	commandRemove = "agent remove"
)

// Claimed lists the rules an inject that changes the image repairs: an
// agent provisions (AGT001), and only one (AGT006).
func (p *Plan) Claimed() []string {
	if p.command != commandInject || len(p.Changes) == 0 {
		return nil
	}
	return []string{"AGT001", "AGT006"}
}

// Result is what Inject or Remove did.
type Result struct {
	Plan *Plan
	// Refused says, after a dry run, why the real run would be refused.
	Refused error
}

// Inject is vhdprep agent inject: it plans the installation into the
// guest open opens (to change it, unless dryRun; see guest.Opener),
// writes it (see guest.Write), and, with opt.Verify, checks the rules it
// claims to repair on a fresh view of what was written.
func Inject(ctx context.Context, open func(change bool) (*guest.Guest, error), dryRun bool, opt Options) (*Result, error) {
	return run(ctx, open, dryRun, commandInject, func(g *guest.Guest) (*Plan, error) { return PlanInject(g, opt) }, opt.Verify)
}

// Remove is vhdprep agent remove, as Inject is agent inject; it claims no
// rule.
func Remove(ctx context.Context, open func(change bool) (*guest.Guest, error), dryRun bool) (*Result, error) {
	return run(ctx, open, dryRun, commandRemove, PlanRemove, nil)
}

func run(ctx context.Context, open func(change bool) (*guest.Guest, error), dryRun bool, command string, planFor func(*guest.Guest) (*Plan, error),
	verify func(after *guest.Guest, command string, claimed []string) error) (*Result, error) {
	g, err := open(!dryRun)
	if err != nil {
		return nil, err
	}
	plan, err := planFor(g)
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("%s: %w", command, err)
	}
	res := &Result{Plan: plan}
	if err := guest.Write(ctx, g, plan.Changes, command, dryRun, func(refused error) { res.Refused = refused }); err != nil {
		return nil, err
	}
	if dryRun || verify == nil {
		return res, nil
	}
	after, err := open(false)
	if err != nil {
		return nil, err
	}
	defer after.Close()
	return res, verify(after, command, plan.Claimed())
}

// editor edits a guest through an overlay and notes in rec what it found.
type editor struct {
	root rootfs.FS
	o    *write.Overlay
	rec  *Record
}

// PlanInject works out what installing the agent changes; nothing, when it
// is installed as this vhdprep would install it.
func PlanInject(g *guest.Guest, opt Options) (*Plan, error) {
	root, err := guestRoot(g)
	if err != nil {
		return nil, err
	}
	if err := agents.InjectSupported(root); err != nil {
		return nil, fmt.Errorf("%s: %w", g.Name, err)
	}
	arch, _ := guest.DetectArch(root)
	bin := opt.Binary
	if bin == nil {
		if bin, err = EmbeddedBinary(arch); err != nil {
			return nil, fmt.Errorf("%s: %w", g.Name, err)
		}
	} else if err := CheckBinary(bin, arch); err != nil {
		return nil, fmt.Errorf("%s: the agent binary given is %w", g.Name, err)
	}
	rec, err := readRecord(root)
	if errors.Is(err, fs.ErrNotExist) {
		rec, err = &Record{Version: recordVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.Name, err)
	}
	e := &editor{root: root, o: write.NewOverlay(root), rec: rec}
	p := &Plan{Arch: arch, command: commandInject}
	if p.Agents, err = e.disableOthers(opt.ReplaceAgents); err != nil {
		return nil, fmt.Errorf("%s: %w", g.Name, err)
	}
	units := unitDir(root)
	e.write(layout.Binary, bin, 0o755)
	e.write(units+"/"+layout.ProvisionUnit, []byte(provisionUnitText), 0o644)
	e.write(units+"/"+layout.DaemonUnit, []byte(daemonUnitText), 0o644)
	conf, err := root.ReadFile(strings.TrimPrefix(layout.ConfigFile, "/"))
	if !e.exists(layout.ConfigFile) {
		// The resource disk and extensions keep what the replaced agents
		// were told to do (an existing config is the user's, and kept:
		// check's SWP002 reports a setting left behind there).
		settings, from, err := agents.ReplacedSettings(root, p.Agents)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", g.Name, err)
		}
		conf = []byte(configWith(settings, from))
		e.write(layout.ConfigFile, conf, 0o644)
	} else if err != nil {
		return nil, fmt.Errorf("%s: %w", g.Name, err)
	}
	c, _ := layout.ParseConfig(conf)
	p.ResourceDisk = describeResourceDisk(c.ResourceDisk())
	p.Media = e.describeMedia()
	e.link(wantsDir+"/"+layout.ProvisionUnit, units+"/"+layout.ProvisionUnit)
	e.link(wantsDir+"/"+layout.DaemonUnit, units+"/"+layout.DaemonUnit)
	e.madeDirs(RecordPath)
	e.o.Read(strings.TrimPrefix(RecordPath, "/"))
	e.o.WriteMode(strings.TrimPrefix(RecordPath, "/"), rec.marshal(), 0o644)
	p.Changes = e.o.Changes()
	return p, nil
}

// configWith is the default configuration with the given keys set, and a
// comment saying where they come from.
func configWith(settings map[string]string, from []string) string {
	text := layout.DefaultConfigText
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(k) + `=.*$`)
		text = re.ReplaceAllLiteralString(text, k+"="+settings[k])
	}
	if len(keys) > 0 {
		whose := "whose agent"
		if len(from) > 1 {
			whose = "whose agents"
		}
		text += fmt.Sprintf("#\n# agent inject carried %s over from %s, %s it replaced.\n", strings.Join(keys, ", "), strings.Join(from, " and "), whose)
	}
	return text
}

// describeResourceDisk says what the agent will do with the resource disk.
func describeResourceDisk(c layout.ResourceDisk) string {
	if !c.Format {
		return "left alone (ResourceDisk.Format=n in " + layout.ConfigFile + ")"
	}
	s := "formatted " + c.Filesystem + " when blank or NTFS, and mounted at " + c.MountPoint
	if c.EnableSwap && c.SwapSizeMB > 0 {
		s += fmt.Sprintf(", with a %d MiB swap file", c.SwapSizeMB)
	}
	return s
}

// describeMedia says whether the agent can eject the provisioning media,
// which it does with the guest's eject as WALinuxAgent does.
func (e *editor) describeMedia() string {
	for _, p := range []string{"/usr/bin/eject", "/bin/eject", "/usr/sbin/eject", "/sbin/eject"} {
		if e.exists(p) {
			return "ejected once the VM is provisioned"
		}
	}
	return "left in the drive, with the ovf-env.xml Azure wrote for the VM: the image has no eject program (install eject)"
}

// PlanRemove works out what puts back what inject changed, from its record.
func PlanRemove(g *guest.Guest) (*Plan, error) {
	root, err := guestRoot(g)
	if err != nil {
		return nil, err
	}
	rec, err := readRecord(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no %s: the vhdprep agent was not injected here, nothing to remove", g.Name, RecordPath)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.Name, err)
	}
	o := write.NewOverlay(root)
	gone := map[string]bool{}
	for _, p := range append([]string{RecordPath}, rec.Created...) {
		if _, err := root.Lstat(strings.TrimPrefix(p, "/")); err == nil {
			o.Remove(strings.TrimPrefix(p, "/"))
			gone[p] = true
		}
	}
	for _, s := range append(rec.Replaced, rec.Disabled...) {
		restore(o, s)
	}
	// Directories inject made go too, deepest first, unless something else
	// (the agent's state, once the image has booted) is in them now.
	dirs := append([]string(nil), rec.Dirs...)
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	for _, d := range dirs {
		ents, err := root.ReadDir(strings.TrimPrefix(d, "/"))
		if err != nil {
			continue
		}
		empty := true
		for _, ent := range ents {
			empty = empty && gone[d+"/"+ent.Name()]
		}
		if empty {
			o.RemoveTree(strings.TrimPrefix(d, "/"))
			gone[d] = true
		}
	}
	return &Plan{Changes: o.Changes(), Agents: rec.Agents, command: commandRemove}, nil
}

func restore(o *write.Overlay, s Saved) {
	name := strings.TrimPrefix(s.Path, "/")
	if s.Link != "" {
		o.Symlink(name, s.Link)
		return
	}
	o.Read(name)
	o.WriteMode(name, s.Data, s.Mode)
}

func guestRoot(g *guest.Guest) (rootfs.FS, error) {
	switch {
	case g.Root != nil:
		return g.Root, nil
	case g.RootErr != nil:
		return nil, fmt.Errorf("%s: the root filesystem is not readable: %v", g.Name, g.RootErr)
	}
	return nil, fmt.Errorf("%s: vhdprep cannot read this image's files: run 'vhdprep info %s' to see why", g.Name, g.Name)
}

func readRecord(root rootfs.FS) (*Record, error) {
	name := strings.TrimPrefix(RecordPath, "/")
	info, err := root.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() || info.Size() > maxRecord {
		return nil, fmt.Errorf("%s is not a record agent inject wrote; remove it by hand", RecordPath)
	}
	b, err := root.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return ParseRecord(b)
}

// unitDir is where the guest's packages keep their units: /lib/systemd/system
// when /lib is a directory of its own that has them, else /usr/lib/systemd/system.
func unitDir(root rootfs.FS) string {
	if info, err := root.Lstat("lib"); err == nil && info.IsDir() {
		if info, err := root.Lstat("lib/systemd/system"); err == nil && info.IsDir() {
			return "/lib/systemd/system"
		}
	}
	return "/usr/lib/systemd/system"
}

// disableOthers turns off the other provisioning agents that start at
// boot, or refuses when replace is false. It returns their names.
func (e *editor) disableOthers(replace bool) ([]string, error) {
	type unit struct {
		name  string
		links []string // enable links, the administrator's and the package's
		mask  bool     // enabled by its package, which may enable it again
	}
	var names []string
	var todo []unit
	cloudInit := false
	for _, r := range rivals {
		if r.cloudInit && cloudInitOff(e.root) {
			continue
		}
		found := false
		for _, name := range r.units {
			if _, err := e.root.ReadLink(strings.TrimPrefix(maskDir+"/"+name, "/")); err == nil {
				continue // masked: it never starts
			}
			u := unit{name: name, links: enableLinks(e.root, maskDir, name)}
			for _, dir := range packageUnitDirs(e.root) {
				vendor := enableLinks(e.root, dir, name)
				u.links, u.mask = append(u.links, vendor...), u.mask || len(vendor) > 0
			}
			if len(u.links) > 0 {
				todo, found = append(todo, u), true
			}
		}
		if found {
			names = append(names, r.name)
			cloudInit = cloudInit || r.cloudInit
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	if !replace {
		return nil, fmt.Errorf("%s starts at boot and would race the vhdprep agent to provision the VM: pass --replace-waagent to disable it (agent remove enables it again)", strings.Join(names, " and "))
	}
	for _, u := range todo {
		for _, l := range u.links {
			target, _ := e.root.ReadLink(strings.TrimPrefix(l, "/"))
			e.rec.Disabled = append(e.rec.Disabled, Saved{Path: l, Link: target})
			e.o.Remove(strings.TrimPrefix(l, "/"))
		}
		if u.mask {
			e.link(maskDir+"/"+u.name, "/dev/null")
		}
	}
	if cloudInit {
		e.write(cloudInitDisabled, []byte("# written by vhdprep agent inject: the vhdprep agent provisions this VM\n"), 0o644)
	}
	e.rec.Agents = append(e.rec.Agents, names...)
	return names, nil
}

func (e *editor) exists(p string) bool {
	_, err := e.root.Lstat(strings.TrimPrefix(p, "/"))
	return err == nil
}

// recorded tells whether an earlier inject already noted p.
func (e *editor) recorded(p string) bool {
	for _, c := range e.rec.Created {
		if c == p {
			return true
		}
	}
	for _, s := range e.rec.Replaced {
		if s.Path == p {
			return true
		}
	}
	return false
}

// write puts a file in place, noting what was there before.
func (e *editor) write(p string, data []byte, mode fs.FileMode) {
	name := strings.TrimPrefix(p, "/")
	switch info, err := e.root.Lstat(name); {
	case e.recorded(p):
	case err != nil:
		e.madeDirs(p)
		e.rec.Created = append(e.rec.Created, p)
	case info.Mode()&fs.ModeSymlink != 0:
		target, _ := e.root.ReadLink(name)
		e.rec.Replaced = append(e.rec.Replaced, Saved{Path: p, Link: target})
	default:
		old, _ := e.root.ReadFile(name)
		if !bytes.Equal(old, data) || info.Mode().Perm() != mode {
			e.rec.Replaced = append(e.rec.Replaced, Saved{Path: p, Data: old, Mode: info.Mode().Perm()})
		}
	}
	e.o.Read(name)
	e.o.WriteMode(name, data, mode)
}

// link makes a symlink, noting what was there before.
func (e *editor) link(p, target string) {
	name := strings.TrimPrefix(p, "/")
	cur, err := e.root.ReadLink(name)
	switch {
	case e.recorded(p) || err == nil && cur == target:
	case !e.exists(p):
		e.madeDirs(p)
		e.rec.Created = append(e.rec.Created, p)
	case err == nil:
		e.rec.Replaced = append(e.rec.Replaced, Saved{Path: p, Link: cur})
	default:
		old, _ := e.root.ReadFile(name)
		e.rec.Replaced = append(e.rec.Replaced, Saved{Path: p, Data: old, Mode: 0o644})
	}
	e.o.Symlink(name, target)
}

// madeDirs notes the directories a new file at p needs that the guest
// lacks.
func (e *editor) madeDirs(p string) {
	for d := path.Dir(p); d != "/" && !e.exists(d); d = path.Dir(d) {
		known := false
		for _, k := range e.rec.Dirs {
			known = known || k == d
		}
		if !known {
			e.rec.Dirs = append(e.rec.Dirs, d)
		}
	}
}

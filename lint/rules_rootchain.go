package lint

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/vhdprep/vhdprep/kernel"
)

// driver is a kernel module and the config symbol that builds it in.
type driver struct{ module, sym string }

// storageChain is what a Hyper-V root disk needs before the root is
// mounted, in load order: the bus, the storage driver, the SCSI core and
// the disk driver.
var storageChain = []driver{
	{"hv_vmbus", "HYPERV"},
	{"hv_storvsc", "HYPERV_STORAGE"},
	{"scsi_mod", "SCSI"},
	{"sd_mod", "BLK_DEV_SD"},
}

// dmDriver is device-mapper's core, which LVM roots need.
var dmDriver = driver{"dm_mod", "BLK_DEV_DM"}

// rootFSDrivers are the drivers of the root filesystems a kernel may
// mount: ext2 and ext3 are also mounted by ext4's driver.
var rootFSDrivers = map[string][]driver{
	"ext2":  {{"ext4", "EXT4_FS"}, {"ext2", "EXT2_FS"}},
	"ext3":  {{"ext4", "EXT4_FS"}, {"ext3", "EXT3_FS"}},
	"ext4":  {{"ext4", "EXT4_FS"}},
	"xfs":   {{"xfs", "XFS_FS"}},
	"btrfs": {{"btrfs", "BTRFS_FS"}},
}

// lvmProgram is the LVM tool an initramfs runs to activate the root's
// volume group.
const lvmProgram = "lvm"

// notVolumeGroups are the directories of /dev whose two-part names
// (/dev/X/Y) are not an LVM volume group's logical volumes.
var notVolumeGroups = map[string]bool{"disk": true, "md": true, "mapper": true}

// rootStorage is what the root filesystem sits on.
type rootStorage struct {
	fsType string // "" when unknown
	lvm    bool   // on an LVM logical volume
	dm     bool   // on any device-mapper device (LVM included)
}

// rootStorageOf works out the root's filesystem and device: from the
// volume it was read from in an image, else from fstab's entry for /.
func rootStorageOf(t *Target) rootStorage {
	var rs rootStorage
	if ms := t.Guest.Mounts; t.Guest.Layout != nil && len(ms) > 0 && ms[0].Path == "/" {
		rs.fsType = ms[0].FSType
		for _, v := range t.Guest.Layout.Volumes {
			if v.Name == ms[0].Volume && v.LV != "" {
				rs.lvm, rs.dm = true, true
			}
		}
		return rs
	}
	es, _ := t.fstab()
	for _, e := range es {
		if e.File != "/" {
			continue
		}
		if e.Type != "auto" {
			rs.fsType = e.Type
		}
		if name, ok := strings.CutPrefix(e.Spec, "/dev/mapper/"); ok {
			// LUKS names its mappings luks-UUID; LVM names them VG-LV.
			rs.dm, rs.lvm = true, !strings.HasPrefix(name, "luks-")
		} else if f := strings.Split(strings.TrimPrefix(e.Spec, "/dev/"), "/"); strings.HasPrefix(e.Spec, "/dev/") && len(f) == 2 && !notVolumeGroups[f[0]] {
			rs.dm, rs.lvm = true, true // /dev/VG/LV
		}
	}
	return rs
}

// chainGap is what one kernel's initramfs lacks of the root's path.
type chainGap struct {
	kernel  kernel.Kernel
	modules []string // drivers neither built in nor in the initramfs
	lvm     bool     // the LVM tools are missing
}

// missing lists the gap for a message: modules, then the LVM tools.
func (g chainGap) missing() []string {
	out := append([]string{}, g.modules...)
	if g.lvm {
		out = append(out, "the LVM tools ("+lvmProgram+")")
	}
	return out
}

// rootChainGaps finds, for each installed kernel, what of the root's
// path the initramfs lacks: a module counts only in that kernel's own
// module directory inside the initramfs, or built into it. unread names the
// kernels whose initramfs could not be read.
func rootChainGaps(t *Target) (gaps []chainGap, unread []string, err error) {
	ks, err := kernelsOf(t)
	if err != nil {
		return nil, nil, err
	}
	root, _ := t.root()
	rs := rootStorageOf(t)
	need := append([]driver{}, storageChain...)
	if rs.dm {
		need = append(need, dmDriver)
	}
	for _, k := range ks {
		if k.Image == "" {
			continue // leftover modules without a kernel
		}
		has := func(d driver) bool { return builtIn(k, d.sym, d.module) }
		g := chainGap{kernel: k}
		if k.Initrd != "" {
			inv, err := t.inventory(root, k.Initrd)
			if err != nil {
				unread = append(unread, fmt.Sprintf("kernel %s (%v)", k.Version, err))
				continue
			}
			has = func(d driver) bool { return builtIn(k, d.sym, d.module) || inv.Has(k.Version, d.module) }
			g.lvm = rs.lvm && !inv.Programs[lvmProgram]
		} else {
			g.lvm = rs.lvm
		}
		for _, d := range need {
			if !has(d) {
				g.modules = append(g.modules, d.module)
			}
		}
		if fsd := rootFSDrivers[rs.fsType]; len(fsd) > 0 && !anyDriver(fsd, has) {
			g.modules = append(g.modules, fsd[0].module)
		}
		if len(g.modules) > 0 || g.lvm {
			gaps = append(gaps, g)
		}
	}
	return gaps, unread, nil
}

func anyDriver(ds []driver, has func(driver) bool) bool {
	for _, d := range ds {
		if has(d) {
			return true
		}
	}
	return false
}

func checkRootChain(t *Target) ([]Finding, error) {
	gaps, unread, err := rootChainGaps(t)
	if err != nil {
		return nil, err
	}
	root, _ := t.root()
	lvmByConfig := lvmSetups[initramfsToolOf(root).name].add != nil
	var fs []Finding
	for _, g := range gaps {
		k := g.kernel
		missing := strings.Join(g.missing(), ", ")
		// fix names missing drivers for every tool, the LVM tools only
		// where the tool takes them by configuration.
		f := Finding{Location: Location{Kernel: k.Version}, Fix: chainHint(t, g), Fixable: len(g.modules) > 0 || g.lvm && lvmByConfig}
		if k.Initrd == "" {
			f.Message = fmt.Sprintf("kernel %s has no initramfs and does not build in %s: the root disk cannot be reached on Hyper-V", k.Version, missing)
		} else {
			f.Location.File = "/" + k.Initrd
			f.Message = fmt.Sprintf("the initramfs of kernel %s lacks %s (neither built in nor in it): the root disk never appears on Hyper-V and boot stops", k.Version, missing)
		}
		fs = append(fs, f)
	}
	return unreadable(fs, unread, "the root disk's drivers")
}

// lvmSetup is how an initramfs tool is told to take the LVM tools in: the
// advice, and the change of files that does it (an error where files
// alone cannot).
type lvmSetup struct {
	hint string
	add  func(o *Overlay) error
}

var lvmSetups = map[string]lvmSetup{
	"dracut":          {`add 'add_dracutmodules+=" lvm "' to /etc/dracut.conf.d/` + path.Base(dracutConf), addDracutLVM},
	"initramfs-tools": {"install the lvm2 package, whose initramfs hook adds lvm", addInitramfsToolsLVM},
	"mkinitcpio":      {"add lvm2 to HOOKS=() in /etc/mkinitcpio.conf, before filesystems", addMkinitcpioLVM},
	"mkinitfs":        {"add lvm to features= in /etc/mkinitfs/mkinitfs.conf", addMkinitfsLVM},
}

// initramfsToolsLVMHook is the lvm2 package's initramfs-tools hook, which
// puts lvm in every initramfs built while it is installed.
const initramfsToolsLVMHook = "usr/share/initramfs-tools/hooks/lvm2"

// errNoLVMHook: initramfs-tools takes the LVM tools from a package's
// hook, which a change of files cannot install.
var errNoLVMHook = errors.New("the lvm2 package is not installed, and its initramfs-tools hook is what puts lvm in the initramfs")

func addInitramfsToolsLVM(o *Overlay) error {
	if _, err := o.Root().Lstat(initramfsToolsLVMHook); err != nil {
		return errNoLVMHook
	}
	return nil // the next update-initramfs takes it in
}

var mkinitcpioHooksRE = regexp.MustCompile(`(?m)^HOOKS=\(([^)]*)\)`)

// addMkinitcpioLVM puts the lvm2 hook before filesystems (the order Arch's
// wiki gives), or at the end where there is no filesystems hook.
func addMkinitcpioLVM(o *Overlay) error {
	const name = "etc/mkinitcpio.conf"
	b, err := o.Read(name)
	if err != nil {
		return err
	}
	m := mkinitcpioHooksRE.FindSubmatchIndex(b)
	if m == nil {
		return fmt.Errorf("/%s has no HOOKS=() line to add lvm2 to", name)
	}
	hooks := strings.Fields(string(b[m[2]:m[3]]))
	if contains(hooks, "lvm2") {
		return nil
	}
	at := slices.Index(hooks, "filesystems")
	if at < 0 {
		at = len(hooks)
	}
	hooks = slices.Insert(hooks, at, "lvm2")
	o.Write(name, append(append(append([]byte{}, b[:m[2]]...), strings.Join(hooks, " ")...), b[m[3]:]...))
	return nil
}

var dracutModulesRE = regexp.MustCompile(`(?m)^add_dracutmodules\+="([^"]*)"`)

func addDracutLVM(o *Overlay) error {
	return addDracutWords(o, dracutModulesRE, "add_dracutmodules", []string{"lvm"})
}

func addMkinitfsLVM(o *Overlay) error {
	const conf = "etc/mkinitfs/mkinitfs.conf"
	c, err := o.Read(conf)
	if err != nil {
		return err
	}
	m := mkinitfsFeaturesRE.FindSubmatchIndex(c)
	switch {
	case m == nil:
		o.Write(conf, append(c, `features="lvm"`+"\n"...))
	case !contains(strings.Fields(string(c[m[4]:m[5]])), "lvm"):
		list := strings.TrimSpace(string(c[m[4]:m[5]]) + " lvm")
		o.Write(conf, append(append(append([]byte{}, c[:m[4]]...), list...), c[m[5]:]...))
	}
	return nil
}

// chainHint says how to close one kernel's gap with the guest's tool.
func chainHint(t *Target, g chainGap) string {
	root, _ := t.root()
	tool := initramfsToolOf(root)
	var steps []string
	if len(g.modules) > 0 {
		steps = append(steps, rebuildHint(t, g.kernel, g.modules))
	}
	if g.lvm {
		if s, ok := lvmSetups[tool.name]; ok {
			steps = append(steps, s.hint)
		} else {
			steps = append(steps, "put the LVM tools in the initramfs")
		}
		if len(g.modules) == 0 && tool.rebuild != "" {
			steps = append(steps, "then: "+rebuildCommand(tool, g.kernel))
		}
	}
	return strings.Join(steps, "; ")
}

// repairRootChain names the missing drivers for the guest's initramfs
// tool, as DRV001-DRV003 do, and the LVM tools where the tool takes them
// by configuration; the present initramfs lacks them until rebuilt.
func repairRootChain(t *Target, o *Overlay) error {
	gaps, _, err := rootChainGaps(t)
	if err != nil {
		return err
	}
	var modules []string
	var lvm []chainGap
	for _, g := range gaps {
		modules = append(modules, missingWords(modules, g.modules)...)
		if g.lvm {
			lvm = append(lvm, g)
		}
	}
	if len(modules) > 0 {
		root, err := t.root()
		if err != nil {
			return err
		}
		tool, err := configureDrivers(root, o, modules)
		if err != nil {
			return err
		}
		var versions []string
		for _, g := range gaps {
			if len(g.modules) > 0 {
				versions = append(versions, g.kernel.Version)
			}
		}
		if err := addToKernels(t, o, tool, versions, modules); err != nil {
			return err
		}
	}
	if len(lvm) == 0 {
		return nil
	}
	root, _ := t.root()
	tool := initramfsToolOf(root)
	s, ok := lvmSetups[tool.name]
	if !ok {
		return fmt.Errorf("the root is on LVM and the initramfs lacks the LVM tools: put them in it")
	}
	if err := s.add(o); err != nil {
		return fmt.Errorf("the root is on LVM and the initramfs lacks the LVM tools: %w; %s, then rebuild it", err, s.hint)
	}
	for _, g := range lvm {
		o.Note("the initramfs of kernel %s still lacks the LVM tools until it is rebuilt: boot the image (or chroot into it) and run: %s", g.kernel.Version, rebuildCommand(tool, g.kernel))
	}
	return nil
}

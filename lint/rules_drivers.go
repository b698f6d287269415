package lint

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strings"

	"github.com/vhdprep/vhdprep/initrd"
	"github.com/vhdprep/vhdprep/kernel"
	"github.com/vhdprep/vhdprep/rootfs"
)

// maxInitramfs bounds an initramfs read into memory, on the filesystems
// whose files cannot be read at an offset.
const maxInitramfs = 512 << 20

// inventory reads an initramfs's module inventory, once per check. It
// streams: initrd decompresses segment by segment from the file itself.
func (t *Target) inventory(root rootfs.FS, name string) (*initrd.Inventory, error) {
	if inv, ok := t.initrds[name]; ok {
		return inv, nil
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, size, err := readerAt(f)
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", name, err)
	}
	inv, err := initrd.Modules(r, size)
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", name, err)
	}
	if t.initrds == nil {
		t.initrds = map[string]*initrd.Inventory{}
	}
	t.initrds[name] = inv
	return inv, nil
}

// readerAt gives random access to f: itself where its filesystem allows,
// else its bytes in memory, bounded by maxInitramfs.
func readerAt(f fs.File) (io.ReaderAt, int64, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if r, ok := f.(io.ReaderAt); ok {
		return r, info.Size(), nil
	}
	b, err := io.ReadAll(io.LimitReader(f, maxInitramfs+1))
	if err != nil {
		return nil, 0, err
	}
	if len(b) > maxInitramfs {
		return nil, 0, fmt.Errorf("larger than %d MiB", maxInitramfs>>20)
	}
	return bytes.NewReader(b), int64(len(b)), nil
}

// builtIn tells whether a kernel has module compiled in: CONFIG_<sym>=y in
// its config, or the module listed in modules.builtin.
func builtIn(k kernel.Kernel, sym, module string) bool {
	return k.ConfigValues["CONFIG_"+sym] == "y" || k.HasBuiltin(module)
}

// rebuildHint says how the guest's family adds drivers to kernel k's
// initramfs.
func rebuildHint(t *Target, k kernel.Kernel, modules []string) string {
	root, _ := t.root()
	list := strings.Join(modules, " ")
	if tool := initramfsToolOf(root); tool.add != nil {
		return fmt.Sprintf(tool.addHint, list) + ", then: " + rebuildCommand(tool, k)
	}
	return fmt.Sprintf("rebuild the initramfs of kernel %s with %s in it", k.Version, list)
}

// driverRule: the driver is built into every installed kernel, or in the
// initramfs that kernel boots with.
func driverRule(module, sym, why string) func(*Target) ([]Finding, error) {
	return func(t *Target) ([]Finding, error) {
		ks, err := kernelsOf(t)
		if err != nil {
			return nil, err
		}
		root, _ := t.root()
		var fs []Finding
		var unread []string // kernels whose initramfs cannot be read
		for _, k := range ks {
			if k.Image == "" || builtIn(k, sym, module) {
				continue // leftover modules without a kernel, or built in
			}
			loc := Location{Kernel: k.Version}
			if k.Initrd == "" {
				fs = append(fs, Finding{Message: fmt.Sprintf("kernel %s has no initramfs and %s is not built in: %s", k.Version, module, why), Location: loc,
					Fix: rebuildHint(t, k, []string{module}), Fixable: true})
				continue
			}
			loc.File = "/" + k.Initrd
			inv, err := t.inventory(root, k.Initrd)
			if err != nil {
				unread = append(unread, fmt.Sprintf("kernel %s (%v)", k.Version, err))
				continue
			}
			if !inv.Has(k.Version, module) {
				fs = append(fs, Finding{Message: fmt.Sprintf("%s is neither built into kernel %s nor in its initramfs: %s", module, k.Version, why), Location: loc,
					Fix: rebuildHint(t, k, []string{"hv_vmbus", "hv_storvsc", "hv_netvsc"}), Fixable: true})
			}
		}
		return unreadable(fs, unread, module)
	}
}

// unreadable reports the kernels whose initramfs could not be read without
// hiding what the others showed: alone they make the rule a skip; beside
// findings of other kernels, a warning each.
func unreadable(fs []Finding, unread []string, module string) ([]Finding, error) {
	if len(unread) == 0 {
		return fs, nil
	}
	if len(fs) == 0 {
		return nil, Skip("cannot read the initramfs of %s; whether it holds %s is unknown", strings.Join(unread, ", "), module)
	}
	for _, k := range unread {
		fs = append(fs, Finding{Severity: Warning, Message: fmt.Sprintf("cannot read the initramfs of %s; whether it holds %s is unknown", k, module)})
	}
	return fs, nil
}

var (
	checkVMBus   = driverRule("hv_vmbus", "HYPERV", "without VMBus the kernel sees no Hyper-V device")
	checkStorVSC = driverRule("hv_storvsc", "HYPERV_STORAGE", "the root disk never appears and boot hangs")
	checkNetVSC  = driverRule("hv_netvsc", "HYPERV_NET", "the VM has no network in early boot")
)

// checkHyperVExtras: keyboard and HID drivers present at all, nvme in the
// initramfs for NVMe VM sizes.
func checkHyperVExtras(t *Target) ([]Finding, error) {
	ks, err := kernelsOf(t)
	if err != nil {
		return nil, err
	}
	root, _ := t.root()
	var fs []Finding
	for _, k := range ks {
		if k.Image == "" {
			continue
		}
		for _, m := range []struct{ module, sym, dir string }{{"hyperv_keyboard", "HYPERV_KEYBOARD", "drivers/input/serio"}, {"hid_hyperv", "HID_HYPERV_MOUSE", "drivers/hid"}} {
			if !kernelHas(root, k, m.sym, m.module, m.dir) {
				// Only another kernel brings the driver: fix cannot.
				fs = append(fs, Finding{Message: fmt.Sprintf("kernel %s has no %s", k.Version, m.module), Location: Location{Kernel: k.Version},
					Fix: fmt.Sprintf("use a kernel built with CONFIG_%s=y or =m", m.sym)})
			}
		}
		if k.Initrd != "" && !builtIn(k, "BLK_DEV_NVME", "nvme") {
			if inv, err := t.inventory(root, k.Initrd); err == nil && !inv.Has(k.Version, "nvme") {
				fs = append(fs, Finding{Message: fmt.Sprintf("the initramfs of kernel %s has no nvme: NVMe VM sizes (Gen2) cannot boot", k.Version), Location: Location{Kernel: k.Version, File: "/" + k.Initrd},
					Fix: rebuildHint(t, k, []string{"nvme"}), Fixable: true})
			}
		}
	}
	return fs, nil
}

// initramfsTool is a way a distribution builds its initramfs: where to name
// extra drivers for the next build, and the command that builds it.
type initramfsTool struct {
	name    string
	detect  []string // any of these paths in the guest
	rebuild string   // the command, with %[1]s for the kernel version
	create  string   // the command for a kernel without an initramfs, where it differs
	add     func(o *Overlay, modules []string) error
	addHint string // how a person names drivers, with %[1]s for them
}

var initramfsTools = []initramfsTool{
	{"dracut", []string{"etc/dracut.conf.d", "usr/bin/dracut", "usr/sbin/dracut"}, "dracut -f --kver %[1]s", "", addDracutDrivers,
		`add 'add_drivers+=" %[1]s "' to /` + dracutConf},
	{"initramfs-tools", []string{"etc/initramfs-tools"}, "update-initramfs -u -k %[1]s", "update-initramfs -c -k %[1]s", addInitramfsToolsModules,
		"add %[1]s to /etc/initramfs-tools/modules (one a line)"},
	{"mkinitcpio", []string{"etc/mkinitcpio.conf"}, "mkinitcpio -P", "", addMkinitcpioModules,
		"add %[1]s to MODULES=() in /etc/mkinitcpio.conf"},
	{"mkinitfs", []string{"etc/mkinitfs/mkinitfs.conf"}, "mkinitfs %[1]s", "", addMkinitfsFeature,
		"add a feature listing %[1]s in /etc/mkinitfs/features.d and to features= in /etc/mkinitfs/mkinitfs.conf"},
}

// initramfsToolOf is the first of initramfsTools the guest has; the zero
// tool when it has none.
func initramfsToolOf(root rootfs.FS) initramfsTool {
	for _, tool := range initramfsTools {
		if existsAny(root, tool.detect) {
			return tool
		}
	}
	return initramfsTool{}
}

// repairInitramfsDrivers names the drivers a rule wants for the guest's
// initramfs tool, so the next build has them, and adds them (with what
// they need) to the initramfs each lacking kernel boots with now.
func repairInitramfsDrivers(check func(*Target) ([]Finding, error), modules ...string) func(*Target, *Overlay) error {
	return func(t *Target, o *Overlay) error {
		root, err := t.root()
		if err != nil {
			return err
		}
		fs, err := check(t)
		if err != nil {
			return err
		}
		// Only the drivers a finding lacks: another finding of the rule
		// (DRV006's keyboard, which no initramfs gives) is not this repair's.
		var lacking []string // kernel versions
		for _, f := range fs {
			if k := f.Location.Kernel; k != "" && mentionsAny(f.Message, modules) && !contains(lacking, k) {
				lacking = append(lacking, k)
			}
		}
		if len(lacking) == 0 {
			return nil
		}
		tool, err := configureDrivers(root, o, modules)
		if err != nil {
			return err
		}
		return addToKernels(t, o, tool, lacking, modules)
	}
}

// configureDrivers names modules in the configuration of the guest's
// initramfs tool, so that builds in the guest keep them.
func configureDrivers(root rootfs.FS, o *Overlay, modules []string) (initramfsTool, error) {
	tool := initramfsToolOf(root)
	if tool.add == nil {
		return tool, fmt.Errorf("no known initramfs tool (dracut, initramfs-tools, mkinitcpio, mkinitfs) in the image; add %s to its initramfs by hand", strings.Join(modules, ", "))
	}
	return tool, tool.add(o, modules)
}

// addToKernels adds modules to the initramfs of each of the kernels
// (versions), saying what it added, and why not where it could not.
func addToKernels(t *Target, o *Overlay, tool initramfsTool, versions, modules []string) error {
	ks, err := kernelsOf(t)
	if err != nil {
		return err
	}
	for _, k := range ks {
		if !contains(versions, k.Version) {
			continue
		}
		rebuild := rebuildCommand(tool, k)
		if k.Initrd == "" {
			o.Note("kernel %s has no initramfs to add %s to: boot the image (or chroot into it) and run: %s", k.Version, strings.Join(modules, ", "), rebuild)
			continue
		}
		added, err := addToInitramfs(t, o, k, modules)
		var absent moduleAbsent
		switch {
		case errors.As(err, &absent):
			o.Note("the initramfs of kernel %s is left as it is: %v; install the modules (or a kernel built with them), boot the image (or chroot into it) and run: %s", k.Version, absent, rebuild)
		case errors.Is(err, initrd.ErrRecompress):
			o.Note("the initramfs of kernel %s still lacks %s (%v): boot the image (or chroot into it) and run: %s", k.Version, strings.Join(modules, ", "), err, rebuild)
		case err != nil:
			return err
		case len(added) > 0:
			o.Note("added to /%s: %s, copied from /%s with the module indexes depmod would write; the configuration above keeps them when the guest rebuilds it (%s)", k.Initrd, strings.Join(added, ", "), k.ModulesDir, rebuild)
		}
	}
	return nil
}

// rebuildCommand is the tool's command that builds kernel k's initramfs
// again, or for the first time where k has none, with k's version filled
// in where the command takes one.
func rebuildCommand(tool initramfsTool, k kernel.Kernel) string {
	format := tool.rebuild
	if k.Initrd == "" && tool.create != "" {
		format = tool.create
	}
	if !strings.Contains(format, "%") {
		return format
	}
	return fmt.Sprintf(format, k.Version)
}

func mentionsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

func existsAny(root rootfs.FS, paths []string) bool {
	for _, p := range paths {
		if exists(root, p) {
			return true
		}
	}
	return false
}

// missingWords returns the modules not among have.
func missingWords(have []string, modules []string) []string {
	var out []string
	for _, m := range modules {
		if !contains(have, m) {
			out = append(out, m)
		}
	}
	return out
}

const dracutConf = "etc/dracut.conf.d/90-vhdprep-azure.conf"

// dracutConfHeader opens the drop-in vhdprep writes.
const dracutConfHeader = "# Added by vhdprep: what Azure needs in the initramfs (DRV001-DRV003, DRV006, DRV008).\n"

var dracutDriversRE = regexp.MustCompile(`(?m)^add_drivers\+="([^"]*)"`)

func addDracutDrivers(o *Overlay, modules []string) error {
	return addDracutWords(o, dracutDriversRE, "add_drivers", modules)
}

// addDracutWords adds words to a `key+=" ... "` line of vhdprep's dracut
// drop-in, keeping its other lines.
func addDracutWords(o *Overlay, re *regexp.Regexp, key string, words []string) error {
	b, _ := o.Read(dracutConf)
	if len(b) == 0 {
		b = []byte(dracutConfHeader)
	}
	m := re.FindSubmatchIndex(b)
	var have []string
	if m != nil {
		have = strings.Fields(string(b[m[2]:m[3]]))
	}
	add := missingWords(have, words)
	if len(add) == 0 {
		return nil
	}
	line := key + `+=" ` + strings.Join(append(have, add...), " ") + ` "`
	if m == nil {
		o.Write(dracutConf, append(append([]byte{}, b...), line+"\n"...))
		return nil
	}
	o.Write(dracutConf, append(append(append([]byte{}, b[:m[0]]...), line...), b[m[1]:]...))
	return nil
}

func addInitramfsToolsModules(o *Overlay, modules []string) error {
	const name = "etc/initramfs-tools/modules"
	b, _ := o.Read(name)
	if out := withModuleLines(b, modules); len(out) != len(b) {
		o.Write(name, out)
	}
	return nil
}

// withModuleLines is a file of one module a line (initramfs-tools' modules,
// in the guest and in its initramfs) with the modules it lacks added at
// its end; b itself when it lacks none.
func withModuleLines(b []byte, modules []string) []byte {
	var have []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			have = append(have, f[0])
		}
	}
	add := missingWords(have, modules)
	if len(add) == 0 {
		return b
	}
	out := bytes.Clone(b)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, strings.Join(add, "\n")+"\n"...)
}

var mkinitcpioModulesRE = regexp.MustCompile(`(?m)^(MODULES=\()([^)]*)(\))`)

func addMkinitcpioModules(o *Overlay, modules []string) error {
	const name = "etc/mkinitcpio.conf"
	b, err := o.Read(name)
	if err != nil {
		return err
	}
	m := mkinitcpioModulesRE.FindSubmatchIndex(b)
	if m == nil {
		o.Write(name, append(b, []byte("MODULES=("+strings.Join(modules, " ")+")\n")...))
		return nil
	}
	have := strings.Fields(string(b[m[4]:m[5]]))
	add := missingWords(have, modules)
	if len(add) == 0 {
		return nil
	}
	list := strings.Join(append(have, add...), " ")
	o.Write(name, append(append(append([]byte{}, b[:m[4]]...), list...), b[m[5]:]...))
	return nil
}

// Alpine's mkinitfs takes modules from the features its config names; the
// feature file lists module paths under /lib/modules/VERSION.
const mkinitfsFeature = "vhdprep-azure"

var (
	mkinitfsModulePaths = map[string]string{
		"hv_vmbus":   "kernel/drivers/hv/hv_vmbus.ko*",
		"hv_storvsc": "kernel/drivers/scsi/hv_storvsc.ko*",
		"hv_netvsc":  "kernel/drivers/net/hyperv/hv_netvsc.ko*",
		"nvme":       "kernel/drivers/nvme/host/nvme.ko*",
		"scsi_mod":   "kernel/drivers/scsi/scsi_mod.ko*",
		"sd_mod":     "kernel/drivers/scsi/sd_mod.ko*",
		"dm_mod":     "kernel/drivers/md/dm-mod.ko*",
		"ext4":       "kernel/fs/ext4/ext4.ko*",
		"xfs":        "kernel/fs/xfs/xfs.ko*",
		"btrfs":      "kernel/fs/btrfs/btrfs.ko*",
	}
	mkinitfsFeaturesRE = regexp.MustCompile(`(?m)^(features=")([^"]*)(")`)
)

func addMkinitfsFeature(o *Overlay, modules []string) error {
	const conf = "etc/mkinitfs/mkinitfs.conf"
	file := "etc/mkinitfs/features.d/" + mkinitfsFeature + ".modules"
	b, _ := o.Read(file)
	have := strings.Fields(string(b))
	var paths []string
	for _, m := range modules {
		paths = append(paths, mkinitfsModulePaths[m])
	}
	if add := missingWords(have, paths); len(add) > 0 {
		o.Write(file, []byte(strings.Join(append(have, add...), "\n")+"\n"))
	}
	c, err := o.Read(conf)
	if err != nil {
		return err
	}
	m := mkinitfsFeaturesRE.FindSubmatchIndex(c)
	switch {
	case m == nil:
		o.Write(conf, append(c, []byte(`features="`+mkinitfsFeature+"\"\n")...))
	case !contains(strings.Fields(string(c[m[4]:m[5]])), mkinitfsFeature):
		list := strings.TrimSpace(string(c[m[4]:m[5]]) + " " + mkinitfsFeature)
		o.Write(conf, append(append(append([]byte{}, c[:m[4]]...), list...), c[m[5]:]...))
	}
	return nil
}

package lint

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
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

// rebuildHint says how the guest's family adds drivers to its initramfs.
func rebuildHint(t *Target, version string, modules []string) string {
	root, _ := t.root()
	list := strings.Join(modules, " ")
	if tool := initramfsToolOf(root); tool.add != nil {
		return fmt.Sprintf(tool.addHint, list) + ", then: " + rebuildCommand(tool.rebuild, version)
	}
	return fmt.Sprintf("rebuild the initramfs of kernel %s with %s in it", version, list)
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
					Fix: rebuildHint(t, k.Version, []string{module}), Fixable: true})
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
					Fix: rebuildHint(t, k.Version, []string{"hv_vmbus", "hv_storvsc", "hv_netvsc"}), Fixable: true})
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
					Fix: rebuildHint(t, k.Version, []string{"nvme"}), Fixable: true})
			}
		}
	}
	return fs, nil
}

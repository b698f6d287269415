package lint

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/vhdprep/vhdprep/kernel"
	"github.com/vhdprep/vhdprep/rootfs"
)

// DRV004 and DRV005: the filesystem drivers provisioning and UEFI boot
// need (udf, vfat), built into the kernel and not disabled in modprobe.d.

// modprobeDirs hold modprobe.d configuration.
var modprobeDirs = []string{"etc/modprobe.d", "usr/lib/modprobe.d", "lib/modprobe.d", "run/modprobe.d"}

// moduleDisabled finds a modprobe.d line that stops module from loading.
func moduleDisabled(root rootfs.FS, module string) (Location, bool) {
	for _, dir := range modprobeDirs {
		ents, _ := root.ReadDir(dir)
		for _, e := range ents {
			p := dir + "/" + e.Name()
			b, _ := readFile(root, p)
			for i, line := range strings.Split(string(b), "\n") {
				if disablesModule(line, module) {
					return Location{File: "/" + p, Line: i + 1}, true
				}
			}
		}
	}
	return Location{}, false
}

// disablesModule tells whether a modprobe.d line stops module from loading:
// "blacklist m", or "install m /bin/true" (or /bin/false).
func disablesModule(line, module string) bool {
	f := strings.Fields(line)
	return len(f) >= 2 && f[1] == module && (f[0] == "blacklist" ||
		(f[0] == "install" && len(f) >= 3 && (strings.HasSuffix(f[2], "/true") || strings.HasSuffix(f[2], "/false"))))
}

// kernelHas tells whether a kernel has a driver built in or as a module:
// CONFIG_<sym>=y or =m, modules.builtin, or the .ko file, whose name may
// spell the module's underscores as dashes (hyperv-keyboard.ko).
func kernelHas(root rootfs.FS, k kernel.Kernel, sym, module, koDir string) bool {
	if v := k.ConfigValues["CONFIG_"+sym]; v == "y" || v == "m" || builtIn(k, sym, module) {
		return true
	}
	if k.ModulesDir == "" {
		return false
	}
	ents, _ := root.ReadDir(k.ModulesDir + "/kernel/" + koDir)
	for _, e := range ents {
		if strings.HasPrefix(strings.ReplaceAll(e.Name(), "-", "_"), module+".ko") {
			return true
		}
	}
	return false
}

func fsDriverRule(sym, module, koDir, why string) func(*Target) ([]Finding, error) {
	return func(t *Target) ([]Finding, error) {
		root, err := t.root()
		if err != nil {
			return nil, err
		}
		var fs []Finding
		if loc, off := moduleDisabled(root, module); off {
			fs = append(fs, Finding{Message: fmt.Sprintf("modprobe.d disables %s: %s", module, why), Location: loc, Fixable: true, Fix: "remove the line"})
		}
		kernels, err := kernel.InstalledKernels(root)
		if err != nil {
			return nil, err
		}
		if len(kernels) == 0 {
			if len(fs) > 0 {
				return fs, nil
			}
			return nil, Skip("no installed kernel found")
		}
		for _, k := range kernels {
			if k.Config == "" && k.ModulesDir == "" {
				continue // an image without modules or config: nothing to tell
			}
			if !kernelHas(root, k, sym, module, koDir) {
				fs = append(fs, Finding{Message: fmt.Sprintf("kernel %s has no %s support (CONFIG_%s, %s.ko): %s", k.Version, module, sym, module, why), Location: Location{Kernel: k.Version}, Fix: "use a kernel with CONFIG_" + sym + "=y or =m"})
			}
		}
		return fs, nil
	}
}

var (
	checkUDF  = fsDriverRule("UDF_FS", "udf", "fs/udf", "the provisioning media is UDF")
	checkVFAT = fsDriverRule("VFAT_FS", "vfat", "fs/fat", "provisioning and UEFI boot need vfat")
)

// repairModule comments out the modprobe.d lines that disable a module; a
// kernel without the driver is not something fix can change.
func repairModule(rule, module string) func(*Target, *Overlay) error {
	return func(t *Target, o *Overlay) error {
		root, err := t.root()
		if err != nil {
			return err
		}
		for _, dir := range modprobeDirs {
			ents, _ := root.ReadDir(dir)
			for _, e := range ents {
				name := dir + "/" + e.Name()
				b, _ := o.Read(name)
				if !bytes.Contains(b, []byte(module)) {
					continue
				}
				if err := commentLines(o, name, rule, func(l string) bool { return disablesModule(l, module) }); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

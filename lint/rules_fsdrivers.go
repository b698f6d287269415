package lint

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/vhdprep/vhdprep/kernel"
	"github.com/vhdprep/vhdprep/rootfs"
)

// DRV004 and DRV005: the filesystem drivers provisioning and UEFI boot
// need (udf, vfat), built into the kernel and not disabled in modprobe.d.

// modprobeDirs hold modprobe.d configuration, in kmod's order of
// precedence: a file in an earlier one hides the same name in later ones.
var modprobeDirs = []string{"etc/modprobe.d", "run/modprobe.d", "usr/local/lib/modprobe.d", "usr/lib/modprobe.d", "lib/modprobe.d"}

// modprobeLine is a logical line of modprobe.d: continued lines joined,
// where it starts.
type modprobeLine struct {
	fields []string
	at     Location
}

// modprobeLines reads modprobe.d as kmod does (libkmod-config.c): the
// *.conf files of modprobeDirs, a name hidden by the same name in a
// directory before, all in name order; lines continued with a backslash
// joined, then a line whose first word starts with '#' skipped.
func modprobeLines(root rootfs.FS) []modprobeLine {
	files := map[string]string{} // name -> path, the first directory's
	var names []string
	for _, dir := range modprobeDirs {
		ents, _ := root.ReadDir(dir)
		for _, e := range ents {
			if n := e.Name(); strings.HasSuffix(n, ".conf") && !e.IsDir() && files[n] == "" {
				files[n] = dir + "/" + n
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	var out []modprobeLine
	for _, n := range names {
		b, _ := readFile(root, files[n])
		lines := strings.Split(string(b), "\n")
		for i := 0; i < len(lines); i++ {
			start, text := i, lines[i]
			for strings.HasSuffix(text, "\\") && i+1 < len(lines) {
				i++
				text = text[:len(text)-1] + lines[i]
			}
			if f := strings.Fields(text); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
				out = append(out, modprobeLine{fields: f, at: Location{File: "/" + files[n], Line: start + 1}})
			}
		}
	}
	return out
}

// moduleDisabled finds the modprobe.d lines that stop module from loading.
func moduleDisabled(root rootfs.FS, module string) []Location {
	var out []Location
	for _, l := range modprobeLines(root) {
		if disablesModule(l.fields, module) {
			out = append(out, l.at)
		}
	}
	return out
}

// disablesModule tells whether a modprobe.d line stops module from
// loading: "blacklist m", or "install m" with a command that does nothing
// (true, false, :, exit), kmod matching names with '-' as '_'.
func disablesModule(f []string, module string) bool {
	if len(f) < 2 || strings.ReplaceAll(f[1], "-", "_") != strings.ReplaceAll(module, "-", "_") {
		return false
	}
	if f[0] == "blacklist" {
		return true
	}
	if f[0] != "install" || len(f) < 3 {
		return false
	}
	switch path.Base(f[2]) {
	case "true", "false", ":", "exit":
		return true
	}
	return false
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
		for _, loc := range moduleDisabled(root, module) {
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

// repairModule comments out the modprobe.d lines that disable a module
// (the first line of a continued one: kmod joins a comment's continuation
// into it); a kernel without the driver is not something fix can change.
func repairModule(rule, module string) func(*Target, *Overlay) error {
	return func(t *Target, o *Overlay) error {
		root, err := t.root()
		if err != nil {
			return err
		}
		for _, at := range moduleDisabled(root, module) {
			err := editLine(o, strings.TrimPrefix(at.File, "/"), at.Line, func(l string) (string, error) {
				return disabledBy(rule, l), nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
}

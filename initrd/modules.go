package initrd

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// Module file suffixes: uncompressed and as kmod compresses them.
var moduleSuffixes = [...]string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"}

// The module index files, in lib/modules/VERSION (usr/lib on merged-/usr
// systems).
const (
	modulesDep     = "modules.dep"
	modulesBuiltin = "modules.builtin"
)

// maxBuiltinLine bounds a modules.builtin line (a module's path).
const maxBuiltinLine = 4096

// Inventory is what an initramfs holds for loading drivers and
// assembling the root.
type Inventory struct {
	Segments []Segment
	// Kernels is what each kernel's module directory inside holds, by
	// version: a module counts only for the kernel whose directory it is in.
	Kernels map[string]*KernelModules
	// Programs are the executables in bin and sbin (usr/ or not), by base
	// name: lvm, for one, which an LVM root needs.
	Programs map[string]bool
}

// KernelModules is what lib/modules/VERSION (usr/lib on merged-/usr
// systems) holds inside an initramfs.
type KernelModules struct {
	Files         map[string]string // module name (dashes as underscores) -> path of its file
	HasModulesDep bool              // modules.dep is there, so modprobe can resolve dependencies
	Builtin       map[string]bool   // modules built into the kernel, from its modules.builtin
}

// Modules walks the initramfs in r and lists its segments, its kernel
// modules (.ko, .ko.xz, .ko.zst, .ko.gz) and module index per kernel
// version, and its programs.
func Modules(r io.ReaderAt, size int64) (*Inventory, error) {
	return modules(r, size, budget(size))
}

func modules(r io.ReaderAt, size, budget int64) (*Inventory, error) {
	inv := &Inventory{Kernels: map[string]*KernelModules{}, Programs: map[string]bool{}}
	w := &walker{r: r, size: size, budget: budget}
	w.onSegment = func(s Segment) { inv.Segments = append(inv.Segments, s) }
	w.fn = func(_ Segment, e Entry, content io.Reader) error {
		if prog, ok := programName(e.Name); ok && (e.Mode.IsRegular() || e.Mode&fs.ModeSymlink != 0) {
			inv.Programs[prog] = true
			return nil
		}
		if !e.Mode.IsRegular() {
			return nil
		}
		version, rest, ok := moduleDirPath(e.Name)
		if !ok {
			return nil
		}
		km := inv.Kernels[version]
		if km == nil {
			km = &KernelModules{Files: map[string]string{}, Builtin: map[string]bool{}}
			inv.Kernels[version] = km
		}
		if name, ok := moduleName(rest); ok {
			km.Files[name] = e.Name
			return nil
		}
		switch rest {
		case modulesDep:
			km.HasModulesDep = true
		case modulesBuiltin:
			return readBuiltin(content, e.Name, km.Builtin)
		}
		return nil
	}
	if err := w.run(); err != nil {
		return nil, err
	}
	return inv, nil
}

// Has tells whether module (dashes or underscores) is in the initramfs
// for the kernel of that version, as a file in its module directory or
// built in by its modules.builtin there.
func (inv *Inventory) Has(version, module string) bool {
	km := inv.Kernels[version]
	if km == nil {
		return false
	}
	module = foldModule(module)
	_, ok := km.Files[module]
	return ok || km.Builtin[module]
}

// programDirs are where an initramfs keeps executables.
var programDirs = [...]string{"bin/", "sbin/", "usr/bin/", "usr/sbin/"}

// programName is the base name of p when p is directly in one of
// programDirs.
func programName(p string) (string, bool) {
	for _, d := range programDirs {
		if name, ok := strings.CutPrefix(p, d); ok && name != "" && !strings.Contains(name, "/") {
			return name, true
		}
	}
	return "", false
}

// moduleName is the module a file holds, by its name.
func moduleName(p string) (string, bool) {
	base := path.Base(p)
	for _, suf := range moduleSuffixes {
		if name, ok := strings.CutSuffix(base, suf); ok && name != "" {
			return foldModule(name), true
		}
	}
	return "", false
}

// foldModule spells a module name as the kernel does: modprobe treats
// dashes and underscores alike.
func foldModule(name string) string { return strings.ReplaceAll(name, "-", "_") }

// moduleDirPath splits p, a path under lib/modules/VERSION/ or
// usr/lib/modules/VERSION/, into the version and the rest.
func moduleDirPath(p string) (version, rest string, ok bool) {
	p = strings.TrimPrefix(p, "usr/")
	p, ok = strings.CutPrefix(p, "lib/modules/")
	if !ok {
		return "", "", false
	}
	version, rest, ok = strings.Cut(p, "/")
	return version, rest, ok && version != "" && rest != ""
}

// readBuiltin adds the modules a modules.builtin lists (one path per line,
// kernel/drivers/hv/hv_vmbus.ko).
func readBuiltin(r io.Reader, name string, into map[string]bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxBuiltinLine)
	for sc.Scan() {
		if m, ok := moduleName(strings.TrimSpace(sc.Text())); ok {
			into[m] = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("initrd: %s: %w", name, err)
	}
	return nil
}

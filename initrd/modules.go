package initrd

import (
	"bufio"
	"fmt"
	"io"
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

// Inventory is what an initramfs holds for loading drivers.
type Inventory struct {
	Segments      []Segment
	Modules       map[string]string // module name (dashes as underscores) -> path of its file
	HasModulesDep bool              // a lib/modules/*/modules.dep is there, so modprobe can resolve dependencies
	Builtin       map[string]bool   // modules built into the kernel, from lib/modules/*/modules.builtin inside
}

// Modules walks the initramfs in r and lists its segments, kernel modules
// (.ko, .ko.xz, .ko.zst, .ko.gz) and module index.
func Modules(r io.ReaderAt, size int64) (*Inventory, error) {
	return modules(r, size, MaxDecompressed)
}

func modules(r io.ReaderAt, size, budget int64) (*Inventory, error) {
	inv := &Inventory{Modules: map[string]string{}, Builtin: map[string]bool{}}
	w := &walker{r: r, size: size, budget: budget}
	w.onSegment = func(s Segment) { inv.Segments = append(inv.Segments, s) }
	w.fn = func(_ Segment, e Entry, content io.Reader) error {
		if !e.Mode.IsRegular() {
			return nil
		}
		if name, ok := moduleName(e.Name); ok {
			inv.Modules[name] = e.Name
			return nil
		}
		switch indexFile(e.Name) {
		case modulesDep:
			inv.HasModulesDep = true
		case modulesBuiltin:
			return readBuiltin(content, e.Name, inv.Builtin)
		}
		return nil
	}
	if err := w.run(); err != nil {
		return nil, err
	}
	return inv, nil
}

// Has tells whether module (dashes or underscores) is in the initramfs or
// built into its kernel.
func (inv *Inventory) Has(module string) bool {
	module = foldModule(module)
	_, ok := inv.Modules[module]
	return ok || inv.Builtin[module]
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

// indexFile is the base name of p when p is lib/modules/VERSION/BASE or
// usr/lib/modules/VERSION/BASE, else "".
func indexFile(p string) string {
	p = strings.TrimPrefix(p, "usr/")
	rest, ok := strings.CutPrefix(p, "lib/modules/")
	if !ok {
		return ""
	}
	version, base, ok := strings.Cut(rest, "/")
	if !ok || version == "" || strings.Contains(base, "/") {
		return ""
	}
	return base
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

package lint

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/vhdprep/vhdprep/initrd"
	"github.com/vhdprep/vhdprep/kernel"
	"github.com/vhdprep/vhdprep/kmod"
)

// Adding drivers to an initramfs offline. The kernel unpacks an initramfs
// archive by archive, later files replacing earlier ones, so the modules
// a rule wants (and every module they need) can be added to the last
// archive without rebuilding it in the guest: copied byte for byte from
// the image's own module tree (signatures intact), with the index files
// depmod would write for the old and new modules together, and the way
// the initramfs's own tool loads drivers early.

// The module files whose initramfs copies the added ones replace.
var depmodFiles = []string{kmod.FileDep, kmod.FileDepBin, kmod.FileAlias, kmod.FileAliasBin, kmod.FileSoftdep,
	kmod.FileSymbols, kmod.FileSymbolsBin, kmod.FileDevname, kmod.FileWeakdep, kmod.FileOrder}

// How each initramfs tool is told to load drivers before udev: the
// modules initramfs-tools' init loads first, one a line; a command-line
// drop-in of dracut's; the MODULES its init modprobes in mkinitcpio's
// /config, which it sources.
const (
	initramfsToolsModules = "conf/modules"
	dracutPreloadConf     = "etc/cmdline.d/90-vhdprep-azure.conf"
	mkinitcpioConfig      = "config"
)

var mkinitcpioModulesLine = regexp.MustCompile(`(?m)^MODULES="([^"]*)"$`)

// initramfsMarks are files only one tool's initramfs holds: initramfs-tools'
// configuration; mkinitcpio's init library; dracut's shell library, which
// every dracut initramfs has (its usr/lib/dracut directory only some
// distributions keep).
var initramfsMarks = map[string]string{
	"conf/initramfs.conf":    "initramfs-tools",
	"init_functions":         "mkinitcpio",
	"usr/lib/dracut-lib.sh":  "dracut",
	"lib/dracut-lib.sh":      "dracut",
	"usr/lib/dracut":         "dracut",
	"usr/bin/dracut-cmdline": "dracut",
}

// moduleAbsent says the image has no file for a module its kernel needs.
type moduleAbsent string

func (e moduleAbsent) Error() string { return string(e) }

// inArchive is what the initramfs holds that adding to it must know.
type inArchive struct {
	modDir   string                  // where its modules for the kernel are: lib/modules/V or usr/lib/modules/V
	modules  map[string]*kmod.Module // by name
	order    []byte                  // modules.order
	preload  map[string][]byte       // the files preloadFile edits, as they are
	dirs     map[string]bool         // directories
	links    map[string]bool         // symbolic links
	tool     string                  // "initramfs-tools", "dracut", "mkinitcpio" or ""
	modTime  uint32                  // the newest entry's, which added entries take
	builtins map[string]bool         // the initramfs's modules.builtin
}

// readArchive walks an initramfs for what adding modules of version to it
// needs, reading each of its modules for that version.
func readArchive(b []byte, version string) (*inArchive, error) {
	a := &inArchive{modules: map[string]*kmod.Module{}, preload: map[string][]byte{}, dirs: map[string]bool{}, links: map[string]bool{}, builtins: map[string]bool{}}
	var modDirs []string
	err := initrd.Walk(bytes.NewReader(b), int64(len(b)), func(_ initrd.Segment, e initrd.Entry, content io.Reader) error {
		a.modTime = max(a.modTime, e.ModTime)
		switch {
		case e.Mode.IsDir():
			a.dirs[e.Name] = true
			if path.Base(e.Name) == version && path.Base(path.Dir(e.Name)) == "modules" {
				modDirs = append(modDirs, e.Name)
			}
		case e.Mode&fs.ModeSymlink != 0:
			a.links[e.Name] = true
		}
		if t, ok := initramfsMarks[e.Name]; ok {
			a.tool = t
		}
		if !e.Mode.IsRegular() {
			return nil
		}
		dir, rel, ok := cutModuleDir(e.Name, version)
		if !ok {
			if e.Name == initramfsToolsModules || e.Name == dracutPreloadConf || e.Name == mkinitcpioConfig {
				a.preload[e.Name], _ = io.ReadAll(content)
			}
			return nil
		}
		a.modDir = dir
		switch rel {
		case kmod.FileOrder:
			a.order, _ = io.ReadAll(content)
			return nil
		case kmod.FileBuiltin:
			text, _ := io.ReadAll(io.LimitReader(content, 1<<20))
			for _, l := range strings.Fields(string(text)) {
				if name, ok := kmod.NameOf(l); ok {
					a.builtins[name] = true
				}
			}
			return nil
		}
		if _, ok := kmod.NameOf(rel); !ok {
			return nil
		}
		m, err := kmod.Read(rel, content)
		if err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
		a.modules[m.Name] = m
		return nil
	})
	if err != nil {
		return nil, err
	}
	if a.modDir == "" && len(modDirs) > 0 {
		a.modDir = modDirs[0]
	}
	if a.modDir == "" {
		// No modules yet: where the archive's lib leads.
		a.modDir = "lib/modules/" + version
		if a.links["lib"] {
			a.modDir = "usr/lib/modules/" + version
		}
	}
	return a, nil
}

// cutModuleDir splits p, a path under (usr/)lib/modules/version/, into
// that directory and the rest.
func cutModuleDir(p, version string) (dir, rel string, ok bool) {
	for _, d := range []string{"usr/lib/modules/" + version, "lib/modules/" + version} {
		if rel, ok := strings.CutPrefix(p, d+"/"); ok {
			return d, rel, true
		}
	}
	return "", "", false
}

// imageModules maps each module of the image's modules directory to its
// path there; a module in updates/ or extra/ wins over the kernel's own,
// as depmod's default search order has it.
func imageModules(t *Target, modulesDir string) (map[string]string, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	mods := map[string]string{}
	err = fs.WalkDir(root, modulesDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name, ok := kmod.NameOf(p)
		if !ok {
			return nil
		}
		rel := strings.TrimPrefix(p, modulesDir+"/")
		if old, dup := mods[name]; !dup || strings.HasPrefix(old, "kernel/") {
			mods[name] = rel
		}
		return nil
	})
	return mods, err
}

// addToInitramfs adds modules (names, underscores or dashes) and every
// module they need to the initramfs of kernel k as the overlay holds it,
// and has the initramfs load them early. It returns the modules added,
// none when the initramfs already has them all, and a moduleAbsent error
// when the image lacks one: then nothing is changed.
func addToInitramfs(t *Target, o *Overlay, k kernel.Kernel, modules []string) ([]string, error) {
	if k.ModulesDir == "" {
		return nil, moduleAbsent(fmt.Sprintf("kernel %s has no modules directory", k.Version))
	}
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	if info, err := root.Lstat(k.Initrd); err != nil || !info.Mode().IsRegular() {
		return nil, fmt.Errorf("/%s is not a regular file", k.Initrd)
	}
	cur, err := o.Read(k.Initrd)
	if err != nil {
		return nil, err
	}
	version := path.Base(k.ModulesDir)
	a, err := readArchive(cur, version)
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", k.Initrd, err)
	}
	have := func(name string) bool { return a.modules[name] != nil || a.builtins[name] || k.HasBuiltin(name) }

	var wanted []string
	for _, m := range modules {
		if m = strings.ReplaceAll(m, "-", "_"); !have(m) && !slices.Contains(wanted, m) {
			wanted = append(wanted, m)
		}
	}
	if len(wanted) == 0 {
		return nil, nil
	}
	paths, err := imageModules(t, k.ModulesDir)
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", k.ModulesDir, err)
	}
	var added []*kmod.Module
	data := map[string][]byte{}
	queue := slices.Clone(wanted)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if have(name) || data[name] != nil {
			continue
		}
		rel, ok := paths[name]
		if !ok {
			msg := fmt.Sprintf("%s is neither built into kernel %s nor in /%s", name, k.Version, k.ModulesDir)
			if !slices.Contains(wanted, name) {
				msg += ", and the modules added need it"
			}
			return nil, moduleAbsent(msg)
		}
		b, err := root.ReadFile(k.ModulesDir + "/" + rel)
		if err != nil {
			return nil, err
		}
		m, err := kmod.Read(rel, bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("/%s/%w", k.ModulesDir, err)
		}
		added, data[name] = append(added, m), b
		queue = append(queue, m.Depends...)
		for _, s := range softDeps(m) {
			if _, ok := paths[s]; ok { // a soft dependency may be an alias, or absent: it is soft
				queue = append(queue, s)
			}
		}
	}

	all := make([]*kmod.Module, 0, len(a.modules)+len(added))
	for _, m := range a.modules {
		all = append(all, m)
	}
	all = append(all, added...)
	order := bytes.Clone(a.order)
	for _, m := range added {
		order = append(order, kmod.OrderPath(m.Path)+"\n"...)
	}
	index, err := kmod.Depmod(all, order)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	index[kmod.FileOrder] = order

	files := map[string][]byte{}
	for name, b := range index {
		files[a.modDir+"/"+name] = b
	}
	for _, m := range added {
		files[a.modDir+"/"+m.Path] = data[m.Name]
	}
	if name, b := a.preloadFile(wanted); name != "" {
		files[name] = b
	}
	var out bytes.Buffer
	keep := func(e initrd.Entry) bool { _, replaced := files[e.Name]; return !replaced }
	add := func(w *initrd.Writer) error { return a.write(w, files) }
	if err := initrd.Rewrite(bytes.NewReader(cur), int64(len(cur)), &out, keep, add); err != nil {
		return nil, fmt.Errorf("/%s: %w", k.Initrd, err)
	}
	o.Write(k.Initrd, out.Bytes())
	names := make([]string, len(added))
	for i, m := range added {
		names[i] = m.Name
	}
	return names, nil
}

// softDeps are the modules a module's softdep= names, before and after.
func softDeps(m *kmod.Module) []string {
	var out []string
	for _, s := range m.SoftDeps {
		for _, f := range strings.Fields(s) {
			if !strings.HasSuffix(f, ":") {
				out = append(out, strings.ReplaceAll(f, "-", "_"))
			}
		}
	}
	return out
}

// preloadFile is the file that has the archive's tool load modules before
// anything else, with modules added to what it already names; "" for a
// tool that loads drivers only as devices appear (the new index files
// are what it needs then).
func (a *inArchive) preloadFile(modules []string) (string, []byte) {
	switch a.tool {
	case "initramfs-tools":
		return initramfsToolsModules, withModuleLines(a.preload[initramfsToolsModules], modules)
	case "dracut":
		var have []string
		for _, f := range strings.Fields(string(a.preload[dracutPreloadConf])) {
			if list, ok := strings.CutPrefix(f, "rd.driver.pre="); ok {
				have = append(have, strings.Split(list, ",")...)
			}
		}
		list := append(have, missingWords(have, modules)...)
		return dracutPreloadConf, []byte(" rd.driver.pre=" + strings.Join(list, ",") + " \n")
	case "mkinitcpio":
		b := bytes.Clone(a.preload[mkinitcpioConfig])
		m := mkinitcpioModulesLine.FindSubmatchIndex(b)
		if m == nil {
			if len(b) > 0 && b[len(b)-1] != '\n' {
				b = append(b, '\n')
			}
			return mkinitcpioConfig, append(b, `MODULES="`+strings.Join(modules, " ")+"\"\n"...)
		}
		have := strings.Fields(string(b[m[2]:m[3]]))
		list := strings.Join(append(have, missingWords(have, modules)...), " ")
		return mkinitcpioConfig, append(append(append([]byte{}, b[:m[2]]...), list...), b[m[3]:]...)
	}
	return "", nil
}

// write adds files to the archive, making the directories they need that
// it lacks (never over a symbolic link: the kernel would replace the link
// with the directory).
func (a *inArchive) write(w *initrd.Writer, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		var parents []string
		for d := path.Dir(name); d != "." && !a.dirs[d]; d = path.Dir(d) {
			if a.links[d] {
				return fmt.Errorf("cannot add /%s: /%s is a symbolic link in the initramfs", name, d)
			}
			parents = append(parents, d)
		}
		for _, d := range slices.Backward(parents) {
			if err := w.WriteHeader(initrd.Entry{Name: d, Mode: fs.ModeDir | 0o755, ModTime: a.modTime}); err != nil {
				return err
			}
			a.dirs[d] = true
		}
		b := files[name]
		if err := w.WriteHeader(initrd.Entry{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: a.modTime}); err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

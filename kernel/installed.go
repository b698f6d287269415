// Package kernel knows a guest's kernels and their command lines: which
// kernels are installed, with their initramfs, config and built-in
// modules; where command lines live and how to edit them.
package kernel

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Kernel is an installed kernel.
type Kernel struct {
	Version      string            `json:"version"`
	Image        string            `json:"kernel_image,omitempty"` // boot/vmlinuz-V
	Initrd       string            `json:"initrd,omitempty"`       // its initramfs, by the distribution's naming
	Config       string            `json:"config,omitempty"`       // boot/config-V or the modules directory's config
	ModulesDir   string            `json:"modules_dir,omitempty"`  // lib/modules/V
	Builtin      map[string]bool   `json:"-"`                      // modules compiled in, from modules.builtin (dashes as underscores)
	ConfigValues map[string]string `json:"-"`                      // CONFIG_X -> "y", "m", a value; "n" for "is not set"
}

// modulesRoots are where distributions keep kernel modules (merged /usr
// first; lib is usually a symlink to it).
var modulesRoots = [...]string{"usr/lib/modules", "lib/modules"}

// initrdNames are the initramfs names distributions give kernel V:
// initramfs-tools, dracut, SUSE, Arch's mkinitcpio (V is "linux" there,
// from vmlinuz-linux), Alpine's mkinitfs.
var initrdNames = [...]string{"initrd.img-%s", "initramfs-%s.img", "initrd-%s", "initramfs-%s", "initrd-%s.img"}

// Files of a modules directory.
const (
	builtinFile = "modules.builtin"
	configFile  = "config"  // some distributions keep the config beside the modules
	pkgbaseFile = "pkgbase" // Arch: the package, whose name the image and initramfs carry
)

// maxIndexFile bounds a config or modules.builtin read into memory.
const maxIndexFile = 16 << 20

// InstalledKernels lists the kernels of a guest: every version with a
// modules directory or a boot/vmlinuz-V image, sorted by version string,
// with the initramfs, config and built-in modules of each. Files that do
// not exist are left out; files that cannot be read are an error.
func InstalledKernels(fsys fs.FS) ([]Kernel, error) {
	byVersion := map[string]*Kernel{}
	get := func(v string) *Kernel {
		if byVersion[v] == nil {
			byVersion[v] = &Kernel{Version: v}
		}
		return byVersion[v]
	}
	for _, root := range modulesRoots {
		ents, err := readDir(fsys, root)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if k := get(e.Name()); k.ModulesDir == "" {
				k.ModulesDir = path.Join(root, e.Name())
			}
		}
	}
	// Arch names the image after the package: vmlinuz-linux belongs to the
	// modules directory whose pkgbase says "linux".
	named := map[string]string{}
	for v, k := range byVersion {
		b, err := readFile(fsys, path.Join(k.ModulesDir, pkgbaseFile))
		if err != nil {
			return nil, err
		}
		if name := strings.TrimSpace(string(b)); name != "" {
			named[name] = v
		}
	}
	boot, err := readDir(fsys, "boot")
	if err != nil {
		return nil, err
	}
	for _, e := range boot {
		v, ok := strings.CutPrefix(e.Name(), "vmlinuz-")
		if !ok {
			continue
		}
		k := get(v)
		if real, ok := named[v]; ok {
			delete(byVersion, v)
			k = get(real)
		}
		k.Image = "boot/" + e.Name()
	}
	var out []Kernel
	for _, k := range byVersion {
		if err := k.describe(fsys); err != nil {
			return nil, err
		}
		out = append(out, *k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// describe finds k's initramfs and config and reads its built-in modules.
func (k *Kernel) describe(fsys fs.FS) error {
	name := k.Version
	if k.Image != "" {
		name = strings.TrimPrefix(k.Image, "boot/vmlinuz-")
	}
	for _, pattern := range initrdNames {
		p := "boot/" + strings.Replace(pattern, "%s", name, 1)
		if ok, err := exists(fsys, p); err != nil {
			return err
		} else if ok {
			k.Initrd = p
			break
		}
	}
	candidates := []string{"boot/config-" + k.Version}
	if k.ModulesDir != "" {
		candidates = append(candidates, path.Join(k.ModulesDir, configFile))
	}
	for _, c := range candidates {
		b, err := readFile(fsys, c)
		if err != nil {
			return err
		}
		if b != nil {
			k.Config, k.ConfigValues = c, parseConfig(b)
			break
		}
	}
	if k.ModulesDir != "" {
		b, err := readFile(fsys, path.Join(k.ModulesDir, builtinFile))
		if err != nil {
			return err
		}
		if b != nil {
			k.Builtin = parseBuiltin(b)
		}
	}
	return nil
}

// parseConfig reads a kernel .config: CONFIG_X=value lines and
// "# CONFIG_X is not set", which it records as "n".
func parseConfig(b []byte) map[string]string {
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxIndexFile)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "# CONFIG_"); ok {
			if name, ok := strings.CutSuffix(rest, " is not set"); ok {
				vals["CONFIG_"+name] = "n"
			}
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "CONFIG_") {
			vals[k] = strings.Trim(v, `"`)
		}
	}
	return vals
}

// parseBuiltin reads modules.builtin: one module path a line
// (kernel/drivers/hv/hv_vmbus.ko).
func parseBuiltin(b []byte) map[string]bool {
	mods := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutSuffix(path.Base(strings.TrimSpace(line)), ".ko"); ok && name != "" {
			mods[strings.ReplaceAll(name, "-", "_")] = true
		}
	}
	return mods
}

// HasBuiltin tells whether module (dashes or underscores) is compiled
// into the kernel.
func (k Kernel) HasBuiltin(module string) bool {
	return k.Builtin[strings.ReplaceAll(module, "-", "_")]
}

// readFile reads a file, or returns nil for one that does not exist.
func readFile(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(f, maxIndexFile+1))
	if err != nil {
		return nil, fmt.Errorf("kernel: reading /%s: %w", name, err)
	}
	if len(b) > maxIndexFile {
		return nil, fmt.Errorf("kernel: /%s is more than %d MiB; it is not a kernel config or module index", name, maxIndexFile>>20)
	}
	return b, nil
}

func readDir(fsys fs.FS, name string) ([]fs.DirEntry, error) {
	ents, err := fs.ReadDir(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return ents, err
}

func exists(fsys fs.FS, name string) (bool, error) {
	_, err := fs.Stat(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

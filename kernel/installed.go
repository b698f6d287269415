// Package kernel knows a guest's kernels: which are installed, with their
// initramfs, config and built-in modules.
package kernel

import (
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Kernel is an installed kernel.
type Kernel struct {
	Version    string `json:"version"`
	Image      string `json:"image,omitempty"`       // boot/vmlinuz-V
	Initrd     string `json:"initrd,omitempty"`      // its initramfs, by the distribution's naming
	Config     string `json:"config,omitempty"`      // boot/config-V or the modules directory's config
	ModulesDir string `json:"modules_dir,omitempty"` // lib/modules/V
}

// modulesRoots are where distributions keep kernel modules (merged /usr
// first; lib is usually a symlink to it).
var modulesRoots = []string{"usr/lib/modules", "lib/modules"}

// initrdNames are the initramfs names distributions give kernel V:
// initramfs-tools, dracut, SUSE, Arch's mkinitcpio (V is "linux" there,
// from vmlinuz-linux), Alpine's mkinitfs.
var initrdNames = []string{"initrd.img-%s", "initramfs-%s.img", "initrd-%s", "initramfs-%s", "initrd-%s.img"}

// Installed lists the kernels of a guest: every version with a modules
// directory or a boot/vmlinuz-V image, sorted by version string.
func Installed(fsys fs.FS) []Kernel {
	byVersion := map[string]*Kernel{}
	get := func(v string) *Kernel {
		if byVersion[v] == nil {
			byVersion[v] = &Kernel{Version: v}
		}
		return byVersion[v]
	}
	for _, root := range modulesRoots {
		ents, _ := fs.ReadDir(fsys, root)
		for _, e := range ents {
			if k := get(e.Name()); k.ModulesDir == "" {
				k.ModulesDir = path.Join(root, e.Name())
			}
		}
	}
	boot, _ := fs.ReadDir(fsys, "boot")
	for _, e := range boot {
		if v, ok := strings.CutPrefix(e.Name(), "vmlinuz-"); ok {
			get(v).Image = "boot/" + e.Name()
		}
	}
	var out []Kernel
	for _, k := range byVersion {
		k.Initrd = findInitrd(fsys, k.Version)
		for _, c := range []string{"boot/config-" + k.Version, path.Join(k.ModulesDir, "config")} {
			if exists(fsys, c) {
				k.Config = c
				break
			}
		}
		out = append(out, *k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

func findInitrd(fsys fs.FS, version string) string {
	for _, pattern := range initrdNames {
		p := "boot/" + strings.Replace(pattern, "%s", version, 1)
		if exists(fsys, p) {
			return p
		}
	}
	return ""
}

func exists(fsys fs.FS, name string) bool {
	_, err := fs.Stat(fsys, name)
	return err == nil
}

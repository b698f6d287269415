package lint

import (
	"path"
	"strings"

	"github.com/vhdprep/vhdprep/rootfs"
)

// Where systemctl enable puts a unit's links, and where unit files live,
// in systemd's order of precedence.
const systemdAdminDir = "etc/systemd/system"

var systemdUnitDirs = []string{systemdAdminDir, "usr/lib/systemd/system", "lib/systemd/system"}

// swapUnit is a .swap unit enabled at boot.
type swapUnit struct {
	link string // the enable link, etc/systemd/system/X.wants/NAME.swap
	name string
	what string // its What=, "" when its unit file is not found
}

// enabledSwapUnits lists the .swap units enabled in /etc/systemd/system's
// .wants directories (systemctl enable), but masked ones and zram devices,
// which are not on the OS disk. Swap that systemd generates from fstab is
// fstab's, and checked there.
func enabledSwapUnits(root rootfs.FS) []swapUnit {
	var out []swapUnit
	dirs, _ := root.ReadDir(systemdAdminDir)
	for _, d := range dirs {
		if !strings.HasSuffix(d.Name(), ".wants") {
			continue
		}
		wants := systemdAdminDir + "/" + d.Name()
		ents, _ := root.ReadDir(wants)
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".swap") || unitMasked(root, e.Name()) {
				continue
			}
			u := swapUnit{link: wants + "/" + e.Name(), name: e.Name(), what: swapWhat(root, wants+"/"+e.Name())}
			if !strings.HasPrefix(u.what, "/dev/zram") {
				out = append(out, u)
			}
		}
	}
	return out
}

// swapWhat reads What= from a swap unit: through its enable link, else
// the unit file by name.
func swapWhat(root rootfs.FS, link string) string {
	for _, p := range append([]string{link}, unitPaths(path.Base(link))...) {
		b, err := readFile(root, p)
		if err != nil || b == nil {
			continue
		}
		what := ""
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "What="); ok {
				what = strings.TrimSpace(v)
			}
		}
		return what
	}
	return ""
}

func unitPaths(name string) []string {
	var out []string
	for _, d := range systemdUnitDirs {
		out = append(out, d+"/"+name)
	}
	return out
}

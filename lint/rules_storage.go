package lint

import (
	"cmp"
	"fmt"
	"regexp"
	"strings"

	"github.com/vhdprep/vhdprep/rootfs"
)

// fstab returns the guest's fstab entries, or a skip when it has none.
func (t *Target) fstab() ([]rootfs.FstabEntry, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	b, err := readFile(root, "etc/fstab")
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, Skip("the guest has no /etc/fstab")
	}
	return rootfs.ParseFstab(b)
}

// checkNoSwapInFstab: no fstab line and no enabled .swap unit activates
// swap.
func checkNoSwapInFstab(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	units := enabledSwapUnits(root)
	es, err := t.fstab()
	if err != nil && len(units) == 0 {
		return nil, err
	}
	var fs []Finding
	for _, e := range es {
		if e.IsSwap() {
			fs = append(fs, Finding{Message: fmt.Sprintf("fstab activates swap on %s", e.Spec), Location: Location{File: "/etc/fstab", Line: e.Line},
				Fix: "comment the line out and let the agent put swap on the resource disk (SWP002)", Fixable: true})
		}
	}
	for _, u := range units {
		fs = append(fs, Finding{Message: fmt.Sprintf("the systemd unit %s, enabled at boot, activates swap on %s", u.name, cmp.Or(u.what, "a device its unit file names")), Location: Location{File: "/" + u.link},
			Fix: "disable it (remove the link) and let the agent put swap on the resource disk (SWP002)", Fixable: true})
	}
	return fs, nil
}

func checkFstabNames(t *Target) ([]Finding, error) {
	es, err := t.fstab()
	if err != nil {
		return nil, err
	}
	mounted := map[string]bool{}
	for _, m := range t.Guest.Mounts {
		mounted[m.Spec] = true
	}
	var fs []Finding
	for _, e := range es {
		loc := Location{File: "/etc/fstab", Line: e.Line}
		switch {
		case isDeviceName(e.Spec):
			fs = append(fs, Finding{Message: fmt.Sprintf("%s is mounted by device name %s, which changes on Azure; use UUID=", e.File, e.Spec), Location: loc})
		case t.Guest.Layout != nil && e.File != "/" && !e.IsSwap() && isLocalSpec(e.Spec) && !mounted[e.Spec] && !e.HasOption("nofail"):
			fs = append(fs, Finding{Message: fmt.Sprintf("%s (%s) is not on the OS disk and lacks nofail: boot stops when that disk is missing", e.File, e.Spec), Location: loc})
		}
	}
	return fs, nil
}

// isLocalSpec tells whether an fstab source names a block device.
func isLocalSpec(spec string) bool {
	for _, p := range []string{"UUID=", "LABEL=", "PARTUUID=", "PARTLABEL=", "/dev/"} {
		if len(spec) > len(p) && spec[:len(p)] == p {
			return true
		}
	}
	return false
}

// swapDisabledMark starts the fstab swap lines fix comments out.
const swapDisabledMark = "# disabled by vhdprep (SWP001: swap belongs on the resource disk): "

// repairSwapFstab comments out every swap line of fstab (nothing is
// deleted) and disables the enabled .swap units, as systemctl disable does.
func repairSwapFstab(t *Target, o *Overlay) error {
	root, err := t.root()
	if err != nil {
		return err
	}
	units := enabledSwapUnits(root)
	for _, u := range units {
		o.Remove(u.link)
	}
	es, err := t.fstab()
	if err != nil {
		if len(units) > 0 {
			return nil
		}
		return err
	}
	for _, e := range es {
		if e.IsSwap() {
			if err := editLine(o, "etc/fstab", e.Line, func(line string) (string, error) {
				return swapDisabledMark + line, nil
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

var (
	fstabSpecRE    = regexp.MustCompile(`^(\s*)(\S+)(.*)$`)
	fstabOptionsRE = regexp.MustCompile(`^(\s*\S+\s+\S+\s+\S+\s+)(\S+)(.*)$`)
)

// repairFstabNames names this disk's filesystems by UUID= and gives the
// entries of other disks nofail, so a missing data disk does not stop boot.
func repairFstabNames(t *Target, o *Overlay) error {
	es, err := t.fstab()
	if err != nil {
		return err
	}
	mounted := map[string]bool{}
	for _, m := range t.Guest.Mounts {
		mounted[m.Spec] = true
	}
	b, err := o.Read("etc/fstab")
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	for _, e := range es {
		// A line an earlier repair commented out (SWP001) is left alone.
		if e.Line > len(lines) {
			continue
		}
		if f := strings.Fields(lines[e.Line-1]); len(f) == 0 || f[0] != e.Spec {
			continue
		}
		if isDeviceName(e.Spec) {
			uuid, err := uuidOfDevice(t, e.Spec)
			if err != nil {
				return err
			}
			if err := editLine(o, "etc/fstab", e.Line, func(l string) (string, error) {
				m := fstabSpecRE.FindStringSubmatch(l)
				return m[1] + "UUID=" + uuid + m[3], nil
			}); err != nil {
				return err
			}
			continue
		}
		if t.Guest.Layout != nil && e.File != "/" && !e.IsSwap() && isLocalSpec(e.Spec) && !mounted[e.Spec] && !e.HasOption("nofail") {
			if err := editLine(o, "etc/fstab", e.Line, func(l string) (string, error) {
				m := fstabOptionsRE.FindStringSubmatch(l)
				if m == nil {
					return "", fmt.Errorf("/etc/fstab:%d has no options field", e.Line)
				}
				return m[1] + m[2] + ",nofail" + m[3], nil
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

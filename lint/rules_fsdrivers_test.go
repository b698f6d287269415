package lint

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// modprobe.d as kmod reads it: the host's own modprobe, given the guest's
// directories in its order of precedence (-C each), prints the effective
// configuration (-c), and says whether each layout disables udf and vfat
// exactly where moduleDisabled does; fix then leaves none disabled.
func TestModprobeDisabledAgreesWithKmod(t *testing.T) {
	testimage.RequireTools(t, "modprobe")
	disabled := 0
	for name, files := range map[string]map[string]string{
		"CIS hardening":             {"etc/modprobe.d/cis.conf": "install udf /bin/true\ninstall cramfs /bin/true\nblacklist vfat\n"},
		"hidden by /etc":            {"usr/lib/modprobe.d/fs.conf": "blacklist udf\n", "etc/modprobe.d/fs.conf": "# the admin's: udf stays\n"},
		"not a .conf":               {"etc/modprobe.d/README": "blacklist udf\n", "etc/modprobe.d/udf.conf.disabled": "install udf /bin/false\n"},
		"a continued line":          {"lib/modprobe.d/z.conf": "install udf \\\n    /bin/false\n"},
		"a commented continuation":  {"etc/modprobe.d/a.conf": "# install udf \\\ninstall udf /bin/true\n"},
		"dashes and other commands": {"run/modprobe.d/x.conf": "install vfat /usr/bin/false\ninstall udf /sbin/modprobe --ignore-install udf\n"},
		"/usr/local/lib":            {"usr/local/lib/modprobe.d/l.conf": "blacklist udf\n"},
	} {
		target := tree(t, files)
		root, _ := target.root()
		kmod := kmodDisables(t, target.Name)
		for m, want := range kmod {
			if want {
				disabled++
			}
			if got := len(moduleDisabled(root, m)) > 0; got != want {
				t.Errorf("%s: %s disabled: vhdprep %v, kmod %v", name, m, got, want)
			}
		}
		plan, err := PlanFix(target, Catalog(), nil, []string{"DRV004", "DRV005"})
		if err != nil {
			t.Fatal(err)
		}
		if err := plan.Apply(target); err != nil {
			t.Fatal(err)
		}
		for m, off := range kmodDisables(t, target.Name) {
			if off {
				t.Errorf("%s: after fix kmod still disables %s", name, m)
			}
		}
	}
	if disabled < 4 {
		t.Errorf("kmod found %d modules disabled over all layouts, want at least 4: the oracle reads nothing", disabled)
	}
}

// kmodDisables says, for udf and vfat, whether the host's modprobe reading
// the modprobe.d directories of the guest at root finds them disabled.
func kmodDisables(t *testing.T, root string) map[string]bool {
	t.Helper()
	args := []string{"-c"}
	for _, d := range modprobeDirs {
		args = append(args, "-C", filepath.Join(root, d))
	}
	out, err := exec.Command("modprobe", args...).Output()
	if err != nil {
		t.Fatalf("modprobe -c: %v", err)
	}
	off := map[string]bool{}
	for _, m := range []string{"udf", "vfat"} {
		off[m] = regexp.MustCompile(`(?m)^(blacklist ` + m + `|install ` + m + ` +\S*(true|false))$`).Match(out)
	}
	return off
}

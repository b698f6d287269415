package lint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// swapfileUnit is a swap file's unit as systemd.swap(5) describes it and
// guides have people write it, enabled with systemctl enable.
const swapfileUnit = "[Unit]\nDescription=Swap file\n\n[Swap]\nWhat=/swapfile\n\n[Install]\nWantedBy=swap.target\n"

// SWP001 sees swap that a systemd .swap unit enabled at boot activates,
// and fix disables the unit (its file stays).
func TestSwapUnits(t *testing.T) {
	enabled := map[string]string{
		"etc/systemd/system/swapfile.swap":                   swapfileUnit,
		"etc/systemd/system/swap.target.wants/swapfile.swap": "->/etc/systemd/system/swapfile.swap",
		"etc/fstab": "UUID=1 / ext4 defaults 0 1\n",
	}
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"enabled", enabled, "the systemd unit swapfile.swap, enabled at boot, activates swap on /swapfile"},
		{"enabled, no fstab", map[string]string{
			"usr/lib/systemd/system/dev-sda2.swap":                     "[Swap]\nWhat=/dev/sda2\n",
			"etc/systemd/system/multi-user.target.wants/dev-sda2.swap": "->/usr/lib/systemd/system/dev-sda2.swap"}, "dev-sda2.swap, enabled at boot, activates swap on /dev/sda2"},
		{"masked", with(enabled, map[string]string{"etc/systemd/system/swapfile.swap": "->/dev/null"}), ""},
		{"installed, not enabled", map[string]string{"etc/systemd/system/swapfile.swap": swapfileUnit, "etc/fstab": "UUID=1 / ext4 defaults 0 1\n"}, ""},
		{"zram", map[string]string{"etc/systemd/system/swap.target.wants/dev-zram0.swap": "->/etc/systemd/system/dev-zram0.swap",
			"etc/systemd/system/dev-zram0.swap": "[Swap]\nWhat=/dev/zram0\n", "etc/fstab": "UUID=1 / ext4 defaults 0 1\n"}, ""},
	} {
		o := outcome(t, tree(t, c.files), "SWP001")
		if c.want == "" {
			if o.Status != Passed {
				t.Errorf("%s: %s %+v %s, want pass", c.name, o.Status, o.Findings, o.Reason)
			}
			continue
		}
		if o.Status != Failed || len(o.Findings) != 1 || !strings.Contains(o.Findings[0].Message, c.want) {
			t.Errorf("%s: %s %+v %s, want a finding saying %q", c.name, o.Status, o.Findings, o.Reason, c.want)
		}
	}

	target := tree(t, with(enabled, map[string]string{"etc/fstab": "UUID=1 / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n"}))
	plan, err := PlanFix(target, Catalog(), nil, []string{"SWP001"})
	if err != nil || plan.Rules[0].Error != "" {
		t.Fatalf("plan: %v %+v", err, plan.Rules)
	}
	if err := plan.Apply(target); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(target.Name, "etc/systemd/system/swap.target.wants/swapfile.swap")); !os.IsNotExist(err) {
		t.Errorf("the enable link is still there: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(target.Name, "etc/systemd/system/swapfile.swap")); string(b) != swapfileUnit {
		t.Errorf("the unit file changed: %q", b)
	}
	fresh, _ := OpenDir(target.Name)
	if o := outcome(t, fresh, "SWP001"); o.Status != Passed {
		t.Errorf("after fix: %s %+v", o.Status, o.Findings)
	}
	if again, err := PlanFix(fresh, Catalog(), nil, []string{"SWP001"}); err != nil || len(again.Changes) != 0 {
		t.Errorf("second fix: %v %+v", err, again.Changes)
	}
}

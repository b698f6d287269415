package lint

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// unitEnabled agrees with systemd's own offline reading of a guest's unit
// files (systemctl --root DIR is-enabled): enabled where systemctl says
// enabled, not where it says disabled, masked or finds no unit file.
func TestUnitEnabledAgreesWithSystemctl(t *testing.T) {
	testimage.RequireTools(t, "systemctl")
	const unit = "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
	wants := "etc/systemd/system/multi-user.target.wants/"
	for name, files := range map[string]map[string]string{
		"enabled":                 {"usr/lib/systemd/system/walinuxagent.service": unit, wants + "walinuxagent.service": "->/usr/lib/systemd/system/walinuxagent.service"},
		"installed, not enabled":  {"usr/lib/systemd/system/walinuxagent.service": unit},
		"removed, link left":      {wants + "walinuxagent.service": "->/lib/systemd/system/walinuxagent.service"},
		"masked":                  {"usr/lib/systemd/system/walinuxagent.service": unit, wants + "walinuxagent.service": "->/usr/lib/systemd/system/walinuxagent.service", "etc/systemd/system/walinuxagent.service": "->/dev/null"},
		"a unit the admin wrote":  {"etc/systemd/system/walinuxagent.service": unit, wants + "walinuxagent.service": "->/etc/systemd/system/walinuxagent.service"},
		"linked to a wrong place": {"usr/lib/systemd/system/walinuxagent.service": unit, wants + "walinuxagent.service": "->/opt/nowhere/walinuxagent.service"},
	} {
		target := tree(t, files)
		root, _ := target.root()
		out, _ := exec.Command("systemctl", "--root="+target.Name, "is-enabled", "walinuxagent.service").CombinedOutput()
		state := strings.TrimSpace(string(out))
		want := state == "enabled" || state == "enabled-runtime"
		t.Logf("%s: systemctl %q", name, state)
		if got := unitEnabled(root, "walinuxagent.service"); got != want {
			t.Errorf("%s: vhdprep says enabled %v, systemctl %q", name, got, state)
		}
	}
}

//go:build e2e

package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// sudoersCases are sudo policies as distributions ship them and image
// builders leave them, files under /etc; @D@ stands for /etc in include
// lines, so the guest's own sudo tools can read a copy elsewhere.
var sudoersCases = []configCase{
	{"SUSE's stock lines", map[string]string{"sudoers": "Defaults always_set_home\nDefaults targetpw   # ask for the password of the target user i.e. root\n#includedir @D@/sudoers.d\n"}},
	{"undone by a drop-in", map[string]string{"sudoers": "Defaults targetpw\n#includedir @D@/sudoers.d\n", "sudoers.d/90-azure": "Defaults !targetpw\n"}},
	{"in a list", map[string]string{"sudoers": "Defaults env_reset, targetpw, !insults\n"}},
	{"drop-ins never included", map[string]string{"sudoers": "root ALL=(ALL) ALL\n", "sudoers.d/50-builder": "Defaults targetpw\n"}},
	{"drop-ins sudo skips", map[string]string{"sudoers": "@includedir @D@/sudoers.d\n", "sudoers.d/50-builder.rpmsave": "Defaults targetpw\n", "sudoers.d/50-builder~": "Defaults targetpw\n"}},
	{"a continued line", map[string]string{"sudoers": "Defaults env_reset, \\\n  targetpw\n"}},
	{"an included file", map[string]string{"sudoers": "#include @D@/sudoers.local\n", "sudoers.local": "Defaults targetpw\n"}},
	{"undone in a list", map[string]string{"sudoers": "Defaults targetpw\nDefaults env_reset,!targetpw\n"}},
	{"a line's last word wins", map[string]string{"sudoers": "Defaults targetpw\nDefaults !targetpw, targetpw\n"}},
	{"a comment's backslash continues nothing", map[string]string{"sudoers": "# the builder's note \\\nDefaults targetpw\n"}},
	{"scoped only", map[string]string{"sudoers": "Defaults:%wheel !targetpw\nDefaults targetpw\nDefaults !targetpw\n"}},
}

// wantSudoAgrees: check's SEC005 reads each of sudoersCases as the guest's
// own sudo does (cvtsudoers -f json in a chroot of the image's tree, which
// parses the policy with its includes): it fails exactly where the last
// plain Defaults that sets targetpw turns it on.
func wantSudoAgrees(t *testing.T, vhdprep, root string) {
	sudo := guestProgram{path: "usr/bin/cvtsudoers", dir: "/etc", mode: 0o440, inside: "/tmp/vhdprep-e2e-sudo"}
	sudo.eachCase(t, root, sudoersCases, func(t *testing.T, guest string) { sudoAgrees(t, vhdprep, root, sudo.inside, guest) })
}

// sudoAgrees is wantSudoAgrees for one policy, copied into the image's
// tree at inside and into guest.
func sudoAgrees(t *testing.T, vhdprep, root, inside, guest string) {
	out, err := exec.Command("chroot", root, "cvtsudoers", "-f", "json", inside+"/sudoers").CombinedOutput()
	var policy struct {
		Defaults []struct {
			Binding []map[string]any  `json:"Binding"`
			Options []map[string]bool `json:"Options"`
		} `json:"Defaults"`
	}
	// A policy with nothing in it prints nothing.
	if err != nil || len(strings.TrimSpace(string(out))) > 0 && json.Unmarshal(out, &policy) != nil {
		t.Fatalf("the guest's cvtsudoers: %v\n%s", err, out)
	}
	want := false
	for _, d := range policy.Defaults {
		for _, o := range d.Options {
			if v, ok := o["targetpw"]; ok && d.Binding == nil {
				want = v
			}
		}
	}

	if got, _ := ruleOutcome(t, vhdprep, guest, "SEC005"); (got == "fail") != want {
		t.Errorf("SEC005 %s, but the guest's sudo reads targetpw %v", got, want)
	}
	if !t.Failed() {
		t.Logf("sudo and check agree: targetpw %v", want)
	}
}

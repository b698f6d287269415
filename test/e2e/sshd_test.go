//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// sshdCases are sshd configurations as image builders leave them, files
// under /etc/ssh; @D@ stands for that directory in Include lines, so the
// guest's own sshd can read a copy elsewhere.
var sshdCases = []configCase{
	{"drop-ins included first", map[string]string{"sshd_config": "Include @D@/sshd_config.d/*.conf\nClientAliveInterval 600\n", "sshd_config.d/50-cloud.conf": "ClientAliveInterval 120\n"}},
	{"included last", map[string]string{"sshd_config": "ClientAliveInterval 0\nInclude @D@/sshd_config.d/*.conf\n", "sshd_config.d/50-cloud.conf": "ClientAliveInterval 120\n"}},
	{"drop-ins never included", map[string]string{"sshd_config": "Port 22\n", "sshd_config.d/50-cloud.conf": "ClientAliveInterval 120\n"}},
	{"equals, quotes, comment", map[string]string{"sshd_config": "clientaliveinterval=\"90\" # the builder's\n"}},
	{"blanks around equals", map[string]string{"sshd_config": "ClientAliveInterval = 150\n"}},
	{"a drop-in's Match ends with it", map[string]string{"sshd_config": "Include @D@/sshd_config.d/*.conf\nClientAliveInterval 200\n", "sshd_config.d/10-backup.conf": "Match User backup\nClientAliveInterval 5\n"}},
	{"settings after Match are conditional", map[string]string{"sshd_config": "Match User backup\nClientAliveInterval 45\n"}},
	{"nested includes", map[string]string{"sshd_config": "Include @D@/a.conf\nClientAliveInterval 600\n", "a.conf": "Include @D@/sshd_config.d/*.conf\n", "sshd_config.d/x.conf": "ClientAliveInterval 33\n"}},
	{"drop-ins in name order", map[string]string{"sshd_config": "Include @D@/sshd_config.d/*.conf\n", "sshd_config.d/20-b.conf": "ClientAliveInterval 200\n", "sshd_config.d/10-a.conf": "ClientAliveInterval 100\n"}},
}

// The value SSH002 reports: "ClientAliveInterval N is outside ...".
var outsideValue = regexp.MustCompile(`ClientAliveInterval (\S+) is outside`)

// wantSSHDAgrees: check's SSH002 reads each of sshdCases as the guest's
// own sshd does (sshd -T in a chroot of the image's tree, which prints the
// effective global configuration): it passes exactly where sshd's
// ClientAliveInterval is within 30-235, and names the value sshd took.
func wantSSHDAgrees(t *testing.T, vhdprep, root string) {
	sshd := guestProgram{path: "usr/sbin/sshd", dir: "/etc/ssh", mode: 0o644, inside: "/tmp/vhdprep-e2e-sshd"}
	sshd.eachCase(t, root, sshdCases, func(t *testing.T, guest string) { sshdAgrees(t, vhdprep, root, sshd.inside, guest) })
}

// sshdAgrees is wantSSHDAgrees for one configuration, copied into the
// image's tree at inside and into guest.
func sshdAgrees(t *testing.T, vhdprep, root, inside, guest string) {
	// sshd -T wants its privilege separation directory.
	if _, err := os.Stat(filepath.Join(root, "run/sshd")); os.IsNotExist(err) {
		mustExec(t, "mkdir", "-p", filepath.Join(root, "run/sshd"))
		t.Cleanup(func() { os.Remove(filepath.Join(root, "run/sshd")) })
	}
	// The guest's own ssh-keygen: the host need not have one.
	mustExec(t, "chroot", root, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", inside+"/hostkey")

	out, err := exec.Command("chroot", root, "/usr/sbin/sshd", "-T", "-f", inside+"/sshd_config", "-h", inside+"/hostkey").CombinedOutput()
	m := regexp.MustCompile(`(?m)^clientaliveinterval (\d+)$`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("the guest's sshd -T: %v\n%s", err, out)
	}
	want, _ := strconv.Atoi(string(m[1]))

	got, messages := ruleOutcome(t, vhdprep, guest, "SSH002")
	if got == "fail" && len(messages) == 1 {
		switch v := outsideValue.FindStringSubmatch(messages[0]); {
		case v != nil && v[1] != strconv.Itoa(want):
			t.Errorf("check read ClientAliveInterval %s, the guest's sshd %d", v[1], want)
		case v == nil && want != 0:
			t.Errorf("check says %q, the guest's sshd took %d", messages[0], want)
		}
	}
	if pass := want >= 30 && want <= 235; got != map[bool]string{true: "pass", false: "fail"}[pass] {
		t.Errorf("SSH002 %s, but the guest's sshd takes ClientAliveInterval %d", got, want)
	}
	if !t.Failed() {
		t.Logf("sshd and check agree on %d", want)
	}
}

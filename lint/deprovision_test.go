package lint

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

func TestDeprovisionTree(t *testing.T) {
	target := tree(t, map[string]string{
		"etc/ssh/ssh_host_ed25519_key":      "k",
		"etc/ssh/ssh_host_ed25519_key.pub":  "k",
		"etc/ssh/sshd_config":               "Port 22\n",
		"etc/machine-id":                    "0123456789abcdef0123456789abcdef\n",
		"root/.bash_history":                "ls\n",
		"home/bob/.bash_history":            "sudo ls\n",
		"home/bob/.ssh/authorized_keys":     "ssh-ed25519 AAAA bob\n",
		"var/lib/waagent/provisioned":       "",
		"var/lib/waagent/ovf-env.xml":       "<x/>",
		"var/lib/waagent/Certificates.pem":  "secret",
		"var/lib/cloud/instance":            "->/var/lib/cloud/instances/i-1",
		"var/lib/cloud/instances/i-1/obj":   "x",
		"var/lib/dhcp/dhclient.eth0.leases": "lease {}",
		"etc/passwd":                        "root:x:0:0:root:/root:/bin/bash\nbob:x:1000:1000::/home/bob:/bin/bash\nsvc:x:998:998::/etc:/bin/sh\n",
		"etc/shadow":                        "root:$6$salt$hash:1::\nbob:$6$salt$hash:1::\nsvc:*:1::\n",
		"etc/group":                         "root:x:0:\nsudo:x:27:bob\nbob:x:1000:\n",
	})
	plan, users, err := PlanDeprovision(target, true)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(users, ",") != "bob" {
		t.Fatalf("users %v", users)
	}
	if err := plan.Apply(target); err != nil {
		t.Fatal(err)
	}
	root := target.Name
	for _, gone := range []string{"etc/ssh/ssh_host_ed25519_key", "root/.bash_history", "home/bob", "var/lib/waagent/ovf-env.xml", "var/lib/waagent/Certificates.pem", "var/lib/cloud/instances", "var/lib/cloud/instance", "var/lib/dhcp/dhclient.eth0.leases"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); err == nil {
			t.Errorf("%s is still there", gone)
		}
	}
	for _, kept := range []string{"etc/ssh/sshd_config", "etc"} {
		if _, err := os.Lstat(filepath.Join(root, kept)); err != nil {
			t.Errorf("%s was removed", kept)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/machine-id")); len(b) != 0 {
		t.Errorf("machine-id = %q, want empty", b)
	}
	shadow, _ := os.ReadFile(filepath.Join(root, "etc/shadow"))
	group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
	if !strings.HasPrefix(string(shadow), "root:!$6$") || strings.Contains(string(shadow), "bob") || string(group) != "root:x:0:\nsudo:x:27:\n" {
		t.Errorf("shadow:\n%s\ngroup:\n%s", shadow, group)
	}
	fresh, _ := OpenDir(root)
	got := statuses(t, fresh, "SEC001", "SEC002", "SEC003", "SEC004", "SEC006")
	for id, s := range got {
		if s != Passed {
			t.Errorf("%s after deprovision: %s", id, s)
		}
	}
}

func TestDeprovisionImageRemovesAHome(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	img := testimage.Copy(t, "disk-debian-mbr")
	// Give the image's user a home with files, as a build leaves it.
	host := filepath.Join(t.TempDir(), "h")
	os.WriteFile(host, []byte("ls\n"), 0o644)
	for _, c := range []string{"mkdir /home/debian", "mkdir /home/debian/.ssh", "write " + host + " /home/debian/.bash_history", "write " + host + " /home/debian/.ssh/authorized_keys"} {
		if out, err := exec.Command("debugfs", "-w", "-R", c, img+"?offset=1048576").CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", c, err, out)
		}
	}
	target, err := Opener(img, "")(true)
	if err != nil {
		t.Fatal(err)
	}
	plan, _, err := PlanDeprovision(target, true)
	if err != nil {
		t.Fatal(err)
	}
	after := applyToImage(t, plan, target, img, 1<<20)
	if _, err := after.Guest.Root.Lstat("home/debian"); err == nil {
		t.Fatal("home/debian is still there")
	}
	if s := statuses(t, after, "SEC001", "SEC004"); s["SEC001"] != Passed || s["SEC004"] != Passed {
		t.Fatalf("%v", s)
	}
}

// Deprovision, the verb behind vhdprep deprovision, writes its plan and
// holds it to its claims; a dry run writes nothing.
func TestDeprovisionVerb(t *testing.T) {
	dir := tree(t, map[string]string{"etc/machine-id": "0123456789abcdef0123456789abcdef\n"}).Name
	opts := DeprovisionOptions{Open: func(bool) (*Target, error) { return OpenDir(dir) }, DryRun: true}
	res, err := Deprovision(context.Background(), opts)
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/machine-id")); err != nil || res.Written || len(b) == 0 {
		t.Fatalf("dry run: %v %+v %q", err, res, b)
	}
	opts.DryRun = false
	res, err = Deprovision(context.Background(), opts)
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/machine-id")); err != nil || !res.Written || len(b) != 0 {
		t.Fatalf("deprovision: %v %+v %q", err, res, b)
	}
}

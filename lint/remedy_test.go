package lint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/rootfs/write"
)

// remedyFixtures are trees on which check's fixable must agree with what
// the commands do, beyond repairCases (one failing tree per repair), with
// the rules fix or another command cannot repair there although they fail.
func remedyFixtures(t *testing.T) map[string]struct {
	files      map[string]string
	notFixable []string
} {
	initramfs, err := os.ReadFile(testimage.Path(t, "initrd-nostorvsc-gzip"))
	if err != nil {
		t.Fatal(err)
	}
	const v = "6.1.0-13-cloud-amd64"
	systemd := map[string]string{"usr/lib/systemd/systemd": "", "usr/sbin/sshd": ""}
	with := func(base map[string]string, more map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range []map[string]string{base, more} {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	return map[string]struct {
		files      map[string]string
		notFixable []string
	}{
		// dracut takes the drivers for the next build; the keyboard
		// needs another kernel, which no repair gives.
		"drivers with dracut": {with(systemd, map[string]string{"usr/bin/dracut": "", "boot/vmlinuz-" + v: "", "boot/initrd.img-" + v: string(initramfs), "boot/config-" + v: "CONFIG_HYPERV=m\n"}), nil},
		"keyboard only":       {with(systemd, map[string]string{"boot/vmlinuz-" + v: "", "boot/config-" + v: "CONFIG_HYPERV=y\nCONFIG_HYPERV_STORAGE=y\nCONFIG_HYPERV_NET=y\nCONFIG_BLK_DEV_NVME=y\n", "etc/initramfs-tools/modules": ""}), []string{"DRV006"}},
		"no initramfs tool":   {with(systemd, map[string]string{"boot/vmlinuz-" + v: "", "boot/initrd.img-" + v: string(initramfs)}), []string{"DRV002", "DRV006"}},
		// Only the image tells /dev/sda1's UUID; a tree has none.
		"fstab by device in a tree": {with(systemd, map[string]string{"etc/fstab": "/dev/sda1 / ext4 defaults 0 1\n"}), []string{"FST001"}},
		"sshd not enabled":          {systemd, []string{"SSH001"}},
		"no initramfs":              {with(systemd, map[string]string{"boot/vmlinuz-" + v: "", "boot/config-" + v: "CONFIG_HYPERV_KEYBOARD=m\n", "etc/initramfs-tools/modules": ""}), nil},
		"openrc guest":              {map[string]string{"sbin/openrc": "", "etc/hostname": "x"}, []string{"AGT001"}},
		"credentials and state": {with(systemd, map[string]string{
			"etc/passwd":                    "root:x:0:0:root:/root:/bin/bash\nsvc:x:120:120::/var/lib/svc:/bin/sh\nann:x:1000:1000::/home/ann:/bin/bash\n",
			"etc/shadow":                    "root:$6$x:1::::::\nsvc:$6$y:1::::::\nann:$6$z:1::::::\n",
			"root/.ssh/authorized_keys":     "ssh-ed25519 AAAA root@build\n",
			"home/ann/.ssh/authorized_keys": "ssh-ed25519 AAAA ann@build\n",
			"home/ann/.bash_history":        "ls\n",
			"etc/ssh/ssh_host_ed25519_key":  "k",
			"etc/machine-id":                "0123456789abcdef0123456789abcdef\n",
			"var/lib/waagent/provisioned":   "",
		}), nil},
	}
}

// check's fixable is what the commands really do, rule by rule, on the
// same tree: a finding check says vhdprep repairs names the command, and
// that command (fix --dry-run, deprovision's plan, agent inject's
// precondition) plans a change for the rule; a rule fix plans a change for
// has a finding check says fix repairs. Every rule the catalog marks
// fixable is seen fixable somewhere, and the rules listed as not fixable
// on a fixture (fix said "cannot fix" there) are not.
func TestCheckSaysFixableExactlyWhereACommandRepairs(t *testing.T) {
	type fixture struct {
		files      map[string]string
		notFixable []string
	}
	fixtures := map[string]fixture{}
	for name, files := range repairCases {
		fixtures["repair "+name] = fixture{files: files}
	}
	for name, f := range remedyFixtures(t) {
		fixtures[name] = fixture(f)
	}
	seen := map[string]bool{}
	for name, fx := range fixtures {
		t.Run(name, func(t *testing.T) {
			target := tree(t, fx.files)
			rep := Run(target, Catalog(), nil)
			plan, err := PlanFix(target, Catalog(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			dep, _, err := PlanDeprovision(target, true)
			if err != nil {
				t.Fatal(err)
			}
			planned := func(rules []RuleFix, id string) bool {
				for _, r := range rules {
					if r.ID == id && len(r.Files) > 0 && r.Error == "" {
						return true
					}
				}
				return false
			}
			for _, o := range rep.Outcomes {
				cmd := commandOf(o)
				for _, f := range o.Findings {
					if f.Fixable != (f.Command != "") {
						t.Errorf("%s: fixable %v with command %q", o.ID, f.Fixable, f.Command)
					}
					if strings.Contains(f.Fix, "IMAGE") || strings.Contains(f.Fix, "can do this") {
						t.Errorf("%s: hint %q is not a command to paste", o.ID, f.Fix)
					}
				}
				switch {
				case cmd == "":
				case strings.HasPrefix(cmd, "vhdprep fix --root "+target.Name+" --only "+o.ID):
				case cmd == "vhdprep deprovision --root "+target.Name || cmd == "vhdprep deprovision --root "+target.Name+" --remove-users":
					if !planned(dep.Rules, o.ID) {
						t.Errorf("%s: check says %q, but deprovision plans nothing for it", o.ID, cmd)
					}
				case cmd == "vhdprep agent inject --root "+target.Name:
					if err := injectSupported(target); err != nil {
						t.Errorf("%s: check says %q, but inject refuses: %v", o.ID, cmd, err)
					}
				default:
					t.Errorf("%s: command %q", o.ID, cmd)
				}
				byFix := strings.HasPrefix(cmd, "vhdprep fix ")
				if byFix != planned(plan.Rules, o.ID) {
					t.Errorf("%s: check's command %q, but fix --dry-run plans %+v", o.ID, cmd, plan.Rules)
				}
				if cmd != "" {
					seen[o.ID] = true
				}
				if contains(fx.notFixable, o.ID) && (o.Status != Failed || cmd != "") {
					t.Errorf("%s: %s, with command %q; want failing and not fixable", o.ID, o.Status, cmd)
				}
			}
		})
	}
	// KRN009 and FST001 need the image's UUIDs: TestFixNamesDevicesByUUID
	// and TestFixableOnAnImage have them.
	for _, r := range Catalog() {
		if r.Fixable && !seen[r.ID] && r.ID != "KRN009" && r.ID != "FST001" {
			t.Errorf("%s is fixable in the catalog, but no fixture showed a command for it", r.ID)
		}
	}
}

// On an image, KRN009 and FST001 name the filesystem's UUID: check offers
// fix exactly where fix --dry-run changes something, with the image's path.
func TestFixableOnAnImage(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	img := testimage.Copy(t, "disk-debian-mbr")
	w, err := write.OpenExt4(img, 1<<20, 95<<20)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteFile("/etc/fstab", []byte("/dev/sda1  /  ext4  errors=remount-ro  0 1\nUUID=0000-data /data ext4 defaults 0 2\n"), 0o644, 0, 0)
	w.Mkdir("/etc/kernel", 0o755, 0, 0)
	w.WriteFile("/etc/kernel/cmdline", []byte("root=/dev/sda1 ro\n"), 0o644, 0, 0)
	if err := w.Apply(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	target, err := OpenImage(img)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	rep := Run(target, Catalog(), nil)
	plan, err := PlanFix(target, Catalog(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range rep.Outcomes {
		cmd := commandOf(o)
		planned := false
		for _, r := range plan.Rules {
			planned = planned || r.ID == o.ID && len(r.Files) > 0 && r.Error == ""
		}
		if strings.HasPrefix(cmd, "vhdprep fix ") != planned {
			t.Errorf("%s: check's command %q, fix plans %v", o.ID, cmd, planned)
		}
		if cmd != "" && !strings.Contains(cmd, " "+img) {
			t.Errorf("%s: command %q does not name the image", o.ID, cmd)
		}
	}
	for _, id := range []string{"KRN009", "FST001"} {
		if cmd := commandOf(outcomeOf(rep, id)); cmd != "vhdprep fix "+img+" --only "+id {
			t.Errorf("%s: command %q", id, cmd)
		}
	}
}

func outcomeOf(rep *Report, id string) Outcome {
	for _, o := range rep.Outcomes {
		if o.ID == id {
			return o
		}
	}
	return Outcome{}
}

// A hint that converts names a fixed VHD other than the image: a dynamic
// disk.vhd converts to disk-fixed.vhd, never onto itself.
func TestConvertHintsNeverNameTheImage(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.vhd")
	if err := os.Symlink(testimage.Path(t, "disk-debian-mbr-vhd"), img); err != nil {
		t.Fatal(err)
	}
	target, err := OpenImage(img)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	o := outcomeOf(Run(target, Catalog(), nil), "VHD001")
	if len(o.Findings) != 1 || o.Findings[0].Fix != "vhdprep convert "+img+" disk-fixed.vhd" {
		t.Fatalf("VHD001: %+v", o)
	}
}

package main

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

func TestFixDryRunThenFix(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	img := testimage.Copy(t, "disk-debian-mbr")
	sum := func() [32]byte { b, _ := os.ReadFile(img); return sha256.Sum256(b) }
	before := sum()
	code, out := runBin(t, "fix", img, "--dry-run")
	if code != 0 || !strings.Contains(out, "+GRUB_CMDLINE_LINUX=\"console=ttyS0,115200n8") || !strings.Contains(out, "--- a/boot/grub/grub.cfg") {
		t.Fatalf("fix --dry-run: exit %d\n%s", code, out)
	}
	if sum() != before {
		t.Fatal("--dry-run changed the image")
	}
	if code, out = runBin(t, "fix", img, "--only", "KRN001"); code != 0 || !strings.Contains(out, "check after fix") {
		t.Fatalf("fix: exit %d\n%s", code, out)
	}
	// The other rules still fail: check exits 1, having reported.
	if code, out = runBin(t, "check", img, "--output", "json"); code != exitGate || !strings.Contains(out, `"id": "KRN001",`+"\n"+`      "severity": "error",`+"\n"+`      "status": "pass"`) {
		t.Fatalf("KRN001 after fix: exit %d\n%s", code, out)
	}
	// All of it, then again: the second run finds nothing to change.
	if code, out = runBin(t, "fix", img); code != 0 {
		t.Fatalf("fix: exit %d\n%s", code, out)
	}
	fixed := sum()
	if code, out = runBin(t, "fix", img); code != 0 || strings.Contains(out, ": [/") || sum() != fixed {
		t.Fatalf("second fix changed something: exit %d\n%s", code, out)
	}
	if code, out = runBin(t, "fix", img, "--only", "NOPE42"); code != exitUsage || !strings.Contains(out, "NOPE42") {
		t.Fatalf("fix --only NOPE42: exit %d\n%s", code, out)
	}
}

func TestDeprovision(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	img := testimage.Copy(t, "disk-debian-mbr")
	sum := func() [32]byte { b, _ := os.ReadFile(img); return sha256.Sum256(b) }
	before := sum()
	code, out := runBin(t, "deprovision", img, "--dry-run")
	if code != 0 || !strings.Contains(out, "accounts kept (use --remove-users to remove them): debian") || sum() != before {
		t.Fatalf("deprovision --dry-run: exit %d\n%s", code, out)
	}
	if code, out = runBin(t, "deprovision", img, "--remove-users"); code != 0 {
		t.Fatalf("deprovision: exit %d\n%s", code, out)
	}
	// Deprovision repairs only its own rules: check still fails others.
	if code, out = runBin(t, "check", img, "--output", "json"); code != exitGate {
		t.Fatalf("check after deprovision: exit %d\n%s", code, out)
	}
	for _, id := range []string{"SEC001", "SEC004"} {
		if !strings.Contains(out, `"id": "`+id+`",`+"\n"+`      "severity": "`) || strings.Contains(out, `"rule": "`+id+`"`) {
			t.Errorf("%s still has findings after deprovision", id)
		}
	}
}

// fix says what it changed per rule, what the user must still do (rebuild
// the initramfs), and per rule what check says afterwards.
func TestFixReportsNotesAndTheCheckAfter(t *testing.T) {
	initramfs, err := os.ReadFile(testimage.Path(t, "initrd-nostorvsc-gzip"))
	if err != nil {
		t.Fatal(err)
	}
	const v = "6.1.0-13-cloud-amd64"
	root := t.TempDir()
	for name, content := range map[string]string{
		"boot/vmlinuz-" + v:       "",
		"boot/initrd.img-" + v:    string(initramfs),
		"usr/bin/dracut":          "",
		"usr/lib/systemd/systemd": "",
		"etc/dhcp/dhclient.conf":  "timeout 60;\n",
	} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(root, name), []byte(content), 0o644)
	}
	code, out := runBin(t, "fix", "--root", root, "--only", "DRV002,NET004,AGT001")
	for _, want := range []string{
		"DRV002: [/etc/dracut.conf.d/90-vhdprep-azure.conf]",
		// The tree has no modules to add: fix says so, with the rebuild.
		"DRV002: note: the initramfs of kernel " + v + " is left as it is: kernel " + v + " has no modules directory; install the modules (or a kernel built with them), boot the image (or chroot into it) and run: dracut -f --kver " + v,
		"NET004: [/etc/dhcp/dhclient.conf]",
		"DRV002 after fix: fail",
		"NET004 after fix: pass",
		"AGT001: not for fix: run vhdprep agent inject --root " + root,
		"check after fix:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("fix output lacks %q", want)
		}
	}
	if code != 0 {
		t.Errorf("exit %d", code)
	}
	if t.Failed() {
		t.Log(out)
	}
}

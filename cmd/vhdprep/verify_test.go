package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/rootfs/write"
)

// deprovision --remove-users removes the accounts but not root's
// authorized_keys, so SEC001 still fails: it must not say success.
func TestDeprovisionThatLeavesItsRuleFailingExitsOne(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	img := testimage.Copy(t, "disk-debian-mbr")
	editRoot(t, img, func(w write.FS) {
		w.Mkdir("/root/.ssh", 0o700, 0, 0)
		w.WriteFile("/root/.ssh/authorized_keys", []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0000000000000000000000000000000000000000000 build@host\n"), 0o600, 0, 0)
	})
	code, out := runBin(t, "deprovision", img, "--remove-users")
	want := "vhdprep: SEC001: vhdprep deprovision changed the image for it, but check still finds: account root has SSH authorized_keys (/root/.ssh/authorized_keys)"
	if code != exitGate || !strings.Contains(out, want) {
		t.Fatalf("deprovision: exit %d, want 1 and %q:\n%s", code, want, out)
	}
	for _, id := range []string{"SEC002", "SEC003", "SEC004", "SEC006"} {
		if strings.Contains(out, id+":") && !strings.Contains(out, id+": [") && !strings.Contains(out, id+": nothing") {
			t.Errorf("%s named as not repaired:\n%s", id, out)
		}
	}
}

// fix writes cloud-init's Azure datasource in a drop-in read after every
// other: a builder's drop-in read after 99-vhdprep-azure.cfg (Proxmox's
// 99_pve.cfg) left AGT005 failing, which fix now says with exit 1.
func TestFixHoldsItselfToItsClaims(t *testing.T) {
	root := t.TempDir()
	for name, content := range map[string]string{
		"usr/bin/cloud-init":               "",
		"etc/cloud/cloud.cfg":              "datasource_list: [ NoCloud, Azure ]\n",
		"etc/cloud/cloud.cfg.d/99_pve.cfg": "datasource_list: [ NoCloud, ConfigDrive ]\n",
		"etc/dhcp/dhclient.conf":           "timeout 60;\n",
	} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(root, name), []byte(content), 0o644)
	}
	code, out := runBin(t, "fix", "--root", root, "--only", "AGT005,NET004")
	if code != 0 || !strings.Contains(out, "AGT005: [/etc/cloud/cloud.cfg.d/zz-vhdprep-azure.cfg]") || !strings.Contains(out, "AGT005 after fix: pass") || !strings.Contains(out, "NET004 after fix: pass") {
		t.Fatalf("fix: exit %d\n%s", code, out)
	}
}

// The image: /etc/default/grub is one GRUB_CMDLINE_LINUX_DEFAULT
// line, as image builders write it. fix puts every parameter in one
// GRUB_CMDLINE_LINUX line (the shell keeps only the last of several), so
// after fix check passes KRN001-KRN003 and KRN008 and sh sources them all.
func TestFixOnAnImageWhoseDefaultsLackGrubCmdlineLinux(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo", "sh")
	img := testimage.Copy(t, "disk-debian-mbr")
	editRoot(t, img, func(w write.FS) {
		w.WriteFile("/etc/default/grub", []byte(`GRUB_CMDLINE_LINUX_DEFAULT="quiet"`+"\n"), 0o644, 0, 0)
	})
	if code, out := runBin(t, "fix", img); code != 0 {
		t.Fatalf("fix: exit %d\n%s", code, out)
	}
	for _, id := range []string{"KRN001", "KRN002", "KRN003", "KRN008"} {
		if s := checkStatus(t, img, id); s != "pass" {
			t.Errorf("%s after fix: %s", id, s)
		}
	}
	_, grub := runBin(t, "cat", img, "/etc/default/grub")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "grub"), []byte(grub), 0o644)
	cmd := exec.Command("sh", "-c", `. ./grub; echo "$GRUB_CMDLINE_LINUX"`)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"console=ttyS0,115200n8", "earlyprintk=ttyS0,115200", "rootdelay=300"} {
		if !strings.Contains(" "+strings.TrimSpace(string(out))+" ", " "+want+" ") {
			t.Errorf("GRUB_CMDLINE_LINUX as sh sources it lacks %s: %q\n/etc/default/grub:\n%s", want, out, grub)
		}
	}
}

package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// xfsDisk builds a disk whose root is XFS, which vhdprep reads but does not
// write: a systemd guest with a kernel command line to fix, host keys and
// a machine ID to deprovision.
func xfsDisk(t *testing.T) string {
	t.Helper()
	testimage.RequireTools(t, "mkfs.xfs", "sfdisk")
	img := filepath.Join(t.TempDir(), "xfs.img")
	const script = `. testdata/images/lib.sh
d=$(mktemp -d)
mkdir -p $d/usr/bin $d/usr/sbin $d/usr/lib/systemd $d/etc/default $d/etc/ssh
cp /bin/true $d/usr/bin/true
printf '#!/bin/sh\n' > $d/usr/lib/systemd/systemd
ln -s ../lib/systemd/systemd $d/usr/sbin/init
echo ID=debian > $d/etc/os-release
echo 'GRUB_CMDLINE_LINUX_DEFAULT="quiet"' > $d/etc/default/grub
echo key > $d/etc/ssh/ssh_host_ed25519_key
echo 0123456789abcdef0123456789abcdef > $d/etc/machine-id
xfs_proto $d > $d.proto
truncate -s 64M $1.xfs
mkfs.xfs -q -f -p $d.proto $1.xfs
truncate -s 66M $1
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q $1
place $1.xfs $1 $MiB
rm -rf $d $d.proto $1.xfs`
	cmd := exec.Command("bash", "-c", script, "bash", img)
	cmd.Dir = testimage.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building an XFS disk: %v\n%s", err, out)
	}
	return img
}

// fix, deprovision and agent inject refuse an image they cannot write
// (qcow2, a dynamic VHD, an XFS root) before they show a plan, with the
// remedy for the command that ran; --dry-run shows the plan and says the
// real run would be refused.
func TestCommandsRefuseUnwritableImagesBeforeThePlan(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	images := map[string]struct {
		path   string
		remedy string // with %s for the command
	}{
		"qcow2":       {testimage.Copy(t, "disk-debian-mbr-qcow2"), "writes only raw images and fixed VHDs: run 'vhdprep convert %[2]s %[3]s', then 'vhdprep %[1]s %[3]s'"},
		"dynamic VHD": {testimage.Copy(t, "disk-debian-mbr-vhd"), "writes only raw images and fixed VHDs: run 'vhdprep convert %[2]s %[3]s', then 'vhdprep %[1]s %[3]s'"},
		"XFS root":    {xfsDisk(t), "/ is xfs, which vhdprep cannot write (only ext2/3/4): mount the image's filesystems (e.g. with guestmount, or a loop device) and run 'vhdprep %[1]s --root MOUNTPOINT'"},
	}
	commands := []struct {
		args []string
		plan string // a line of the plan the command shows
	}{
		{[]string{"fix"}, "KRN001: ["},
		{[]string{"deprovision"}, "SEC004: [/etc/machine-id]"},
		{[]string{"agent", "inject"}, "write  /usr/sbin/vhdprep-agent"},
	}
	for name, img := range images {
		for _, c := range commands {
			command := strings.Join(c.args, " ")
			t.Run(name+"/"+command, func(t *testing.T) {
				sum := fileSum(t, img.path)
				remedy := strings.ReplaceAll(img.remedy, "%[1]s", command)
				remedy = strings.ReplaceAll(remedy, "%[2]s", img.path)
				remedy = strings.ReplaceAll(remedy, "%[3]s", strings.TrimSuffix(filepath.Base(img.path), ".img")+"-fixed.vhd")
				code, out := runBin(t, append(c.args, img.path)...)
				if code != exitFailed || !strings.Contains(out, remedy) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
					t.Errorf("%s: exit %d, want 3 and one line with %q:\n%s", command, code, remedy, out)
				}
				if command != "fix" && strings.Contains(out, "vhdprep fix") {
					t.Errorf("%s names vhdprep fix:\n%s", command, out)
				}
				code, out = runBin(t, append(c.args, img.path, "--dry-run")...)
				if code != 0 || !strings.Contains(out, c.plan) || !strings.Contains(out, "the real run would be refused: ") || !strings.Contains(out, remedy) {
					t.Errorf("%s --dry-run: exit %d, want the plan (%q) and the refusal:\n%s", command, code, c.plan, out)
				}
				if fileSum(t, img.path) != sum {
					t.Errorf("%s changed the image it refused", command)
				}
			})
		}
	}
}

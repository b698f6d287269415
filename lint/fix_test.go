package lint

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/kernel"
	"github.com/vhdprep/vhdprep/rootfs/write"
)

func statuses(t *testing.T, target *Target, ids ...string) map[string]Status {
	t.Helper()
	out := map[string]Status{}
	for _, o := range Run(target, Catalog(), nil).Outcomes {
		if contains(ids, o.ID) {
			out[o.ID] = o.Status
		}
	}
	return out
}

// guestSums checksums every regular file of a target's guest.
func guestSums(t *testing.T, target *Target) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	fs.WalkDir(target.Guest.Root, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := target.Guest.Root.ReadFile(p)
			out[p] = sha256.Sum256(b)
		}
		return nil
	})
	return out
}

func TestFixKernelCommandLineInAnImage(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	img := testimage.Copy(t, "disk-debian-mbr")
	target, err := Opener(img, "")(true)
	if err != nil {
		t.Fatal(err)
	}
	before := guestSums(t, target)
	plan, err := PlanFix(target, Catalog(), nil, []string{"KRN001", "KRN004"})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Rules) != 2 || len(plan.Changes) != 2 {
		t.Fatalf("plan %+v", plan.Rules)
	}
	after := applyToImage(t, plan, target, img, 1<<20)
	// KRN008: fix edits /etc/default/grub and grub.cfg alike, so they
	// still agree.
	got := statuses(t, after, "KRN001", "KRN002", "KRN004", "KRN008")
	if got["KRN001"] != Passed || got["KRN004"] != Passed || got["KRN002"] != Failed || got["KRN008"] != Passed {
		t.Fatalf("after fixing KRN001 and KRN004 only: %v", got)
	}
	for p, sum := range guestSums(t, after) {
		if p != "etc/default/grub" && p != "boot/grub/grub.cfg" && before[p] != sum {
			t.Errorf("%s changed though no repair touched it", p)
		}
	}
	b, _ := after.Guest.Root.ReadFile("etc/default/grub")
	if !strings.Contains(string(b), `GRUB_CMDLINE_LINUX="console=ttyS0,115200n8"`) || !strings.Contains(string(b), "GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`") {
		t.Fatalf("/etc/default/grub:\n%s", b)
	}
	// Run twice: nothing left to change.
	again, err := PlanFix(after, Catalog(), nil, []string{"KRN001", "KRN004"})
	if err != nil || len(again.Changes) != 0 {
		t.Fatalf("second fix: %v %+v", err, again.Changes)
	}
}

func TestFixRHELBootEntriesAndGrubenv(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"boot/loader/entries/a.conf":               "title RHEL\noptions $kernelopts\n",
		"boot/grub2/grubenv":                       "# GRUB Environment Block\nkernelopts=root=/dev/mapper/rhel-root ro rhgb quiet\n" + strings.Repeat("#", 950),
		"etc/default/grub":                         "GRUB_CMDLINE_LINUX=\"rhgb quiet\"\n",
		"etc/fstab":                                "/dev/mapper/rhel-root / xfs defaults 0 0\n/dev/mapper/rhel-swap none swap defaults 0 0\n",
		"etc/udev/rules.d/70-persistent-net.rules": "x",
	}
	for p, c := range files {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(c), 0o644)
	}
	os.Truncate(filepath.Join(root, "boot/grub2/grubenv"), 1024)
	target, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := PlanFix(target, Catalog(), nil, []string{"KRN001", "KRN004", "SWP001", "NET003"})
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Apply(target); err != nil {
		t.Fatal(err)
	}
	env, _ := os.ReadFile(filepath.Join(root, "boot/grub2/grubenv"))
	if len(env) != 1024 || !strings.Contains(string(env), "kernelopts=root=/dev/mapper/rhel-root ro console=ttyS0,115200n8\n") {
		t.Fatalf("grubenv (%d bytes):\n%s", len(env), env)
	}
	// The entry expands kernelopts, so it has console= through grubenv
	// and needs it no second time on its own line.
	if b, _ := os.ReadFile(filepath.Join(root, "boot/loader/entries/a.conf")); string(b) != files["boot/loader/entries/a.conf"] {
		t.Errorf("the BLS entry changed:\n%s", b)
	}
	fstab, _ := os.ReadFile(filepath.Join(root, "etc/fstab"))
	if !strings.Contains(string(fstab), "\n# disabled by vhdprep (SWP001") || !strings.HasPrefix(string(fstab), "/dev/mapper/rhel-root") {
		t.Fatalf("fstab:\n%s", fstab)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/udev/rules.d/70-persistent-net.rules")); err == nil {
		t.Fatal("persistent-net rules not removed")
	}
	fresh, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	got := statuses(t, fresh, "KRN001", "KRN004", "KRN008", "SWP001", "NET003")
	for id, s := range got {
		if s != Passed {
			t.Errorf("%s after fix: %s", id, s)
		}
	}
}

func TestFixRefusesLogicalVolumes(t *testing.T) {
	target, err := Opener(testimage.Copy(t, "disk-rhel-lvm"), "")(true)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	plan, err := PlanFix(target, Catalog(), nil, []string{"SWP001"})
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Apply(target); err == nil || !strings.Contains(err.Error(), "fix --root") {
		t.Fatalf("apply on an LVM root: %v", err)
	}
}

func TestFixInsideALinearLogicalVolume(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	img := testimage.Copy(t, "disk-debian-lvm")
	target, err := Opener(img, "")(true)
	if err != nil {
		t.Fatal(err)
	}
	var offset int64
	for _, v := range target.Guest.Layout.Volumes {
		if v.Name == "vg0/root" {
			offset, err = target.Guest.Layout.OnDisk(v)
		}
	}
	if err != nil || offset <= 1<<20 {
		t.Fatalf("root volume vg0/root at %d: %v", offset, err)
	}
	before := guestSums(t, target)
	plan, err := PlanFix(target, Catalog(), nil, []string{"KRN001"})
	if err != nil || len(plan.Changes) == 0 {
		t.Fatalf("plan: %v %+v", err, plan.Rules)
	}
	after := applyToImage(t, plan, target, img, offset)
	if s := statuses(t, after, "KRN001"); s["KRN001"] != Passed {
		t.Fatalf("KRN001 after fix: %v", s)
	}
	assertOnlyChanged(t, before, guestSums(t, after), plan.Changes)
}

// applyToImage applies a plan to an image, closes the target, checks the
// filesystem at offset with e2fsck -fn and opens the image afresh.
func applyToImage(t *testing.T, plan interface{ Apply(*Target) error }, target *Target, img string, offset int64) *Target {
	t.Helper()
	if err := plan.Apply(target); err != nil {
		t.Fatal(err)
	}
	target.Close()
	if out, err := exec.Command("e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, offset)).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck: %v\n%s", err, out)
	}
	after, err := OpenImage(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { after.Close() })
	return after
}

// assertOnlyChanged fails when a file other than those the plan changes
// differs, or appeared or vanished.
func assertOnlyChanged(t *testing.T, before, after map[string][32]byte, changes []write.Change) {
	t.Helper()
	meant := map[string]bool{}
	for _, c := range changes {
		meant[strings.TrimPrefix(c.Path, "/")] = true
	}
	for p, sum := range before {
		if a, ok := after[p]; !meant[p] && (!ok || a != sum) {
			t.Errorf("%s changed though no repair meant to touch it", p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok && !meant[p] {
			t.Errorf("%s appeared though no repair meant to write it", p)
		}
	}
}

// repairCases are, per repair (RULE or RULE/variant), a tree that fails
// the rule.
var repairCases = map[string]map[string]string{
	"KRN001": {"etc/kernel/cmdline": "root=UUID=x ro quiet\n"},
	"KRN002": {"boot/extlinux/extlinux.conf": "LABEL l\n  APPEND root=UUID=x\n"},
	"KRN003": {"etc/default/grub": "GRUB_TIMEOUT=1\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"},
	"KRN004": {"etc/default/grub": "GRUB_CMDLINE_LINUX_DEFAULT='quiet splash'\n"},
	"KRN005": {"boot/loader/entries/e.conf": "title e\noptions root=UUID=x crashkernel=auto ro\n"},
	"SWP001": {"etc/fstab": "UUID=a / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n"},
	"NET003": {"etc/udev/rules.d/70-persistent-net.rules": "x"},
	"SSH002": {"usr/sbin/sshd": "", "etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nClientAliveInterval 0\n", "etc/ssh/sshd_config.d/keep": ""},
	// The setting sshd reads first is changed where it stands: in the main
	// file before its Include, or in a drop-in; without an Include, the
	// main file gains it.
	"SSH002/before the include": {"usr/sbin/sshd": "", "etc/ssh/sshd_config": "ClientAliveInterval 0\nInclude /etc/ssh/sshd_config.d/*.conf\n", "etc/ssh/sshd_config.d/50-cloud.conf": "ClientAliveInterval 600\n"},
	"SSH002/in a drop-in":       {"usr/sbin/sshd": "", "etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\n", "etc/ssh/sshd_config.d/01-builder.conf": "ClientAliveInterval=0\n"},
	"SSH002/no include":         {"usr/sbin/sshd": "", "etc/ssh/sshd_config": "Port 22\n", "etc/ssh/sshd_config.d/50-azure.conf": "ClientAliveInterval 180\n"},
	"SEC005":                    {"etc/sudoers": "Defaults targetpw\nroot ALL=(ALL) ALL\n"},
	"SEC005/SUSE's stock lines": {"etc/sudoers": "Defaults env_reset\nDefaults targetpw   # ask for the password of the target user i.e. root\nALL   ALL=(ALL) ALL   # WARNING! Only use this together with 'Defaults targetpw'!\nroot ALL=(ALL) ALL\n"},
	"SEC005/in a list, twice":   {"etc/sudoers": "Defaults env_reset, targetpw\n#includedir /etc/sudoers.d\n", "etc/sudoers.d/10-builder": "Defaults:%wheel targetpw\nDefaults targetpw\n"},
	"DRV004":                    {"etc/modprobe.d/cis.conf": "install udf /bin/true\nblacklist udf\ninstall cramfs /bin/true\n", "boot/vmlinuz-6.1": "", "boot/config-6.1": "CONFIG_UDF_FS=m\n"},
	"DRV005":                    {"usr/lib/modprobe.d/x.conf": "blacklist vfat\n", "boot/vmlinuz-6.1": "", "boot/config-6.1": "CONFIG_VFAT_FS=y\n"},
	"AGT002":                    {"etc/waagent.conf": "AutoUpdate.Enabled=n\n", "usr/lib/python3/dist-packages/azurelinuxagent/common/version.py": "AGENT_VERSION = '2.2.40'\n"},
	"AGT005":                    {"usr/bin/cloud-init": "", "etc/cloud/cloud.cfg": "datasource_list: [NoCloud]\n"},
	"KRN006":                    {"boot/vmlinuz-2.6.32-220.el6.x86_64": "", "etc/kernel/cmdline": "root=UUID=x ro\n"},
	"KRN007":                    {"etc/default/grub": "GRUB_CMDLINE_LINUX=\"libata.atapi_enabled=0 reserve=0x1f0,0x8 ro\"\n"},
	// A tree: root= names the root, whose UUID fstab gives.
	"KRN009/tree": {"etc/fstab": "UUID=41ae6d26-2ea6-4c1b-9e0f-7d3f2b8c9a10 / xfs defaults 0 1\n", "etc/kernel/cmdline": "root=/dev/sda2 ro\n"},
	"NET004":      {"etc/dhcp/dhclient.conf": "# keep\ntimeout 60;\nrequest subnet-mask;\n"},
	"SWP002":      {"etc/waagent.conf": "# keep\nResourceDisk.Format=n\nResourceDisk.EnableSwap=y\nResourceDisk.SwapSizeMB=0\n"},
	"AGT006": {"etc/waagent.conf": "Provisioning.Enabled=y\nResourceDisk.Format=y\n", "etc/cloud/cloud.cfg": "datasource_list: [Azure]\n", "usr/lib/systemd/systemd": "",
		"etc/systemd/system/multi-user.target.wants/walinuxagent.service": "", "etc/systemd/system/cloud-init.target.wants/cloud-init.service": "",
		"usr/lib/systemd/system/walinuxagent.service": "[Unit]\n", "usr/lib/systemd/system/cloud-init.service": "[Unit]\n"},
	"SWP002/vhdprep-agent": {"etc/vhdprep-agent.conf": "# keep\nResourceDisk.Format=n\nResourceDisk.EnableSwap=y\nResourceDisk.SwapSizeMB=0\n"},
	"SWP002/cloud-init":    {"etc/cloud/cloud.cfg": "datasource_list: [Azure]\n", "etc/waagent.conf": "Provisioning.Agent=cloud-init\nResourceDisk.EnableSwap=y\n"},
	"SWP003":               {"etc/waagent.conf": "Provisioning.Agent=cloud-init\nResourceDisk.Format=y\n", "etc/cloud/cloud.cfg": "datasource_list: [Azure]\n"},
}

// Every repair: a tree that fails the rule passes after fix, and a second
// fix changes nothing.
func TestRepairsMakeTheirRulePassAndAreIdempotent(t *testing.T) {
	for name, files := range repairCases {
		id, _, _ := strings.Cut(name, "/")
		t.Run(name, func(t *testing.T) {
			target := tree(t, files)
			if o := outcome(t, target, id); o.Status != Failed {
				t.Fatalf("the tree does not fail %s: %+v", id, o)
			}
			before := guestSums(t, target)
			plan, err := PlanFix(target, Catalog(), nil, []string{id})
			if err != nil || len(plan.Rules) != 1 || plan.Rules[0].Error != "" || len(plan.Changes) == 0 {
				t.Fatalf("plan: %v %+v", err, plan.Rules)
			}
			if err := plan.Apply(target); err != nil {
				t.Fatal(err)
			}
			fresh, _ := OpenDir(target.Name)
			if o := outcome(t, fresh, id); o.Status != Passed {
				t.Fatalf("after fix %s: %+v", id, o)
			}
			assertOnlyChanged(t, before, guestSums(t, fresh), plan.Changes)
			again, err := PlanFix(fresh, Catalog(), nil, []string{id})
			if err != nil || len(again.Changes) != 0 {
				t.Fatalf("second fix changes %+v (%v)", again.Changes, err)
			}
		})
	}
}

// The catalog's FIX column tells the truth: a rule marked fixable has a
// repair, or its Fix names the vhdprep command that does it.
func TestFixableRulesCanBeFixed(t *testing.T) {
	for _, r := range Catalog() {
		if r.Fixable && r.Repair == nil && !strings.HasPrefix(r.Fix, "vhdprep ") {
			t.Errorf("%s is marked fixable but has no repair and names no command", r.ID)
		}
		if r.Repair != nil && !r.Fixable {
			t.Errorf("%s has a repair but is not marked fixable", r.ID)
		}
	}
}

// KRN009 and FST001 need the image: the UUID that replaces /dev/sda1 is
// read from partition 1's filesystem.
func TestFixNamesDevicesByUUID(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	img := testimage.Copy(t, "disk-debian-mbr")
	target, err := OpenImage(img)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := target.Guest.Root.ReadFile("boot/grub/grub.cfg")
	w, err := write.OpenExt4(img, 1<<20, 95<<20)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteFile("/etc/fstab", []byte("/dev/sda1  /  ext4  errors=remount-ro  0 1\nUUID=0000-data /data ext4 defaults 0 2\n/dev/sda1 none swap sw 0 0\n"), 0o644, 0, 0)
	w.WriteFile("/boot/grub/grub.cfg", []byte(strings.ReplaceAll(string(cfg), "root=UUID=6b8f4c64-1c1e-4f0e-9a0b-00000000d12a", "root=/dev/sda1")), 0o644, 0, 0)
	if err := w.Apply(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	target.Close()
	if target, err = Opener(img, "")(true); err != nil {
		t.Fatal(err)
	}
	if s := statuses(t, target, "KRN009", "FST001"); s["KRN009"] != Failed || s["FST001"] != Failed {
		t.Fatalf("before fix: %v", s)
	}
	before := guestSums(t, target)
	plan, err := PlanFix(target, Catalog(), nil, []string{"KRN009", "SWP001", "FST001"})
	if err != nil {
		t.Fatal(err)
	}
	after := applyToImage(t, plan, target, img, 1<<20)
	if s := statuses(t, after, "KRN009", "SWP001", "FST001"); s["KRN009"] != Passed || s["SWP001"] != Passed || s["FST001"] != Passed {
		t.Fatalf("after fix: %v", s)
	}
	fstab, _ := after.Guest.Root.ReadFile("etc/fstab")
	if want := "UUID=6b8f4c64-1c1e-4f0e-9a0b-00000000d12a  /  ext4  errors=remount-ro  0 1\nUUID=0000-data /data ext4 defaults,nofail 0 2\n" +
		"# disabled by vhdprep (SWP001: swap belongs on the resource disk): /dev/sda1 none swap sw 0 0\n"; string(fstab) != want {
		t.Fatalf("fstab:\n%s", fstab)
	}
	assertOnlyChanged(t, before, guestSums(t, after), plan.Changes)
	again, err := PlanFix(after, Catalog(), nil, []string{"KRN009", "SWP001", "FST001"})
	if err != nil || len(again.Changes) != 0 {
		t.Fatalf("second fix: %v %+v", err, again.Changes)
	}
}

// The driver repairs name the drivers for the next initramfs build in the
// guest's own tool, and say that the present initramfs still lacks them and
// which command rebuilds it; the rules keep failing until then.
func TestFixInitramfsDriversPerTool(t *testing.T) {
	initramfs, err := os.ReadFile(testimage.Path(t, "initrd-nostorvsc-gzip"))
	if err != nil {
		t.Fatal(err)
	}
	const v = "6.1.0-13-amd64" // the recipe's kernel
	for _, c := range []struct {
		tool    string
		files   map[string]string
		want    map[string]string
		rebuild string
	}{
		{"dracut", map[string]string{"usr/bin/dracut": ""},
			map[string]string{"etc/dracut.conf.d/90-vhdprep-azure.conf": dracutConfHeader + "add_drivers+=\" hv_storvsc nvme \"\n"},
			"dracut -f --kver " + v},
		{"initramfs-tools", map[string]string{"etc/initramfs-tools/modules": "# keep\nvirtio_blk"},
			map[string]string{"etc/initramfs-tools/modules": "# keep\nvirtio_blk\nhv_storvsc\nnvme\n"},
			"update-initramfs -u -k " + v},
		{"mkinitcpio", map[string]string{"etc/mkinitcpio.conf": "# keep\nMODULES=(ext4)\nHOOKS=(base udev)\n"},
			map[string]string{"etc/mkinitcpio.conf": "# keep\nMODULES=(ext4 hv_storvsc nvme)\nHOOKS=(base udev)\n"},
			"mkinitcpio -P"},
		{"mkinitfs", map[string]string{"etc/mkinitfs/mkinitfs.conf": "features=\"ata base ext4\"\n"},
			map[string]string{
				"etc/mkinitfs/mkinitfs.conf":                    "features=\"ata base ext4 vhdprep-azure\"\n",
				"etc/mkinitfs/features.d/vhdprep-azure.modules": "kernel/drivers/scsi/hv_storvsc.ko*\nkernel/drivers/nvme/host/nvme.ko*\n"},
			"mkinitfs " + v},
	} {
		t.Run(c.tool, func(t *testing.T) {
			c.files["boot/vmlinuz-"+v] = ""
			c.files["boot/initrd.img-"+v] = string(initramfs)
			target := tree(t, c.files)
			ids := []string{"DRV001", "DRV002", "DRV003", "DRV006"}
			if s := statuses(t, target, ids...); s["DRV002"] != Failed || s["DRV006"] != Failed || s["DRV001"] != Passed {
				t.Fatalf("before fix: %v", s)
			}
			before := guestSums(t, target)
			plan, err := PlanFix(target, Catalog(), nil, ids)
			if err != nil {
				t.Fatal(err)
			}
			if err := plan.Apply(target); err != nil {
				t.Fatal(err)
			}
			for name, want := range c.want {
				if got, _ := os.ReadFile(filepath.Join(target.Name, name)); string(got) != want {
					t.Errorf("/%s:\n%s\nwant:\n%s", name, got, want)
				}
			}
			var notes []string
			for _, r := range plan.Rules {
				notes = append(notes, r.Notes...)
			}
			// The image has no modules to add: the configuration alone.
			if len(notes) != 2 || !strings.Contains(notes[0], "the initramfs of kernel "+v+" is left as it is: kernel "+v+" has no modules directory") || !strings.HasSuffix(notes[0], "run: "+c.rebuild) {
				t.Fatalf("notes: %q", notes)
			}
			fresh, _ := OpenDir(target.Name)
			assertOnlyChanged(t, before, guestSums(t, fresh), plan.Changes)
			if s := statuses(t, fresh, "DRV002"); s["DRV002"] != Failed {
				t.Fatalf("DRV002 passes though the initramfs was not rebuilt: %v", s)
			}
			again, err := PlanFix(fresh, Catalog(), nil, ids)
			if err != nil || len(again.Changes) != 0 {
				t.Fatalf("second fix: %v %+v", err, again.Changes)
			}
		})
	}
}

// A file a repair rewrites keeps its owner and permissions.
func TestFixKeepsOwnerAndMode(t *testing.T) {
	target := tree(t, map[string]string{"etc/dhcp/dhclient.conf": "timeout 60;\n"})
	conf := filepath.Join(target.Name, "etc/dhcp/dhclient.conf")
	if err := os.Chown(conf, 1000, 1001); err != nil {
		t.Skipf("chown needs root: %v", err)
	}
	os.Chmod(conf, 0o640)
	plan, err := PlanFix(target, Catalog(), nil, []string{"NET004"})
	if err != nil || len(plan.Changes) != 1 {
		t.Fatalf("plan: %v %+v", err, plan.Rules)
	}
	if err := plan.Apply(target); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(conf)
	if err != nil {
		t.Fatal(err)
	}
	st := info.Sys().(*syscall.Stat_t)
	if st.Uid != 1000 || st.Gid != 1001 || info.Mode().Perm() != 0o640 {
		t.Fatalf("after fix: uid %d gid %d mode %v", st.Uid, st.Gid, info.Mode())
	}
}

func TestDeviceNamesOfThisDisk(t *testing.T) {
	for dev, part := range map[string]string{"/dev/sda1": "1", "/dev/vda15": "15", "/dev/xvda2": "2", "/dev/nvme0n1p3": "3", "/dev/sdb1": "", "/dev/sda": "", "/dev/nvme1n1p1": "", "/dev/nvme0n2p1": "", "/dev/mapper/x": ""} {
		if got, _ := partitionOfThisDisk(dev); got != part {
			t.Errorf("%s: partition %q of this disk, want %q", dev, got, part)
		}
	}
}

// initramfs-tools sleeps rootdelay seconds before it looks for the root
// device: KRN003 is only information there, and fix does not add the delay.
func TestRootDelayIsLeftOutWhereInitramfsToolsSleepsForIt(t *testing.T) {
	target := tree(t, map[string]string{
		"etc/default/grub":                   "GRUB_CMDLINE_LINUX_DEFAULT=\"console=ttyS0\"\n",
		"etc/initramfs-tools/initramfs.conf": "MODULES=most\n",
	})
	o := outcome(t, target, "KRN003")
	if o.Status != Failed || len(o.Findings) != 1 || o.Findings[0].Severity != Info || o.Findings[0].Fixable ||
		!strings.Contains(o.Findings[0].Fix, "five minutes") {
		t.Fatalf("KRN003 on initramfs-tools: %+v", o)
	}
	plan, err := PlanFix(target, Catalog(), nil, []string{"KRN003"})
	if err != nil || len(plan.Changes) != 0 || len(plan.Rules) != 1 || len(plan.Rules[0].Notes) != 1 ||
		!strings.Contains(plan.Rules[0].Notes[0], "rootdelay=300 not added") {
		t.Fatalf("fix on initramfs-tools: %v %+v", err, plan.Rules)
	}
}

// Ubuntu's cloud images set the command line in /etc/default/grub.d too:
// fix removes from every file, adds where GRUB_CMDLINE_LINUX is last
// assigned, and KRN008 sees the defaults and grub.cfg agree before and after.
func TestFixEditsGrubDropIns(t *testing.T) {
	files := map[string]string{
		"etc/default/grub": "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash\"\nGRUB_CMDLINE_LINUX=\"\"\n",
		"etc/default/grub.d/50-cloudimg-settings.cfg": "GRUB_CMDLINE_LINUX_DEFAULT=\"console=tty1 console=ttyS0 quiet\"\n",
		"etc/default/grub.d/60-delay.cfg":             "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX rootdelay=300\"\n",
		"boot/grub/grub.cfg":                          "menuentry 'Ubuntu' {\n\tlinux\t/boot/vmlinuz-6.5.0-1015-azure root=UUID=abc ro rootdelay=300 console=tty1 console=ttyS0 quiet $vt_handoff\n}\n",
	}
	target := tree(t, files)
	if s := statuses(t, target, "KRN002", "KRN004", "KRN008"); s["KRN002"] != Failed || s["KRN004"] != Failed || s["KRN008"] != Passed {
		t.Fatalf("before fix: %v", s)
	}
	plan, err := PlanFix(target, Catalog(), nil, []string{"KRN002", "KRN004"})
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Apply(target); err != nil {
		t.Fatal(err)
	}
	fresh, err := OpenDir(target.Name)
	if err != nil {
		t.Fatal(err)
	}
	if s := statuses(t, fresh, "KRN002", "KRN004", "KRN008"); s["KRN002"] != Passed || s["KRN004"] != Passed || s["KRN008"] != Passed {
		t.Fatalf("after fix: %v", s)
	}
	for name, want := range map[string]string{
		"etc/default/grub": "GRUB_CMDLINE_LINUX_DEFAULT=\"\"\nGRUB_CMDLINE_LINUX=\"\"\n",
		"etc/default/grub.d/50-cloudimg-settings.cfg": "GRUB_CMDLINE_LINUX_DEFAULT=\"console=tty1 console=ttyS0\"\n",
		"etc/default/grub.d/60-delay.cfg":             "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX rootdelay=300 earlyprintk=ttyS0,115200\"\n",
	} {
		if b, _ := os.ReadFile(filepath.Join(target.Name, name)); string(b) != want {
			t.Errorf("%s:\n%s\nwant\n%s", name, b, want)
		}
	}
}

// Where GRUB_CMDLINE_LINUX's last assignment cannot be edited in place (it
// spans lines), or no file assigns it, fix adds a new assignment at the end.
func TestFixAddsAGrubAssignmentWhereItCannotEdit(t *testing.T) {
	for _, c := range []struct{ name, before, after string }{
		{"continued assignment", "GRUB_CMDLINE_LINUX=\"ro \\\n  quiet\"\n",
			"GRUB_CMDLINE_LINUX=\"ro \\\n  quiet\"\nGRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX console=ttyS0,115200n8\"\n"},
		{"no newline at the end", "GRUB_CMDLINE_LINUX=\"ro\nquiet\"",
			"GRUB_CMDLINE_LINUX=\"ro\nquiet\"\nGRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX console=ttyS0,115200n8\"\n"},
		{"only the default", "GRUB_TIMEOUT=1\nGRUB_CMDLINE_LINUX_DEFAULT=\"\"",
			"GRUB_TIMEOUT=1\nGRUB_CMDLINE_LINUX_DEFAULT=\"\"\nGRUB_CMDLINE_LINUX=\"console=ttyS0,115200n8\"\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := tree(t, map[string]string{"etc/default/grub": c.before})
			plan, err := PlanFix(target, Catalog(), nil, []string{"KRN001"})
			if err != nil {
				t.Fatal(err)
			}
			if err := plan.Apply(target); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(target.Name, "etc/default/grub")); string(b) != c.after {
				t.Fatalf("got\n%s\nwant\n%s", b, c.after)
			}
			fresh, err := OpenDir(target.Name)
			if err != nil {
				t.Fatal(err)
			}
			if s := statuses(t, fresh, "KRN001"); s["KRN001"] != Passed {
				t.Fatalf("KRN001 after fix: %v", s)
			}
			if again, err := PlanFix(fresh, Catalog(), nil, []string{"KRN001"}); err != nil || len(again.Changes) != 0 {
				t.Fatalf("second fix: %v %+v", err, again.Changes)
			}
		})
	}
}

// The driver findings tell a person how the guest's own initramfs tool
// takes extra drivers, and the command that rebuilds it.
func TestRebuildHintPerInitramfsTool(t *testing.T) {
	for marker, want := range map[string]string{
		"usr/sbin/dracut":             `add 'add_drivers+=" hv_vmbus hv_storvsc "' to /etc/dracut.conf.d/90-vhdprep-azure.conf, then: dracut -f --kver 6.1`,
		"etc/initramfs-tools/modules": "add hv_vmbus hv_storvsc to /etc/initramfs-tools/modules (one a line), then: update-initramfs -u -k 6.1",
		"etc/mkinitcpio.conf":         "add hv_vmbus hv_storvsc to MODULES=() in /etc/mkinitcpio.conf, then: mkinitcpio -P",
		"etc/mkinitfs/mkinitfs.conf":  "add a feature listing hv_vmbus hv_storvsc in /etc/mkinitfs/features.d and to features= in /etc/mkinitfs/mkinitfs.conf, then: mkinitfs 6.1",
		"etc/hostname":                "rebuild the initramfs of kernel 6.1 with hv_vmbus hv_storvsc in it",
	} {
		k := kernel.Kernel{Version: "6.1", Initrd: "boot/initrd.img-6.1"}
		if got := rebuildHint(tree(t, map[string]string{marker: ""}), k, []string{"hv_vmbus", "hv_storvsc"}); got != want {
			t.Errorf("with %s:\n got %s\nwant %s", marker, got, want)
		}
	}
	// A kernel without an initramfs gets one made, which update-initramfs
	// -u would not do.
	k := kernel.Kernel{Version: "6.1"}
	if got := rebuildHint(tree(t, map[string]string{"etc/initramfs-tools/modules": ""}), k, []string{"hv_vmbus"}); !strings.HasSuffix(got, "then: update-initramfs -c -k 6.1") {
		t.Errorf("without an initramfs: %s", got)
	}
}

// Fix, the verb behind vhdprep fix: a dry run shows the plan and changes
// nothing; a real run applies it and checks a fresh view of the result.
func TestFixVerb(t *testing.T) {
	dir := tree(t, map[string]string{"etc/dhcp/dhclient.conf": "timeout 60;\n"}).Name
	conf := filepath.Join(dir, "etc/dhcp/dhclient.conf")
	opts := FixOptions{
		Open:    func(bool) (*Target, error) { return OpenDir(dir) },
		Catalog: Catalog(),
		Only:    []string{"NET004"},
		DryRun:  true,
	}
	var shown *Plan
	opts.Planned = func(p *Plan, refused error) { shown = p }
	res, err := Fix(context.Background(), opts)
	if b, _ := os.ReadFile(conf); err != nil || res.After != nil || shown != res.Plan || len(shown.Changes) != 1 || string(b) != "timeout 60;\n" {
		t.Fatalf("dry run: %v %+v %q", err, res, b)
	}
	opts.DryRun = false
	res, err = Fix(context.Background(), opts)
	if err != nil || res.After == nil || outcomeOf(res.After, "NET004").Status != Passed {
		t.Fatalf("fix: %v %+v", err, res)
	}
	if b, _ := os.ReadFile(conf); !strings.Contains(string(b), "timeout 300;") {
		t.Fatalf("dhclient.conf after fix: %q", b)
	}
}

// SEC005's repair takes targetpw out of a Defaults list and keeps the
// rest; a line that sets nothing else is commented out, never deleted.
func TestFixSudoersKeepsTheRest(t *testing.T) {
	target := tree(t, map[string]string{"etc/sudoers": "Defaults env_reset, targetpw\nDefaults targetpw   # ask for the password of the target user i.e. root\n"})
	plan, err := PlanFix(target, Catalog(), nil, []string{"SEC005"})
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Apply(target); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(target.Name, "etc/sudoers"))
	want := "Defaults env_reset # vhdprep (SEC005) took targetpw out\n# disabled by vhdprep (SEC005): Defaults targetpw   # ask for the password of the target user i.e. root\n"
	if string(b) != want {
		t.Errorf("sudoers after fix:\n%s\nwant:\n%s", b, want)
	}
}

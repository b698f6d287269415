package lint

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// hostonlyKernel is the kernel of the initrd-dracut-hostonly recipe.
const hostonlyKernel = "5.14.0-362.el9.x86_64"

// The hostonly dracut initramfs, as the real lsinitramfs lists it, has the
// KVM host's path to its root and none of Hyper-V's.
func TestHostonlyDracutLayout(t *testing.T) {
	testimage.RequireTools(t, "lsinitramfs")
	out, err := exec.Command("lsinitramfs", testimage.Path(t, "initrd-dracut-hostonly")).Output()
	if err != nil {
		t.Fatal(err)
	}
	list := string(out)
	mods := "usr/lib/modules/" + hostonlyKernel + "/kernel/"
	for _, want := range []string{mods + "drivers/block/virtio_blk.ko.xz", mods + "drivers/md/dm-mod.ko.xz", mods + "fs/xfs/xfs.ko.xz", "usr/sbin/lvm", "etc/cmdline.d/90lvm.conf"} {
		if !strings.Contains(list, want+"\n") {
			t.Errorf("lsinitramfs lists no %s", want)
		}
	}
	for _, absent := range []string{"hv_vmbus", "hv_storvsc", "scsi_mod", "sd_mod"} {
		if strings.Contains(list, absent) {
			t.Errorf("lsinitramfs lists %s", absent)
		}
	}
}

func TestRootChain(t *testing.T) {
	read := func(recipe string) string {
		b, err := os.ReadFile(testimage.Path(t, recipe))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	hostonly, debian := read("initrd-dracut-hostonly"), read("initrd-debian-zstd")
	const deb = "6.1.0-13-cloud-amd64"
	// The Debian recipe holds hv_vmbus, hv_storvsc, hv_netvsc and xfs, and
	// lists ext4 as built in; scsi_mod and sd_mod come from the config.
	scsiBuiltIn := "CONFIG_SCSI=y\nCONFIG_BLK_DEV_SD=y\n"
	kernelWith := func(version, initramfs, config string, extra map[string]string) map[string]string {
		files := map[string]string{"boot/vmlinuz-" + version: "", "etc/initramfs-tools/modules": ""}
		if initramfs != "" {
			files["boot/initrd.img-"+version] = initramfs
		}
		if config != "" {
			files["boot/config-"+version] = config
		}
		return with(files, extra)
	}
	lvmRoot := map[string]string{"etc/fstab": "/dev/mapper/vg0-root / ext4 defaults 0 1\n"}
	for _, c := range []struct {
		name  string
		files map[string]string
		want  Status
		msg   string // in the first finding's message and fix
	}{
		{"hostonly dracut on an XFS LV",
			with(map[string]string{"boot/vmlinuz-" + hostonlyKernel: "", "boot/initramfs-" + hostonlyKernel + ".img": hostonly, "usr/bin/dracut": "",
				"etc/fstab": "/dev/mapper/rhel-root / xfs defaults 0 0\nUUID=5b0e /boot xfs defaults 0 0\n"}, nil),
			Failed, "lacks hv_vmbus, hv_storvsc, scsi_mod, sd_mod (neither built in nor in it)"},
		{"hostonly dracut, btrfs root", map[string]string{"boot/vmlinuz-" + hostonlyKernel: "", "boot/initramfs-" + hostonlyKernel + ".img": hostonly, "usr/bin/dracut": "",
			"etc/fstab": "UUID=1 / btrfs defaults 0 0\n", "boot/config-" + hostonlyKernel: "CONFIG_HYPERV=y\nCONFIG_HYPERV_STORAGE=y\n" + scsiBuiltIn},
			Failed, "lacks btrfs (neither"},
		{"Debian without scsi_mod and sd_mod", kernelWith(deb, debian, "", nil), Failed, "lacks scsi_mod, sd_mod (neither built in nor in it)"},
		{"Debian, SCSI built in", kernelWith(deb, debian, scsiBuiltIn, nil), Passed, ""},
		{"Debian, XFS root in the initramfs", kernelWith(deb, debian, scsiBuiltIn, map[string]string{"etc/fstab": "UUID=1 / xfs defaults 0 0\n"}), Passed, ""},
		// The Debian initramfs's modules are in lib/modules/6.1.0-13-...:
		// they are not another kernel's.
		{"modules of another kernel", kernelWith("6.1.0-14-cloud-amd64", debian, scsiBuiltIn, nil), Failed, "kernel 6.1.0-14-cloud-amd64 lacks hv_vmbus, hv_storvsc (neither"},
		{"LVM root without the LVM tools", kernelWith(deb, debian, scsiBuiltIn, lvmRoot), Failed, "lacks dm_mod, the LVM tools (lvm)"},
		{"LVM root, dm built in", kernelWith(deb, debian, scsiBuiltIn+"CONFIG_BLK_DEV_DM=y\n", lvmRoot), Failed, "install the lvm2 package"},
		{"root on an md array", kernelWith(deb, debian, scsiBuiltIn, map[string]string{"etc/fstab": "/dev/md/0 / ext4 defaults 0 1\n"}), Passed, ""},
		{"no initramfs", kernelWith(deb, "", "CONFIG_HYPERV=y\n", nil), Failed, "has no initramfs and does not build in hv_storvsc, scsi_mod, sd_mod"},
		{"no initramfs, all built in", kernelWith(deb, "", "CONFIG_HYPERV=y\nCONFIG_HYPERV_STORAGE=y\n"+scsiBuiltIn, nil), Passed, ""},
		{"unreadable initramfs", kernelWith(deb, "not an initramfs", "", nil), Skipped, ""},
	} {
		o := outcome(t, tree(t, c.files), "DRV008")
		if o.Status != c.want {
			t.Errorf("%s: %s (%+v %s), want %s", c.name, o.Status, o.Findings, o.Reason, c.want)
			continue
		}
		if c.msg != "" && !strings.Contains(o.Findings[0].Message+" "+o.Findings[0].Fix, c.msg) {
			t.Errorf("%s: finding %+v lacks %q", c.name, o.Findings[0], c.msg)
		}
	}
}

// On a real LVM image (the disk-rhel-lvm recipe) the root's logical volume
// is seen in the layout, so dm_mod and the LVM tools are required.
func TestRootStorageOfAnLVMImage(t *testing.T) {
	target, err := OpenImage(testimage.Path(t, "disk-rhel-lvm"))
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if rs := rootStorageOf(target); !rs.lvm || !rs.dm || rs.fsType == "" {
		t.Errorf("root storage %+v, want an LVM logical volume with a filesystem type", rs)
	}
}

// fix names the missing drivers for dracut and takes its lvm module in;
// the rule keeps failing until the initramfs is rebuilt, and a second fix
// changes nothing.
func TestFixRootChain(t *testing.T) {
	initramfs, err := os.ReadFile(testimage.Path(t, "initrd-debian-zstd"))
	if err != nil {
		t.Fatal(err)
	}
	const v = "6.1.0-13-cloud-amd64"
	for _, c := range []struct {
		name   string
		files  map[string]string
		want   map[string]string
		refuse string
	}{
		{"dracut", map[string]string{"usr/bin/dracut": "", "etc/fstab": "/dev/rootvg/rootlv / xfs defaults 0 0\n"},
			map[string]string{dracutConf: dracutConfHeader + "add_drivers+=\" scsi_mod sd_mod dm_mod \"\nadd_dracutmodules+=\" lvm \"\n"}, ""},
		{"mkinitfs", map[string]string{"etc/mkinitfs/mkinitfs.conf": "features=\"ata base ext4\"\n", "etc/fstab": "/dev/vg0/root / ext4 defaults 0 0\n"},
			map[string]string{
				"etc/mkinitfs/mkinitfs.conf":                    "features=\"ata base ext4 vhdprep-azure lvm\"\n",
				"etc/mkinitfs/features.d/vhdprep-azure.modules": "kernel/drivers/scsi/scsi_mod.ko*\nkernel/drivers/scsi/sd_mod.ko*\nkernel/drivers/md/dm-mod.ko*\n"}, ""},
		// Arch's stock HOOKS line (mkinitcpio 38).
		{"mkinitcpio", map[string]string{"etc/mkinitcpio.conf": "MODULES=()\nHOOKS=(base udev autodetect microcode modconf kms keyboard keymap consolefont block filesystems fsck)\n",
			"etc/fstab": "/dev/mapper/vg0-root / ext4 defaults 0 0\n"},
			map[string]string{"etc/mkinitcpio.conf": "MODULES=(scsi_mod sd_mod dm_mod)\nHOOKS=(base udev autodetect microcode modconf kms keyboard keymap consolefont block lvm2 filesystems fsck)\n"}, ""},
		// initramfs-tools takes lvm from the lvm2 package's hook.
		{"initramfs-tools with lvm2", map[string]string{"etc/initramfs-tools/modules": "", "usr/share/initramfs-tools/hooks/lvm2": "#!/bin/sh\n", "etc/fstab": "/dev/mapper/vg0-root / ext4 defaults 0 0\n"},
			map[string]string{"etc/initramfs-tools/modules": "scsi_mod\nsd_mod\ndm_mod\n"}, ""},
		{"initramfs-tools without lvm2", map[string]string{"etc/initramfs-tools/modules": "", "etc/fstab": "/dev/mapper/vg0-root / ext4 defaults 0 0\n"},
			nil, "the lvm2 package is not installed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.files["boot/vmlinuz-"+v] = ""
			c.files["boot/initrd.img-"+v] = string(initramfs)
			target := tree(t, c.files)
			if o := outcome(t, target, "DRV008"); o.Status != Failed {
				t.Fatalf("before fix: %+v", o)
			}
			plan, err := PlanFix(target, Catalog(), nil, []string{"DRV008"})
			if err != nil {
				t.Fatal(err)
			}
			if c.refuse != "" {
				if len(plan.Rules) != 1 || !strings.Contains(plan.Rules[0].Error, c.refuse) {
					t.Fatalf("plan %+v, want a refusal saying %q", plan.Rules, c.refuse)
				}
				return
			}
			if err := plan.Apply(target); err != nil {
				t.Fatal(err)
			}
			for name, want := range c.want {
				if got, _ := os.ReadFile(filepath.Join(target.Name, name)); string(got) != want {
					t.Errorf("/%s:\n%s\nwant:\n%s", name, got, want)
				}
			}
			if notes := plan.Rules[0].Notes; len(notes) != 2 || !strings.Contains(notes[0], "kernel "+v+" is left as it is: kernel "+v+" has no modules directory") ||
				!strings.Contains(notes[1], "still lacks the LVM tools") {
				t.Errorf("notes %q", notes)
			}
			fresh, _ := OpenDir(target.Name)
			if o := outcome(t, fresh, "DRV008"); o.Status != Failed {
				t.Errorf("DRV008 passes though the initramfs was not rebuilt: %+v", o)
			}
			again, err := PlanFix(fresh, Catalog(), nil, []string{"DRV008"})
			if err != nil || len(again.Changes) != 0 {
				t.Fatalf("second fix: %v %+v", err, again.Changes)
			}
		})
	}
}

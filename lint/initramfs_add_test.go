package lint

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/initrd"
	"github.com/vhdprep/vhdprep/internal/testimage"
)

// hostOnlyInitramfs builds, from the modules of a real kernel, the
// initramfs an image builder's KVM host leaves: only virtio_blk, with the
// module indexes the host's depmod writes for it, laid out as tool lays
// it out (initramfs-tools: lib/modules, zstd; dracut: merged /usr, gzip;
// mkinitcpio: its /config), after an uncompressed early-microcode archive.
func hostOnlyInitramfs(t *testing.T, kernelTree, version, tool string) []byte {
	t.Helper()
	testimage.RequireTools(t, "cpio", "depmod", "zstd", "gzip")
	dir := t.TempDir()
	early, main := filepath.Join(dir, "early"), filepath.Join(dir, "main")
	files := map[string]string{
		"early/kernel/x86/microcode/GenuineIntel.bin": "microcode",
		"main/init": "#!/bin/sh\n",
	}
	modDir := "main/lib/modules/" + version
	compress := []string{"zstd", "-q", "-c"}
	switch tool {
	case "initramfs-tools":
		files["main/conf/initramfs.conf"] = "MODULES=dep\n"
		files["main/conf/modules"] = "# List of modules that you want to include in your initramfs.\nvirtio_blk\n"
		files["main/scripts/init-top/ORDER"] = ""
	case "mkinitcpio":
		files["main/init_functions"] = "#!/usr/bin/ash\n"
		files["main/config"] = "EARLYHOOKS=\"\"\nHOOKS=\"udev\"\nMODULES=\"virtio_blk\"\n"
	case "dracut":
		modDir = "main/usr/lib/modules/" + version
		files["main/usr/lib/dracut/modules.txt"] = "kernel-modules\nrootfs-block\n"
		files["main/etc/cmdline.d/95root-dev.conf"] = " root=UUID=1f2e3d03-0000-4000-8000-0000000000f1 rootfstype=ext4 \n"
		compress = []string{"gzip", "-n", "-c"}
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if tool == "dracut" {
		for _, l := range []string{"lib", "bin"} {
			os.MkdirAll(filepath.Join(main, "usr", l), 0o755)
			os.Symlink("usr/"+l, filepath.Join(main, l))
		}
	}
	src := filepath.Join(kernelTree, "lib/modules", version)
	for _, f := range []string{"kernel/drivers/block/virtio_blk.ko", "modules.order", "modules.builtin", "modules.builtin.modinfo"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, modDir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, b, 0o644)
	}
	if out, err := exec.Command("depmod", "-b", filepath.Join(dir, strings.TrimSuffix(strings.TrimSuffix(modDir, "/lib/modules/"+version), "/usr")), version).CombinedOutput(); err != nil {
		t.Fatalf("depmod: %v\n%s", err, out)
	}
	archive := func(d string) []byte {
		cmd := exec.Command("sh", "-c", "find . | sort | cpio -o -H newc -R 0:0 --reproducible --quiet")
		cmd.Dir = d
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	cmd := exec.Command(compress[0], compress[1:]...)
	cmd.Stdin = bytes.NewReader(archive(main))
	packed, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return append(archive(early), packed...)
}

// TestFixAddsDriversToTheInitramfs: on Debian's cloud kernel (Hyper-V
// drivers as modules) with a host-only initramfs that lacks them, fix
// adds them and what they need, check then passes, a second fix changes
// nothing, and the guest's own tools agree: lsinitramfs lists them, and
// modprobe over the unpacked initramfs loads hv_storvsc as it would with
// depmod's own indexes.
func TestFixAddsDriversToTheInitramfs(t *testing.T) {
	if testing.Short() {
		t.Skip("reads a whole kernel's modules")
	}
	testimage.RequireTools(t, "lsinitramfs", "unmkinitramfs", "modprobe")
	kernelTree, version := testimage.DebianCloudKernel(t)
	for _, tool := range []string{"initramfs-tools", "dracut", "mkinitcpio"} {
		t.Run(tool, func(t *testing.T) {
			root := t.TempDir()
			// Linked, not copied: fix only adds files beside the modules.
			if out, err := exec.Command("cp", "-al", kernelTree+"/.", root).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v\n%s", err, out)
			}
			guest := map[string]string{
				"etc/fstab":      "UUID=1f2e3d03-0000-4000-8000-0000000000f1 / ext4 errors=remount-ro 0 1\n",
				"etc/os-release": "ID=debian\nVERSION_ID=\"12\"\n",
			}
			switch tool {
			case "dracut":
				guest["usr/bin/dracut"] = ""
				guest["etc/dracut.conf.d/90-hostonly.conf"] = "hostonly=\"yes\"\n"
			case "initramfs-tools":
				guest["etc/initramfs-tools/modules"] = "# List of modules\n"
				guest["etc/initramfs-tools/initramfs.conf"] = "MODULES=dep\n"
			case "mkinitcpio":
				guest["etc/mkinitcpio.conf"] = "MODULES=(virtio_blk)\nHOOKS=(base udev autodetect modconf block filesystems fsck)\n"
			}
			guest["boot/initrd.img-"+version] = string(hostOnlyInitramfs(t, kernelTree, version, tool))
			for name, content := range guest {
				p := filepath.Join(root, name)
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			target, err := OpenDir(root)
			if err != nil {
				t.Fatal(err)
			}
			ids := []string{"DRV001", "DRV002", "DRV003", "DRV008"}
			for id, s := range statuses(t, target, ids...) {
				if s != Failed {
					t.Fatalf("before fix: %s %s, want failed", id, s)
				}
			}
			plan, err := PlanFix(target, Catalog(), nil, ids)
			if err != nil {
				t.Fatal(err)
			}
			if err := plan.Apply(target); err != nil {
				t.Fatal(err)
			}
			var notes []string
			for _, r := range plan.Rules {
				if r.Error != "" {
					t.Errorf("%s: %s", r.ID, r.Error)
				}
				notes = append(notes, r.Notes...)
			}
			if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, "added to /boot/initrd.img-"+version+": hv_vmbus") }) {
				t.Errorf("no note says what was added: %q", notes)
			}

			fresh, err := OpenDir(root)
			if err != nil {
				t.Fatal(err)
			}
			for id, s := range statuses(t, fresh, ids...) {
				if s != Passed {
					t.Errorf("after fix: %s %s, want passed", id, s)
				}
			}
			again, err := PlanFix(fresh, Catalog(), nil, ids)
			if err != nil {
				t.Fatal(err)
			}
			if len(again.Changes) != 0 {
				t.Errorf("a second fix changes %d files", len(again.Changes))
			}

			img := filepath.Join(root, "boot/initrd.img-"+version)
			list, err := exec.Command("lsinitramfs", img).CombinedOutput()
			if err != nil {
				t.Fatalf("lsinitramfs: %v\n%s", err, list)
			}
			for _, m := range []string{"hv_vmbus.ko", "hv_storvsc.ko", "hv_netvsc.ko", "scsi_mod.ko", "sd_mod.ko", "virtio_blk.ko"} {
				if !strings.Contains(string(list), "/"+m+"\n") {
					t.Errorf("lsinitramfs does not list %s", m)
				}
			}
			unpacked := t.TempDir()
			if out, err := exec.Command("unmkinitramfs", img, unpacked).CombinedOutput(); err != nil {
				t.Fatalf("unmkinitramfs: %v\n%s", err, out)
			}
			mainDir := filepath.Join(unpacked, "main")
			preload := map[string]string{"initramfs-tools": "conf/modules", "dracut": "etc/cmdline.d/90-vhdprep-azure.conf", "mkinitcpio": "config"}[tool]
			b, _ := os.ReadFile(filepath.Join(mainDir, preload))
			for _, m := range []string{"hv_vmbus", "hv_storvsc", "hv_netvsc", "sd_mod"} {
				if !strings.Contains(string(b), m) {
					t.Errorf("/%s does not load %s first:\n%s", preload, m, b)
				}
			}
			ours := testimage.ShowDepends(t, mainDir, version, "hv_storvsc")
			theirs := t.TempDir()
			if out, err := exec.Command("cp", "-a", mainDir+"/.", theirs).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v\n%s", err, out)
			}
			if out, err := exec.Command("depmod", "-b", theirs, version).CombinedOutput(); err != nil {
				t.Fatalf("depmod: %v\n%s", err, out)
			}
			if want := testimage.ShowDepends(t, theirs, version, "hv_storvsc"); ours != want {
				t.Errorf("modprobe --show-depends hv_storvsc, our indexes:\n%s\ndepmod's:\n%s", ours, want)
			}
			if !strings.Contains(ours, "hv_vmbus.ko") || !strings.HasSuffix(strings.TrimSpace(ours), "hv_storvsc.ko") {
				t.Errorf("modprobe would not load hv_vmbus before hv_storvsc:\n%s", ours)
			}
			checkEarlyArchiveKept(t, img)
		})
	}
}

// checkEarlyArchiveKept: the early-microcode archive is still first and
// stored.
func checkEarlyArchiveKept(t *testing.T, img string) {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	var first initrd.Segment
	found := false
	initrd.Walk(bytes.NewReader(b), int64(len(b)), func(seg initrd.Segment, e initrd.Entry, _ io.Reader) error {
		if e.Name == "kernel/x86/microcode/GenuineIntel.bin" {
			first, found = seg, true
		}
		return nil
	})
	if !found || first.Offset != 0 || first.Compression != initrd.None {
		t.Errorf("the early microcode is not first and stored: %+v (found %v)", first, found)
	}
}

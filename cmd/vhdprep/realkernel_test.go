package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// writeInitramfs makes boot/initrd.img-V in tree: a zstd-compressed newc
// cpio archive (as initramfs-tools makes on Debian 12) of the kernel's own
// module files named, at their paths under lib/modules/V.
func writeInitramfs(t *testing.T, tree, version string, modules ...string) {
	t.Helper()
	stage := t.TempDir()
	packInitramfs(t, tree, version, stage, stageModules(t, tree, version, stage, "", modules))
}

// writeHostonlyInitramfs makes boot/initrd.img-V in tree as dracut in
// hostonly mode lays it out when built on a KVM host whose root is an LVM
// volume: merged /usr (bin, sbin and lib link into it), only the modules
// named (the build host's) under usr/lib/modules/V with the kernel's own
// modules.builtin and modules.order, the lvm program and the hostonly
// command line.
func writeHostonlyInitramfs(t *testing.T, tree, version string, modules ...string) {
	t.Helper()
	stage := t.TempDir()
	list := stageModules(t, tree, version, stage, "usr", modules)
	modDir := filepath.Join("usr", "lib", "modules", version)
	for _, index := range []string{"modules.builtin", "modules.order"} {
		b, err := os.ReadFile(filepath.Join(tree, "lib", "modules", version, index))
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, stageFile(t, stage, filepath.Join(modDir, index), b))
	}
	list = append(list, stageFile(t, stage, "usr/sbin/lvm", []byte("\x7fELF lvm")),
		stageFile(t, stage, "etc/cmdline.d/90lvm.conf", []byte(" rd.lvm.lv=vg0/root \n")))
	for link, target := range map[string]string{"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib"} {
		if err := os.Symlink(target, filepath.Join(stage, link)); err != nil {
			t.Fatal(err)
		}
		list = append(list, link)
	}
	packInitramfs(t, tree, version, stage, list)
}

// stageModules copies the kernel's module files named into stage, at their
// paths under lib/modules/V (under prefix/lib/modules/V when prefix is
// given), and lists them.
func stageModules(t *testing.T, tree, version, stage, prefix string, modules []string) []string {
	t.Helper()
	modDir := filepath.Join("lib", "modules", version)
	want := map[string]bool{}
	for _, m := range modules {
		want[m+".ko"] = true
	}
	var list []string
	filepath.WalkDir(filepath.Join(tree, modDir), func(p string, d fs.DirEntry, err error) error {
		if err == nil && want[d.Name()] {
			rel, _ := filepath.Rel(tree, p)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			list = append(list, stageFile(t, stage, filepath.Join(prefix, rel), b))
			delete(want, d.Name())
		}
		return nil
	})
	if len(want) > 0 {
		t.Fatalf("kernel %s has no module files %v", version, want)
	}
	return list
}

// stageFile writes a file into stage and returns its name there.
func stageFile(t *testing.T, stage, name string, b []byte) string {
	t.Helper()
	os.MkdirAll(filepath.Join(stage, filepath.Dir(name)), 0o755)
	if err := os.WriteFile(filepath.Join(stage, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// packInitramfs writes the files listed from stage as boot/initrd.img-V.
func packInitramfs(t *testing.T, tree, version, stage string, list []string) {
	t.Helper()
	out := filepath.Join(tree, "boot", "initrd.img-"+version)
	cmd := exec.Command("sh", "-c", `cpio -o -H newc --quiet | zstd -q -19 -f -o "$1"`, "sh", out)
	cmd.Dir, cmd.Stdin = stage, strings.NewReader(strings.Join(list, "\n")+"\n")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio | zstd: %v\n%s", err, b)
	}
}

// checkTree runs the built binary's check on a directory and returns each
// rule's status and first finding.
func checkTree(t *testing.T, tree string) map[string]string {
	t.Helper()
	out, err := exec.Command(vhdprepBin, "check", "--root", tree, "--output", "json", "--fail-on", "info").Output()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	var rep struct {
		Outcomes []struct {
			ID       string `json:"id"`
			Status   string `json:"status"`
			Reason   string `json:"reason"`
			Findings []struct {
				Message string `json:"message"`
			} `json:"findings"`
		} `json:"rules"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("check --output json: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, o := range rep.Outcomes {
		got[o.ID] = o.Status
		if len(o.Findings) > 0 {
			got[o.ID] += ": " + o.Findings[0].Message
		} else if o.Reason != "" {
			got[o.ID] += ": " + o.Reason
		}
	}
	return got
}

// TestCheckOnDebiansRealCloudKernel: Debian's real cloud kernel package,
// with an initramfs of its own Hyper-V modules, passes the kernel and
// driver rules but DRV008, which wants its scsi_mod and sd_mod modules and
// the root filesystem's (xfs, not ext4, which is built in); hv_storvsc left
// out of the initramfs fails DRV002; and
// nvme, built into that kernel, is found through modules.builtin when no
// config says so.
func TestCheckOnDebiansRealCloudKernel(t *testing.T) {
	tree, version := testimage.DebianCloudKernel(t)
	cmdline := "console=tty1 console=ttyS0,115200n8 earlyprintk=ttyS0,115200"
	files := map[string]string{
		"etc/default/grub":   "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"\"\nGRUB_CMDLINE_LINUX=\"" + cmdline + "\"\n",
		"boot/grub/grub.cfg": "menuentry 'Debian GNU/Linux' {\n\tlinux\t/boot/vmlinuz-" + version + " root=UUID=0b4c3f7e-4c5d-4a55-9d1b-5f1d3b8e2a10 ro " + cmdline + "\n\tinitrd\t/boot/initrd.img-" + version + "\n}\n",
	}
	for name, text := range files {
		os.MkdirAll(filepath.Join(tree, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(tree, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeInitramfs(t, tree, version, "hv_vmbus", "hv_storvsc", "scsi_transport_fc", "hv_netvsc")

	got := checkTree(t, tree)
	for _, id := range []string{"KRN001", "KRN008", "KRN010", "DRV001", "DRV002", "DRV003", "DRV004", "DRV005", "DRV006", "DRV007"} {
		if got[id] != "pass" {
			t.Errorf("%s on kernel %s: %s, want pass", id, version, got[id])
		}
	}

	// Debian's cloud kernel builds scsi_mod and sd_mod as modules, and xfs;
	// ext4 is built in. The initramfs above lacks the first two: the root
	// disk would never appear.
	if want := "fail: the initramfs of kernel " + version + " lacks scsi_mod, sd_mod ("; !strings.HasPrefix(got["DRV008"], want) {
		t.Errorf("DRV008 without scsi_mod and sd_mod: %s, want %s...", got["DRV008"], want)
	}
	fstab := filepath.Join(tree, "etc", "fstab")
	if err := os.WriteFile(fstab, []byte("UUID=0b4c3f7e-4c5d-4a55-9d1b-5f1d3b8e2a10 / xfs defaults 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeInitramfs(t, tree, version, "hv_vmbus", "hv_storvsc", "scsi_transport_fc", "hv_netvsc", "scsi_mod", "sd_mod")
	if got := checkTree(t, tree); !strings.HasPrefix(got["DRV008"], "fail: the initramfs of kernel "+version+" lacks xfs (") {
		t.Errorf("DRV008 with an XFS root and no xfs in the initramfs: %s", got["DRV008"])
	}
	writeInitramfs(t, tree, version, "hv_vmbus", "hv_storvsc", "scsi_transport_fc", "hv_netvsc", "scsi_mod", "sd_mod", "xfs")
	if got := checkTree(t, tree); got["DRV008"] != "pass" {
		t.Errorf("DRV008 with the whole chain: %s, want pass", got["DRV008"])
	}
	if err := os.WriteFile(fstab, []byte("UUID=0b4c3f7e-4c5d-4a55-9d1b-5f1d3b8e2a10 / ext4 defaults 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeInitramfs(t, tree, version, "hv_vmbus", "hv_storvsc", "scsi_transport_fc", "hv_netvsc", "scsi_mod", "sd_mod")
	if got := checkTree(t, tree); got["DRV008"] != "pass" {
		t.Errorf("DRV008 with an ext4 root (built into the kernel): %s, want pass", got["DRV008"])
	}

	// Without boot/config-V only modules.builtin says nvme is built in.
	config := filepath.Join(tree, "boot", "config-"+version)
	if err := os.Remove(config); err != nil {
		t.Fatal(err)
	}
	if got := checkTree(t, tree); got["DRV006"] != "pass" {
		t.Errorf("DRV006 without the kernel config: %s, want pass (nvme in modules.builtin)", got["DRV006"])
	}

	builtin := filepath.Join(tree, "lib", "modules", version, "modules.builtin")
	if err := os.WriteFile(builtin, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	writeInitramfs(t, tree, version, "hv_vmbus", "hv_netvsc")
	got = checkTree(t, tree)
	if !strings.Contains(got["DRV006"], "fail: the initramfs of kernel "+version+" has no nvme") {
		t.Errorf("DRV006 with an empty modules.builtin: %s", got["DRV006"])
	}
	if !strings.Contains(got["DRV002"], "fail: hv_storvsc is neither built into kernel "+version) || got["DRV001"] != "pass" {
		t.Errorf("without hv_storvsc in the initramfs: DRV001 %s, DRV002 %s", got["DRV001"], got["DRV002"])
	}
}

// TestHostonlyDracutOnDebiansRealCloudKernel: Debian's real cloud kernel
// with an initramfs laid out as dracut's hostonly mode makes it on a KVM
// host (virtio_blk, dm-mod, xfs and lvm for an XFS root on LVM, nothing of
// Hyper-V's) fails DRV008, naming exactly the Hyper-V path it lacks; the
// same modules copied for another kernel version count for none.
func TestHostonlyDracutOnDebiansRealCloudKernel(t *testing.T) {
	tree, version := testimage.DebianCloudKernel(t)
	for name, text := range map[string]string{"etc/fstab": "/dev/mapper/vg0-root / xfs defaults 0 0\n", "usr/bin/dracut": ""} {
		os.MkdirAll(filepath.Join(tree, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(tree, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeHostonlyInitramfs(t, tree, version, "virtio_blk", "virtio_pci", "dm-mod", "xfs", "libcrc32c")
	got := checkTree(t, tree)
	if want := "fail: the initramfs of kernel " + version + " lacks hv_vmbus, hv_storvsc, scsi_mod, sd_mod ("; !strings.HasPrefix(got["DRV008"], want) {
		t.Errorf("DRV008 on a hostonly dracut initramfs: %s, want %s...", got["DRV008"], want)
	}
	writeHostonlyInitramfs(t, tree, version, "virtio_blk", "dm-mod", "xfs", "hv_vmbus", "hv_storvsc", "scsi_transport_fc", "scsi_mod", "sd_mod")
	if got := checkTree(t, tree); got["DRV008"] != "pass" {
		t.Errorf("DRV008 with the Hyper-V path added: %s, want pass", got["DRV008"])
	}
	// The same initramfs as the initramfs of another version of the kernel.
	other := strings.Replace(version, "-cloud-amd64", "-cloud-amd64+other", 1)
	os.Rename(filepath.Join(tree, "boot", "initrd.img-"+version), filepath.Join(tree, "boot", "initrd.img-"+other))
	os.Rename(filepath.Join(tree, "boot", "vmlinuz-"+version), filepath.Join(tree, "boot", "vmlinuz-"+other))
	if got := checkTree(t, tree); !strings.Contains(got["DRV008"], "kernel "+other+" lacks hv_vmbus, hv_storvsc, scsi_mod, sd_mod, dm_mod, xfs (") {
		t.Errorf("DRV008 for a kernel whose modules are not in the initramfs: %s", got["DRV008"])
	}
}

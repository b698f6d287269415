package lint

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/rootfs"
)

func TestDriverRules(t *testing.T) {
	read := func(recipe string) string {
		b, err := os.ReadFile(testimage.Path(t, recipe))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	full, noStorvsc := read("initrd-debian-zstd"), read("initrd-nostorvsc-gzip")
	// Each recipe's modules are those of its own kernel version: a module
	// counts only for the kernel whose module directory holds it.
	const v, vNoStorvsc = "6.1.0-13-cloud-amd64", "6.1.0-13-amd64"
	kernelWith := func(initramfs string, extra map[string]string) map[string]string {
		v := v
		if initramfs == noStorvsc {
			v = vNoStorvsc
		}
		files := map[string]string{"boot/vmlinuz-" + v: "", "etc/initramfs-tools/modules": ""}
		if initramfs != "" {
			files["boot/initrd.img-"+v] = initramfs
		}
		for k, c := range extra {
			files[k] = c
		}
		return files
	}
	for _, c := range []struct {
		rule  string
		files map[string]string
		want  Status
		msg   string
	}{
		{"DRV001", kernelWith(full, nil), Passed, ""},
		{"DRV002", kernelWith(full, nil), Passed, ""},
		{"DRV003", kernelWith(full, nil), Passed, ""},
		{"DRV002", kernelWith(noStorvsc, nil), Failed, "update-initramfs -u -k " + vNoStorvsc},
		{"DRV001", kernelWith(noStorvsc, nil), Passed, ""},
		{"DRV002", kernelWith(noStorvsc, map[string]string{"boot/config-" + vNoStorvsc: "CONFIG_HYPERV_STORAGE=y\n"}), Passed, ""},
		// The same initramfs as another kernel's: its modules are not that kernel's.
		{"DRV001", map[string]string{"boot/vmlinuz-6.1.0-14-cloud-amd64": "", "boot/initrd.img-6.1.0-14-cloud-amd64": full}, Failed, "kernel 6.1.0-14-cloud-amd64"},
		{"DRV002", kernelWith("", nil), Failed, "has no initramfs"},
		{"DRV002", kernelWith("not an initramfs at all", nil), Skipped, ""},
		{"DRV002", map[string]string{"etc/hostname": "x"}, Skipped, ""},
		{"DRV006", kernelWith(full, map[string]string{"boot/config-" + v: "CONFIG_HYPERV_KEYBOARD=y\nCONFIG_HID_HYPERV_MOUSE=m\n"}), Failed, "no nvme"},
		// Module files spell underscores as dashes (Debian's real kernel);
		// modules.builtin tells nvme is built in where no config does.
		{"DRV006", kernelWith(full, map[string]string{
			"lib/modules/" + v + "/kernel/drivers/input/serio/hyperv-keyboard.ko": "", "lib/modules/" + v + "/kernel/drivers/hid/hid-hyperv.ko": "",
			"lib/modules/" + v + "/modules.builtin": "kernel/drivers/nvme/host/nvme.ko\n"}), Passed, ""},
		{"DRV006", kernelWith(full, map[string]string{"lib/modules/" + v + "/kernel/drivers/hid/hid-hyperv.ko": "", "boot/config-" + v: "CONFIG_BLK_DEV_NVME=y\n# CONFIG_HYPERV_KEYBOARD is not set\n"}), Failed, "no hyperv_keyboard"},
	} {
		o := outcome(t, tree(t, c.files), c.rule)
		if o.Status != c.want {
			t.Errorf("%s: %s (%+v %s), want %s", c.rule, o.Status, o.Findings, o.Reason, c.want)
			continue
		}
		if c.msg != "" && !strings.Contains(o.Findings[0].Message+" "+o.Findings[0].Fix, c.msg) {
			t.Errorf("%s: finding %+v lacks %q", c.rule, o.Findings[0], c.msg)
		}
	}
}

// The initramfs is read where it lies, not copied into memory, on the
// filesystems that allow reads at an offset.
func TestInitramfsIsReadInPlace(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/initrd.img", []byte("07070100"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := rootfs.Dir(dir).Open("initrd.img")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, size, err := readerAt(f)
	if err != nil || size != 8 {
		t.Fatalf("readerAt = %T, %d, %v", r, size, err)
	}
	if _, inMemory := r.(*bytes.Reader); inMemory {
		t.Error("the initramfs was copied into memory")
	}
}

// An initramfs that cannot be read skips only its own kernel: another
// kernel's missing driver still fails the rule (DRV002, and DRV008's
// storage chain), and the unread kernel is named as a warning beside it.
func TestUnreadableInitramfsSkipsOnlyItsKernel(t *testing.T) {
	b, err := os.ReadFile(testimage.Path(t, "initrd-nostorvsc-gzip"))
	if err != nil {
		t.Fatal(err)
	}
	const v, bad = "6.1.0-13-amd64", "6.1.0-99-amd64"
	files := map[string]string{
		"boot/vmlinuz-" + v: "", "boot/initrd.img-" + v: string(b),
		"boot/vmlinuz-" + bad: "", "boot/initrd.img-" + bad: "not an initramfs at all",
		"etc/initramfs-tools/modules": "",
	}
	for _, rule := range []string{"DRV002", "DRV008"} {
		o := outcome(t, tree(t, files), rule)
		if o.Status != Failed || len(o.Findings) != 2 {
			t.Fatalf("%s: %s %+v %s; want the readable kernel's finding and a warning", rule, o.Status, o.Findings, o.Reason)
		}
		if f := o.Findings[0]; f.Location.Kernel != v || f.Severity != Error {
			t.Errorf("%s: first finding %+v; want an error for kernel %s", rule, f, v)
		}
		if f := o.Findings[1]; f.Severity != Warning || !strings.Contains(f.Message, "kernel "+bad) || !strings.Contains(f.Message, "unknown") {
			t.Errorf("%s: second finding %+v; want a warning naming kernel %s", rule, f, bad)
		}
	}
	// Alone, the unreadable kernel makes the rule a skip that names it.
	delete(files, "boot/vmlinuz-"+v)
	delete(files, "boot/initrd.img-"+v)
	if o := outcome(t, tree(t, files), "DRV002"); o.Status != Skipped || !strings.Contains(o.Reason, "kernel "+bad) {
		t.Fatalf("DRV002 with only the unreadable kernel: %s %q", o.Status, o.Reason)
	}
}

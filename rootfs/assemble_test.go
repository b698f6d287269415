package rootfs

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// guestVolumes are the three bare filesystems of rootfs-fs-guest, with
// the names a guest may use for them.
func guestVolumes(t *testing.T) (root, boot, efi Volume) {
	f, err := os.Open(testimage.Path(t, "rootfs-fs-guest"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	const mib = 1 << 20
	vol := func(name, fstype, uuid, label string, off, size int64, dev string) Volume {
		return Volume{Name: name, FSType: fstype, UUID: uuid, Label: label, Device: []string{dev},
			R: io.NewSectionReader(f, off, size), Size: size}
	}
	return vol("p2", "ext4", "6b8f4c64-1c1e-4f0e-9a0b-0000000a55e1", "guestroot", 0, 32*mib, "/dev/sda2"),
		vol("p1", "ext4", "6b8f4c64-1c1e-4f0e-9a0b-0000000b0071", "guestboot", 32*mib, 16*mib, "/dev/sda1"),
		vol("p15", "vfat", "ABCD-1234", "ESP", 48*mib, 8*mib, "/dev/sda15")
}

func TestAssembleFromFstab(t *testing.T) {
	root, boot, efi := guestVolumes(t)
	r, err := Assemble([]Volume{efi, boot, root})
	if err != nil {
		t.Fatal(err)
	}
	var at []string
	for _, m := range r.Mounts {
		at = append(at, m.Path+"="+m.Volume+"("+m.Spec+")")
	}
	if got := strings.Join(at, " "); got != "/=p2(UUID=6b8f4c64-1c1e-4f0e-9a0b-0000000a55e1) /boot=p1(LABEL=guestboot) /boot/efi=p15(UUID=ABCD-1234)" {
		t.Fatalf("mounts: %s", got)
	}
	// /data is missing from this disk; the nofail USB stick is quietly so.
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "line 5") || !strings.Contains(r.Warnings[0], "/dev/sdb1") {
		t.Fatalf("warnings: %q", r.Warnings)
	}
	for name, want := range map[string]string{
		"vmlinuz":                       "kernel\n", // absolute symlink from the root into /boot
		"boot/grub/grub.cfg":            "set default=0\n",
		"boot/efi/EFI/BOOT/BOOTX64.EFI": "MZ loader",
		"etc/os-release":                "ID=debian\nVERSION_ID=\"12\"\n",
	} {
		if b, err := r.ReadFile(name); err != nil || string(b) != want {
			t.Errorf("%s: %q %v", name, b, err)
		}
	}
	// The root's own /boot directory is hidden under the mount.
	if _, err := r.ReadFile("boot/hidden"); err == nil {
		t.Error("boot/hidden of the root filesystem shows through the /boot mount")
	}
	if ents, err := r.ReadDir("boot/efi/EFI"); err != nil || len(ents) != 1 || ents[0].Name() != "BOOT" {
		t.Errorf("boot/efi/EFI: %v %v", ents, err)
	}
	if len(r.Fstab) != 7 || !r.Fstab[5].IsSwap() {
		t.Errorf("fstab: %+v", r.Fstab)
	}
}

func TestAssembleWithoutFstabEntry(t *testing.T) {
	root, boot, _ := guestVolumes(t)
	root.UUID = "" // the fstab's "/" line no longer names it
	r, err := Assemble([]Volume{boot, root})
	if err != nil {
		t.Fatal(err)
	}
	if r.Mounts[0].Volume != "p2" || len(r.Mounts) != 2 || !strings.Contains(strings.Join(r.Warnings, "\n"), "os-release") {
		t.Fatalf("mounts %+v warnings %q", r.Mounts, r.Warnings)
	}
	// The ESP is not among the volumes: its fstab line is reported.
	if !strings.Contains(strings.Join(r.Warnings, "\n"), "UUID=ABCD-1234") {
		t.Fatalf("warnings %q", r.Warnings)
	}
}

func TestAssembleNoRoot(t *testing.T) {
	_, boot, efi := guestVolumes(t)
	if _, err := Assemble([]Volume{boot, efi}); !errors.Is(err, ErrNoRoot) {
		t.Fatalf("no root: %v", err)
	}
	btrfs := Volume{Name: "p3", FSType: "btrfs", R: strings.NewReader(""), Size: 0}
	_, err := Assemble([]Volume{btrfs})
	if !errors.Is(err, ErrNoRoot) || !strings.Contains(err.Error(), "btrfs") || !strings.Contains(err.Error(), "--root") {
		t.Fatalf("btrfs root: %v", err)
	}
}

func TestVolumeMatches(t *testing.T) {
	v := Volume{UUID: "6b8f4c64-1c1e-4f0e-9a0b-00000000d12a", Label: "root", PartUUID: "1dea5e11-01", PartLabel: "EFI System", Device: []string{"/dev/sda1", "/dev/vda1"}}
	for spec, want := range map[string]bool{
		"UUID=6B8F4C64-1C1E-4F0E-9A0B-00000000D12A":              true,
		`UUID="6b8f4c64-1c1e-4f0e-9a0b-00000000d12a"`:            true,
		"/dev/disk/by-uuid/6b8f4c64-1c1e-4f0e-9a0b-00000000d12a": true,
		"LABEL=root":                        true,
		"LABEL=ROOT":                        false,
		"/dev/disk/by-label/root":           true,
		"PARTUUID=1DEA5E11-01":              true,
		"/dev/disk/by-partuuid/1dea5e11-01": true,
		"PARTLABEL=EFI System":              true,
		"/dev/disk/by-partlabel/EFI System": true,
		"/dev/vda1":                         true,
		"/dev/sda2":                         false,
		"UUID=":                             false,
		"tmpfs":                             false,
	} {
		if got := v.matches(spec); got != want {
			t.Errorf("%s: %v, want %v", spec, got, want)
		}
	}
	if (&Volume{}).matches("LABEL=") {
		t.Error("an empty label matched a volume without one")
	}
}

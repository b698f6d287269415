package guest

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/diskimage"
	"github.com/vhdprep/vhdprep/internal/testimage"
)

func inspect(t *testing.T, path string) *Report {
	t.Helper()
	g, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	return g.Inspect()
}

func TestInspectDebian(t *testing.T) {
	r := inspect(t, testimage.Path(t, "disk-debian-mbr"))
	if r.OS.ID != "debian" || r.OS.Version != "12" || r.OS.Family != "debian" || r.Arch != "x86_64" || r.Init != "systemd" {
		t.Fatalf("os %+v arch %q init %q", r.OS, r.Arch, r.Init)
	}
	if len(r.Kernels) != 1 || r.Kernels[0].Version != "6.1.0-13-cloud-amd64" || r.Kernels[0].Image == "" {
		t.Fatalf("kernels %+v", r.Kernels)
	}
	if r.Boot == nil || !r.Boot.Gen1 || r.Boot.Gen2 || !strings.Contains(r.Boot.Detail, "GRUB") {
		t.Fatalf("boot %+v", r.Boot)
	}
}

func TestInspectRHELOnLVM(t *testing.T) {
	r := inspect(t, testimage.Path(t, "disk-rhel-lvm"))
	if r.OS.Family != "rhel" || r.OS.Version != "9.3" || len(r.VGs) != 1 {
		t.Fatalf("report %+v", r)
	}
	if r.Table.Scheme != "gpt" || len(r.Volumes) != 5 || len(r.Mounts) != 3 {
		t.Fatalf("table %+v volumes %+v mounts %+v", r.Table, r.Volumes, r.Mounts)
	}
	// UEFI's fallback loader on the ESP, but no BIOS boot path.
	if r.Boot == nil || r.Boot.Gen1 || !r.Boot.Gen2 {
		t.Fatalf("boot %+v", r.Boot)
	}
}

// The same guest read through every container gives the same answers.
func TestContainersAgree(t *testing.T) {
	testimage.RequireTools(t, "qemu-img")
	src := testimage.Path(t, "disk-debian-mbr")
	dir := t.TempDir()
	want := inspect(t, src)
	vhd := filepath.Join(dir, "d.vhd")
	if _, err := diskimage.Convert(context.Background(), diskimage.ConvertOptions{Input: src, Output: vhd}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{vhd, testimage.Path(t, "disk-debian-mbr-qcow2"), testimage.Path(t, "disk-debian-mbr-vhd")} {
		got := inspect(t, p)
		if !reflect.DeepEqual(got.OS, want.OS) || got.Arch != want.Arch || len(got.Volumes) != 1 || got.Volumes[0].UUID != want.Volumes[0].UUID {
			t.Errorf("%s: %+v %s %+v", filepath.Base(p), got.OS, got.Arch, got.Volumes)
		}
	}
}

func TestInspectDirectory(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "alpine-release"), []byte("3.19.0\n"), 0o644)
	g, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	r := g.Inspect()
	if r.OS.Family != "alpine" || r.Boot != nil || r.Table != nil {
		t.Fatalf("%+v", r)
	}
}

func TestUnreadableRootIsReportedNotFatal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blank.raw")
	os.WriteFile(path, make([]byte, 4<<20), 0o644)
	g, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if r := g.Inspect(); r.RootError == "" || r.OS.ID != "" {
		t.Fatalf("%+v", r)
	}
}

func TestInspectUbuntuBootsBothWays(t *testing.T) {
	r := inspect(t, testimage.Path(t, "disk-ubuntu-gpt"))
	if r.OS.ID != "ubuntu" || r.OS.Family != "debian" || len(r.Mounts) != 3 || len(r.Warnings) != 0 {
		t.Fatalf("os %+v mounts %+v warnings %v", r.OS, r.Mounts, r.Warnings)
	}
	if !r.Boot.Gen1 || !r.Boot.Gen2 {
		t.Fatalf("boot %+v", r.Boot)
	}
	if len(r.Kernels) != 1 || r.Kernels[0].Image != "boot/vmlinuz-6.1.0-13-cloud-amd64" {
		t.Fatalf("the kernel on the /boot partition: %+v", r.Kernels)
	}
}

func TestInspectLogicalPartitionsAndSwap(t *testing.T) {
	r := inspect(t, testimage.Path(t, "disk-mbr-logical"))
	var swap, home bool
	for _, v := range r.Volumes {
		swap = swap || (v.Name == "p5" && v.FSType == "swap")
		home = home || (v.Name == "p6" && v.Label == "home")
	}
	if !swap || !home || len(r.Mounts) != 2 || r.Mounts[1].Path != "/home" {
		t.Fatalf("volumes %+v mounts %+v", r.Volumes, r.Mounts)
	}
}

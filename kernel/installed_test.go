package kernel

import (
	"errors"
	"io/fs"
	"reflect"
	"testing"
	"testing/fstest"
)

func TestInstalledKernels(t *testing.T) {
	fsys := fstest.MapFS{
		// Debian: merged /usr, initramfs-tools naming, config in /boot.
		"boot/vmlinuz-6.1.0-13-cloud-amd64":                    {},
		"boot/initrd.img-6.1.0-13-cloud-amd64":                 {},
		"boot/config-6.1.0-13-cloud-amd64":                     {Data: []byte("CONFIG_HYPERV=m\nCONFIG_HYPERV_STORAGE=m\n# CONFIG_UDF_FS is not set\nCONFIG_CMDLINE=\"quiet\"\n")},
		"usr/lib/modules/6.1.0-13-cloud-amd64/modules.dep":     {},
		"usr/lib/modules/6.1.0-13-cloud-amd64/modules.builtin": {Data: []byte("kernel/fs/ext4/ext4.ko\nkernel/drivers/hv/hv_vmbus.ko\nkernel/crypto/crc32c-generic.ko\n")},
		// RHEL: dracut naming, config beside the modules.
		"boot/vmlinuz-5.14.0-362.el9.x86_64":       {},
		"boot/initramfs-5.14.0-362.el9.x86_64.img": {},
		"lib/modules/5.14.0-362.el9.x86_64/config": {Data: []byte("CONFIG_HYPERV=y\n")},
		// Modules left behind by a removed kernel.
		"usr/lib/modules/6.2.0-old/modules.dep": {},
		// SUSE: initrd-V.
		"boot/vmlinuz-5.14.21-150500.55.39-default": {},
		"boot/initrd-5.14.21-150500.55.39-default":  {},
	}
	ks, err := InstalledKernels(fsys)
	if err != nil {
		t.Fatal(err)
	}
	byV := map[string]Kernel{}
	for _, k := range ks {
		byV[k.Version] = k
	}
	if len(ks) != 4 {
		t.Fatalf("kernels = %+v", ks)
	}
	deb := byV["6.1.0-13-cloud-amd64"]
	if deb.Image != "boot/vmlinuz-6.1.0-13-cloud-amd64" || deb.Initrd != "boot/initrd.img-6.1.0-13-cloud-amd64" || deb.Config != "boot/config-6.1.0-13-cloud-amd64" || deb.ModulesDir != "usr/lib/modules/6.1.0-13-cloud-amd64" {
		t.Errorf("Debian kernel = %+v", deb)
	}
	if want := map[string]string{"CONFIG_HYPERV": "m", "CONFIG_HYPERV_STORAGE": "m", "CONFIG_UDF_FS": "n", "CONFIG_CMDLINE": "quiet"}; !reflect.DeepEqual(deb.ConfigValues, want) {
		t.Errorf("config values %v", deb.ConfigValues)
	}
	if !deb.HasBuiltin("hv_vmbus") || !deb.HasBuiltin("crc32c_generic") || deb.HasBuiltin("hv_storvsc") {
		t.Errorf("builtin %v", deb.Builtin)
	}
	rhel := byV["5.14.0-362.el9.x86_64"]
	if rhel.Initrd != "boot/initramfs-5.14.0-362.el9.x86_64.img" || rhel.Config != "lib/modules/5.14.0-362.el9.x86_64/config" || rhel.ConfigValues["CONFIG_HYPERV"] != "y" {
		t.Errorf("RHEL kernel = %+v", rhel)
	}
	if old := byV["6.2.0-old"]; old.Image != "" || old.Initrd != "" || old.Config != "" {
		t.Errorf("leftover modules = %+v", old)
	}
	if suse := byV["5.14.21-150500.55.39-default"]; suse.Initrd != "boot/initrd-5.14.21-150500.55.39-default" {
		t.Errorf("SUSE kernel = %+v", suse)
	}
}

func TestInstalledKernelsArch(t *testing.T) {
	ks, err := InstalledKernels(fstest.MapFS{
		"boot/vmlinuz-linux":                            {},
		"boot/initramfs-linux.img":                      {},
		"boot/initramfs-linux-fallback.img":             {},
		"usr/lib/modules/6.6.1-arch1-1/pkgbase":         {Data: []byte("linux\n")},
		"usr/lib/modules/6.6.1-arch1-1/modules.builtin": {Data: []byte("kernel/drivers/hv/hv_vmbus.ko\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 1 || ks[0].Version != "6.6.1-arch1-1" || ks[0].Image != "boot/vmlinuz-linux" || ks[0].Initrd != "boot/initramfs-linux.img" || !ks[0].HasBuiltin("hv_vmbus") {
		t.Fatalf("arch = %+v", ks)
	}
}

// brokenFS fails to read one file, as a damaged filesystem does.
type brokenFS struct {
	fstest.MapFS
	bad string
}

var errIO = errors.New("input/output error")

func (b brokenFS) Open(name string) (fs.File, error) {
	if name == b.bad {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errIO}
	}
	return b.MapFS.Open(name)
}

func TestInstalledKernelsReadError(t *testing.T) {
	fsys := brokenFS{fstest.MapFS{"boot/vmlinuz-6.1": {}, "boot/config-6.1": {Data: []byte("CONFIG_HYPERV=y\n")}}, "boot/config-6.1"}
	if _, err := InstalledKernels(fsys); !errors.Is(err, errIO) {
		t.Fatalf("err = %v, want the read error", err)
	}
}

func TestParseRelease(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Release
	}{
		{"2.6.32-504.el6.x86_64", Release{2, 6, 32, true, []int{504}}},
		{"3.10.0-1160.119.1.el7.x86_64", Release{3, 10, 0, true, []int{1160, 119, 1}}},
		{"4.18.0-513.5.1.el8_9.x86_64", Release{4, 18, 0, true, []int{513, 5, 1}}},
		{"6.1.0-13-cloud-amd64", Release{6, 1, 0, false, []int{13}}},
		{"5.15.0-1051-azure", Release{5, 15, 0, false, []int{1051}}},
		{"6.6.1-arch1-1", Release{6, 6, 1, false, nil}},
		{"3.7", Release{3, 7, 0, false, nil}},
		{"5.14.21-150500.55.39-default", Release{5, 14, 21, false, []int{150500, 55, 39}}},
		{"6.8.0-1.elrepo.x86_64", Release{6, 8, 0, false, []int{1}}},
	} {
		got, err := ParseRelease(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseRelease(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"linux", "", "6", "x.y"} {
		if _, err := ParseRelease(bad); err == nil {
			t.Errorf("ParseRelease(%q) accepted", bad)
		}
	}
}

func TestReleaseLess(t *testing.T) {
	order := []string{"2.6.32-358.el6", "2.6.32-504.el6", "2.6.32-504.3.el6", "2.6.37", "3.7", "3.8.0", "3.10.0-1160.el7", "4.18.0-80.el8", "6.1.0-13"}
	for i := range order {
		for j := range order {
			a, _ := ParseRelease(order[i])
			b, _ := ParseRelease(order[j])
			if got := a.Less(b); got != (i < j) {
				t.Errorf("%s < %s = %v", order[i], order[j], got)
			}
		}
	}
}

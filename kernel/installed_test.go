package kernel

import (
	"testing"
	"testing/fstest"
)

func TestInstalled(t *testing.T) {
	fsys := fstest.MapFS{
		"boot/vmlinuz-6.1.0-13-cloud-amd64":                {},
		"boot/initrd.img-6.1.0-13-cloud-amd64":             {},
		"boot/config-6.1.0-13-cloud-amd64":                 {},
		"usr/lib/modules/6.1.0-13-cloud-amd64/modules.dep": {},
		"boot/vmlinuz-5.14.0-362.el9.x86_64":               {},
		"boot/initramfs-5.14.0-362.el9.x86_64.img":         {},
		"lib/modules/5.14.0-362.el9.x86_64/config":         {},
		"usr/lib/modules/6.2.0-old/modules.dep":            {}, // modules left behind, no image
	}
	ks := Installed(fsys)
	if len(ks) != 3 {
		t.Fatalf("kernels = %+v", ks)
	}
	rhel, deb, old := ks[0], ks[1], ks[2]
	if rhel.Initrd != "boot/initramfs-5.14.0-362.el9.x86_64.img" || rhel.Config != "lib/modules/5.14.0-362.el9.x86_64/config" {
		t.Errorf("RHEL kernel = %+v", rhel)
	}
	if deb.Initrd != "boot/initrd.img-6.1.0-13-cloud-amd64" || deb.Config != "boot/config-6.1.0-13-cloud-amd64" || deb.ModulesDir != "usr/lib/modules/6.1.0-13-cloud-amd64" {
		t.Errorf("Debian kernel = %+v", deb)
	}
	if old.Image != "" || old.Initrd != "" {
		t.Errorf("leftover modules = %+v", old)
	}
	arch := Installed(fstest.MapFS{"boot/vmlinuz-linux": {}, "boot/initramfs-linux.img": {}, "usr/lib/modules/6.6.1-arch1-1/modules.dep": {}})
	if len(arch) != 2 || arch[1].Version != "linux" || arch[1].Initrd != "boot/initramfs-linux.img" {
		t.Fatalf("arch = %+v", arch)
	}
}

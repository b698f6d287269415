package lint

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/vhd"
)

// Bounds of the whole-image fuzz target: the largest image it tries, and
// what checking one may take.
const (
	maxFuzzImage   = 4 << 20
	maxFuzzAlloc   = 512 << 20 // bytes allocated, in all, by one open, inspect and check
	maxFuzzSeconds = 30
)

// fuzzGuestFiles is a small Debian-like guest: enough for inspect to find
// the distribution, the architecture and a kernel with its initramfs, and
// for most rules to decide.
func fuzzGuestFiles() map[string][]byte {
	const v = "6.1.0-13-cloud-amd64"
	elf := make([]byte, 64)
	copy(elf, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(elf[16:], 2)    // executable
	binary.LittleEndian.PutUint16(elf[18:], 0x3e) // x86-64
	return map[string][]byte{
		"etc/os-release":          []byte("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n"),
		"etc/fstab":               []byte("LABEL=root / ext4 rw,discard,errors=remount-ro,x-systemd.growfs 0 1\n/swapfile none swap sw 0 0\n"),
		"etc/default/grub":        []byte("GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"console=tty0 console=ttyS0,115200\"\n"),
		"boot/grub/grub.cfg":      []byte("menuentry 'Debian GNU/Linux' --class debian {\n\tlinux\t/boot/vmlinuz-" + v + " root=LABEL=root ro console=tty0 console=ttyS0,115200 quiet\n\tinitrd\t/boot/initrd.img-" + v + "\n}\n"),
		"etc/waagent.conf":        []byte("Provisioning.Agent=auto\nResourceDisk.Format=n\nResourceDisk.EnableSwap=n\n"),
		"etc/passwd":              []byte("root:x:0:0:root:/root:/bin/bash\ndebian:x:1000:1000::/home/debian:/bin/bash\n"),
		"etc/shadow":              []byte("root:*:19000:0:99999:7:::\ndebian:!:19000:0:99999:7:::\n"),
		"etc/ssh/sshd_config":     []byte("PermitRootLogin prohibit-password\nPasswordAuthentication no\nClientAliveInterval 120\n"),
		"etc/machine-id":          []byte("uninitialized\n"),
		"usr/bin/true":            elf,
		"usr/lib/systemd/systemd": elf,
		"usr/sbin/sshd":           elf,
		"var/lib/dpkg/status":     []byte("Package: openssh-server\nStatus: install ok installed\nVersion: 1:9.2p1-2+deb12u1\n\nPackage: waagent\nStatus: install ok installed\nVersion: 2.9.0.4-1\n\nPackage: linux-image-6.1.0-13-cloud-amd64\nStatus: install ok installed\nVersion: 6.1.55-1\n"),
		"boot/vmlinuz-" + v:       []byte("MZ fake kernel"),
		"boot/config-" + v:        []byte("CONFIG_HYPERV=m\nCONFIG_HYPERV_STORAGE=m\nCONFIG_HYPERV_NET=m\n# CONFIG_UDF_FS is not set\n"),
		"boot/initrd.img-" + v: fuzzInitrd("usr/lib/modules/"+v+"/kernel/drivers/hv/hv_vmbus.ko",
			"usr/lib/modules/"+v+"/kernel/drivers/scsi/hv_storvsc.ko", "usr/lib/modules/"+v+"/kernel/drivers/net/hyperv/hv_netvsc.ko"),
		"usr/lib/modules/" + v + "/modules.builtin": []byte("kernel/fs/ext4/ext4.ko\nkernel/drivers/scsi/sd_mod.ko\n"),
		"usr/lib/modules/" + v + "/modules.dep":     []byte("kernel/drivers/hv/hv_vmbus.ko:\n"),
	}
}

// fuzzInitrd is a gzipped newc cpio holding empty files named names.
func fuzzInitrd(names ...string) []byte {
	var c bytes.Buffer
	entry := func(name string, mode int) {
		fmt.Fprintf(&c, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", 1, mode, 0, 0, 1, 0, 0, 0, 0, 0, 0, len(name)+1, 0)
		c.WriteString(name + "\x00")
		for c.Len()%4 != 0 {
			c.WriteByte(0)
		}
	}
	for _, n := range names {
		entry(n, 0o100644)
	}
	entry("TRAILER!!!", 0)
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write(c.Bytes())
	w.Close()
	return z.Bytes()
}

// fuzzExt4 makes a small ext4 filesystem labelled root holding files;
// nil when mkfs.ext4 is missing.
func fuzzExt4(f *testing.F, files map[string][]byte) []byte {
	dir := f.TempDir()
	tree := filepath.Join(dir, "tree")
	for name, b := range files {
		p := filepath.Join(tree, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			f.Fatal(err)
		}
	}
	img := filepath.Join(dir, "root.ext4")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		f.Fatal(err)
	}
	os.Truncate(img, 384<<10)
	if err := exec.Command("mkfs.ext4", "-q", "-F", "-b", "1024", "-N", "64", "-L", "root", "-O", "^has_journal,^resize_inode", "-d", tree, img).Run(); err != nil {
		f.Logf("mkfs.ext4: %v; the whole-image fuzz target has no seed image", err)
		return nil
	}
	b, err := os.ReadFile(img)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// fuzzESP makes a small EFI system partition (FAT12, labelled EFI) with
// GRUB's stub grub.cfg and a boot loader; nil without dosfstools and mtools.
func fuzzESP(f *testing.F) []byte {
	dir := f.TempDir()
	img, cfg, efi := filepath.Join(dir, "esp.img"), filepath.Join(dir, "grub.cfg"), filepath.Join(dir, "BOOTX64.EFI")
	os.WriteFile(cfg, []byte("search.fs_uuid 0b5d5a47-0c71-4a8f-9e4a-6f1e1b7c2f1d root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n"), 0o644)
	os.WriteFile(efi, []byte("MZ fake shim"), 0o644)
	for _, c := range [][]string{
		{"mkfs.vfat", "-C", "-n", "EFI", img, "256"},
		{"mmd", "-i", img, "::/EFI", "::/EFI/debian", "::/EFI/BOOT"},
		{"mcopy", "-i", img, cfg, "::/EFI/debian/grub.cfg"},
		{"mcopy", "-i", img, efi, "::/EFI/BOOT/BOOTX64.EFI"},
	} {
		if err := exec.Command(c[0], c[1:]...).Run(); err != nil {
			f.Logf("%s: %v; the whole-image fuzz target has no GPT seed", c[0], err)
			return nil
		}
	}
	b, err := os.ReadFile(img)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// fuzzImageSeeds builds the guest as an ext4 filesystem in the first
// partition of an MBR disk, raw and as a fixed VHD, and on a GPT disk after
// an EFI system partition mounted at /boot/efi; those the tools here can
// make.
func fuzzImageSeeds(f *testing.F) [][]byte {
	root := fuzzExt4(f, fuzzGuestFiles())
	if root == nil {
		return nil
	}
	const start = 63 // the partition's first sector
	disk := make([]byte, start*512+len(root))
	copy(disk[start*512:], root)
	p := disk[446:]
	p[0], p[4] = 0x80, 0x83 // bootable, Linux
	binary.LittleEndian.PutUint32(p[8:], start)
	binary.LittleEndian.PutUint32(p[12:], uint32(len(root)/512))
	copy(disk[0x180:], "GRUB \x00Geom\x00Hard Disk\x00Read\x00 Error") // boot code, as GRUB's boot.img has it
	disk[510], disk[511] = 0x55, 0xaa
	footer, err := vhd.NewFixedFooter(int64(len(disk)), time.Unix(1700000000, 0))
	if err != nil {
		f.Fatal(err)
	}
	fb, err := footer.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	seeds := [][]byte{disk, append(bytes.Clone(disk), fb...)}
	if gpt := fuzzGPTSeed(f); gpt != nil {
		seeds = append(seeds, gpt)
	}
	return seeds
}

// fuzzGPTSeed is the guest on a GPT disk: an EFI system partition, then
// the root, packed with no alignment gaps; nil without sgdisk.
func fuzzGPTSeed(f *testing.F) []byte {
	files := fuzzGuestFiles()
	files["etc/fstab"] = append(bytes.Clone(files["etc/fstab"]), "LABEL=EFI /boot/efi vfat umask=0077 0 1\n"...)
	root, esp := fuzzExt4(f, files), fuzzESP(f)
	if root == nil || esp == nil {
		return nil
	}
	const first = 34 // after the protective MBR, the header and 32 sectors of entries
	espStart, rootStart := int64(first), int64(first+len(esp)/512)
	size := (rootStart+int64(len(root)/512))*512 + 33*512
	img := filepath.Join(f.TempDir(), "gpt.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		f.Fatal(err)
	}
	os.Truncate(img, size)
	if err := exec.Command("sgdisk", "-a", "1",
		"-n", fmt.Sprintf("1:%d:%d", espStart, rootStart-1), "-t", "1:ef00",
		"-n", fmt.Sprintf("2:%d:%d", rootStart, rootStart+int64(len(root)/512)-1), "-t", "2:8300", img).Run(); err != nil {
		f.Logf("sgdisk: %v; the whole-image fuzz target has no GPT seed", err)
		return nil
	}
	b, err := os.ReadFile(img)
	if err != nil {
		f.Fatal(err)
	}
	copy(b[espStart*512:], esp)
	copy(b[rootStart*512:], root)
	return b
}

// FuzzImage writes arbitrary bytes as an image file and opens, inspects
// and checks it as `vhdprep inspect` and `vhdprep check` do: whatever the
// image holds, no rule panics (Run reports a rule's panic as an internal
// error), nothing hangs, and allocation stays bounded.
func FuzzImage(f *testing.F) {
	for _, s := range fuzzImageSeeds(f) {
		f.Add(s)
	}
	f.Add(make([]byte, 1<<20))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > maxFuzzImage {
			return
		}
		path := filepath.Join(t.TempDir(), "disk.img")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		// A hang is a crash: the fuzzer keeps the input that caused it.
		hang := time.AfterFunc(maxFuzzSeconds*time.Second, func() {
			panic(fmt.Sprintf("opening, inspecting and checking an image of %d bytes took over %d s", len(b), maxFuzzSeconds))
		})
		defer hang.Stop()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		target, err := OpenImage(path)
		if err != nil {
			return
		}
		defer target.Close()
		if target.Guest != nil {
			target.Guest.Inspect()
		}
		rep := Run(target, Catalog(), nil)
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > maxFuzzAlloc {
			t.Fatalf("opening, inspecting and checking allocated %d MiB", n>>20)
		}
		for _, o := range rep.Outcomes {
			if strings.Contains(o.Reason, "internal error") {
				t.Fatalf("%s: %s", o.ID, o.Reason)
			}
		}
	})
}

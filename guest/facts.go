package guest

import (
	"bytes"
	"encoding/binary"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/vhdprep/vhdprep/raw/part"
	"github.com/vhdprep/vhdprep/rootfs"
)

// OS identifies the distribution.
type OS struct {
	ID      string   `json:"id"`
	Version string   `json:"version"`
	Name    string   `json:"name"`
	Like    []string `json:"like"`
	// Family decides which tools fix commands name: debian, rhel, suse,
	// arch, alpine, gentoo, or "" when unknown.
	Family string `json:"family"`
	Source string `json:"source"` // the file it was read from
}

// families maps distribution IDs (and ID_LIKE values) to families.
var families = map[string]string{
	"debian": "debian", "ubuntu": "debian", "raspbian": "debian", "linuxmint": "debian",
	"rhel": "rhel", "centos": "rhel", "fedora": "rhel", "rocky": "rhel", "almalinux": "rhel", "ol": "rhel", "amzn": "rhel", "azurelinux": "rhel", "mariner": "rhel",
	"sles": "suse", "opensuse": "suse", "opensuse-leap": "suse", "suse": "suse",
	"arch": "arch", "manjaro": "arch", "alpine": "alpine", "gentoo": "gentoo",
}

// DetectOS reads os-release, or the older release files.
func DetectOS(root fs.FS) OS {
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		b, err := fs.ReadFile(root, p)
		if err != nil {
			continue
		}
		kv := parseOSRelease(b)
		o := OS{ID: kv["ID"], Version: kv["VERSION_ID"], Name: kv["PRETTY_NAME"], Like: strings.Fields(kv["ID_LIKE"]), Source: "/" + p}
		o.Family = families[o.ID]
		for _, like := range o.Like {
			if o.Family == "" {
				o.Family = families[like]
			}
		}
		return o
	}
	for _, f := range []struct{ file, id, family string }{
		{"etc/redhat-release", "rhel", "rhel"}, {"etc/debian_version", "debian", "debian"},
		{"etc/alpine-release", "alpine", "alpine"}, {"etc/arch-release", "arch", "arch"},
		{"etc/gentoo-release", "gentoo", "gentoo"}, {"etc/SuSE-release", "sles", "suse"},
	} {
		if b, err := fs.ReadFile(root, f.file); err == nil {
			return OS{ID: f.id, Name: strings.TrimSpace(string(b)), Family: f.family, Source: "/" + f.file}
		}
	}
	return OS{}
}

func parseOSRelease(b []byte) map[string]string {
	kv := map[string]string{}
	// Every line, however long: a bufio.Scanner would stop at the first
	// over 64 KiB and miss the keys after it.
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && !strings.HasPrefix(k, "#") {
			kv[k] = strings.Trim(v, `"'`)
		}
	}
	return kv
}

// ELF identification.
const (
	elfMagic   = "\x7fELF"
	elfClass64 = 2
	elfLittle  = 1
)

var elfMachines = map[uint16]string{3: "i386", 0x28: "arm", 0x3e: "x86_64", 0xb7: "aarch64", 0xf3: "riscv64", 0x15: "ppc64", 0x16: "s390x"}

// archProbes are binaries every userland has.
var archProbes = []string{"usr/bin/true", "bin/true", "usr/bin/env", "bin/sh", "bin/busybox", "usr/lib/systemd/systemd", "sbin/init"}

// DetectArch reads the ELF header of a userland binary and names its
// architecture ("x86_64", "aarch64", ...), with "32-bit" appended for
// 32-bit userlands; "" when no binary could be read.
func DetectArch(root fs.FS) (arch, from string) {
	for _, p := range archProbes {
		f, err := root.Open(p)
		if err != nil {
			continue
		}
		hdr := make([]byte, 20)
		_, err = io.ReadFull(f, hdr)
		f.Close()
		if err != nil || string(hdr[:4]) != elfMagic {
			continue
		}
		var order binary.ByteOrder = binary.BigEndian
		if hdr[5] == elfLittle {
			order = binary.LittleEndian
		}
		name := elfMachines[order.Uint16(hdr[18:])]
		if name == "" {
			name = "unknown"
		}
		if hdr[4] != elfClass64 {
			name += " (32-bit)"
		}
		return name, "/" + p
	}
	return "", ""
}

// DetectInit names the init system /sbin/init starts.
func DetectInit(root rootfs.FS) string {
	switch target := finalTarget(root, "sbin/init"); {
	case strings.HasSuffix(target, "/systemd"):
		return "systemd"
	case strings.HasSuffix(target, "openrc-init"):
		return "openrc"
	case strings.HasSuffix(target, "busybox"):
		return "busybox"
	}
	switch {
	case exists(root, "usr/lib/systemd/systemd") || exists(root, "lib/systemd/systemd"):
		return "systemd"
	case exists(root, "sbin/openrc") || exists(root, "usr/sbin/openrc"):
		return "openrc"
	case exists(root, "etc/inittab"):
		return "sysvinit"
	}
	return ""
}

// finalTarget follows a chain of symlinks (a few hops) and returns the last
// name; only its last components are meaningful.
func finalTarget(root rootfs.FS, name string) string {
	cur := name
	for i := 0; i < 8; i++ {
		t, err := root.ReadLink(cur)
		if err != nil {
			return cur
		}
		if strings.HasPrefix(t, "/") {
			cur = strings.TrimPrefix(path.Clean(t), "/")
		} else {
			cur = path.Join(path.Dir(cur), t)
		}
	}
	return cur
}

func exists(root fs.FS, name string) bool {
	_, err := fs.Stat(root, name)
	return err == nil
}

// Boot says how the disk can start on Azure.
type Boot struct {
	Gen1   bool   `json:"gen1_bios"`
	Gen2   bool   `json:"gen2_uefi"`
	Detail string `json:"detail"`
}

// uefiFallbackLoaders are the removable-media paths UEFI firmware boots.
var uefiFallbackLoaders = []string{"boot/efi/EFI/BOOT/BOOTX64.EFI", "boot/efi/EFI/BOOT/BOOTAA64.EFI", "boot/efi/EFI/boot/bootx64.efi"}

// DetectBoot checks for a BIOS boot path (boot code in the MBR, and on GPT a
// BIOS boot partition) and a UEFI one (an ESP with the fallback loader).
func (g *Guest) DetectBoot() Boot {
	var b Boot
	var notes []string
	if g.Image != nil {
		code := make([]byte, 440)
		g.Image.Disk.ReadAt(code, 0)
		hasCode := bytes.Count(code, []byte{0}) < len(code)
		t := g.Layout.Table
		switch {
		case !hasCode:
			notes = append(notes, "no boot code in the MBR")
		case t.Scheme == part.SchemeGPT && !hasPartition(t, part.Partition.IsBIOSBoot):
			notes = append(notes, "GPT without a BIOS boot partition")
		default:
			b.Gen1 = true
			if bytes.Contains(code, []byte("GRUB")) {
				notes = append(notes, "GRUB in the MBR")
			}
		}
		if !hasPartition(t, part.Partition.IsESP) {
			notes = append(notes, "no EFI system partition")
		}
	}
	if g.Root != nil {
		for _, p := range uefiFallbackLoaders {
			if exists(g.Root, p) {
				b.Gen2 = true
				notes = append(notes, "/"+p)
				break
			}
		}
	}
	b.Detail = strings.Join(notes, "; ")
	return b
}

func hasPartition(t *part.Table, is func(part.Partition) bool) bool {
	for _, p := range t.Partitions {
		if is(p) {
			return true
		}
	}
	return false
}

// BootsGen2 is, for diskimage.Container, a function that tells whether the
// image at path boots through UEFI (a Gen2 VM) and how that was found. It
// opens the image only when asked: for disks above 2 TiB.
func BootsGen2(path string) func() (bool, string) {
	return func() (bool, string) {
		g, err := Open(path)
		if err != nil {
			return false, err.Error()
		}
		defer g.Close()
		b := g.DetectBoot()
		return b.Gen2, b.Detail
	}
}

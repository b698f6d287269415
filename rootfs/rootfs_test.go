package rootfs

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/raw/volume"
)

func diskRoot(t *testing.T, recipe string) *Root {
	t.Helper()
	f, err := os.Open(testimage.Path(t, recipe))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	l, err := volume.List(raw.NewFile(f, st.Size()))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Assemble(VolumesOf(l))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDebianRootOnExt4(t *testing.T) {
	r := diskRoot(t, "disk-debian-mbr")
	if len(r.Mounts) != 1 || r.Mounts[0].Volume != "p1" || r.Mounts[0].Spec != "UUID=6b8f4c64-1c1e-4f0e-9a0b-00000000d12a" || len(r.Warnings) != 0 {
		t.Fatalf("mounts %+v warnings %v", r.Mounts, r.Warnings)
	}
	b, err := r.ReadFile("etc/os-release")
	if err != nil || !strings.Contains(string(b), "ID=debian") {
		t.Fatalf("os-release: %q %v", b, err)
	}
	// /bin -> usr/bin: a symlinked directory in the middle of a path.
	if b, err := r.ReadFile("bin/true"); err != nil || len(b) < 1000 || string(b[1:4]) != "ELF" {
		t.Fatalf("bin/true through the /bin symlink: %d bytes, %v", len(b), err)
	}
	// /usr/sbin/init -> ../lib/systemd/systemd: relative, through usr/lib.
	if info, err := r.Stat("sbin/init"); err != nil || info.Mode()&fs.ModeSymlink != 0 {
		t.Fatalf("stat sbin/init: %v %v", info, err)
	}
	if info, err := r.Lstat("bin"); err != nil || info.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("lstat bin: %v %v", info, err)
	}
	ents, err := r.ReadDir("etc/conf.d") // an htree directory
	if err != nil || len(ents) != 320 {
		t.Fatalf("etc/conf.d: %d entries, %v", len(ents), err)
	}
	if _, err := r.ReadFile("etc/nonexistent"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if err := fstest.TestFS(subFS(t, r, "etc/default"), "grub"); err != nil {
		t.Fatal(err)
	}
}

func TestRHELRootOnLVMWithBoot(t *testing.T) {
	r := diskRoot(t, "disk-rhel-lvm")
	var at []string
	for _, m := range r.Mounts {
		at = append(at, m.Path+"="+m.Volume)
	}
	if strings.Join(at, " ") != "/=rhel/root /boot=p2 /boot/efi=p1" || len(r.Warnings) != 0 {
		t.Fatalf("mounts %v, warnings %v", at, r.Warnings)
	}
	// The ESP: vfat, looked up case-insensitively as firmware does.
	for _, p := range []string{"boot/efi/EFI/BOOT/BOOTX64.EFI", "boot/efi/efi/boot/bootx64.efi"} {
		if b, err := r.ReadFile(p); err != nil || string(b) != "MZ not a real loader" {
			t.Fatalf("%s: %q %v", p, b, err)
		}
	}
	if b, err := r.ReadFile("etc/redhat-release"); err != nil || !strings.Contains(string(b), "9.3") {
		t.Fatalf("redhat-release from XFS: %q %v", b, err)
	}
	ents, err := r.ReadDir("boot/loader/entries")
	if err != nil || len(ents) != 1 {
		t.Fatalf("BLS entries on the /boot partition: %v %v", ents, err)
	}
	if _, err := r.ReadFile("boot/grub2/grubenv"); err != nil {
		t.Fatal(err)
	}
}

// subFS roots a Tree at dir, for fstest.
func subFS(t *testing.T, r fs.FS, dir string) fs.FS {
	s, err := fs.Sub(r, dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDirSymlinksStayInside(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("guest"), 0o755)
	os.Symlink("usr/bin", filepath.Join(root, "bin"))
	os.Symlink("/etc/hostname-real", filepath.Join(root, "etc/hostname"))
	os.WriteFile(filepath.Join(root, "etc/hostname-real"), []byte("guest-host"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(root, "etc/escape")) // on the host this is the host's passwd
	os.Symlink("../../../../../../../etc/shadow", filepath.Join(root, "etc/climb"))
	os.Symlink("loop2", filepath.Join(root, "loop1"))
	os.Symlink("loop1", filepath.Join(root, "loop2"))

	d := Dir(root)
	if b, err := d.ReadFile("bin/tool"); err != nil || string(b) != "guest" {
		t.Fatalf("bin/tool: %q %v", b, err)
	}
	if b, err := d.ReadFile("etc/hostname"); err != nil || string(b) != "guest-host" {
		t.Fatalf("absolute link inside the guest: %q %v", b, err)
	}
	for _, name := range []string{"etc/escape", "etc/climb"} {
		if _, err := d.ReadFile(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s reached outside the guest: %v", name, err)
		}
	}
	if _, err := d.ReadFile("loop1"); !errors.Is(err, ErrLoop) {
		t.Fatalf("symlink loop: %v", err)
	}
	if _, err := d.ReadFile("/etc/hostname"); err == nil {
		t.Fatal("an absolute fs.FS name was accepted")
	}
	if err := fstest.TestFS(subFS(t, d, "usr"), "bin/tool"); err != nil {
		t.Fatal(err)
	}
}

func TestParseFstab(t *testing.T) {
	es, err := ParseFstab([]byte("# comment\n\nUUID=abc / ext4 errors=remount-ro 0 1\n/dev/sdb1 /mnt/data\\040disk xfs defaults,nofail 0 2\n/swapfile none swap sw 0 0\n"))
	if err != nil || len(es) != 3 {
		t.Fatalf("%+v %v", es, err)
	}
	if es[0].Line != 3 || es[1].File != "/mnt/data disk" || !es[1].HasOption("nofail") || !es[2].IsSwap() || es[0].Passno != 1 {
		t.Fatalf("%+v", es)
	}
	es, err = ParseFstab([]byte("UUID=abc /\n/dev/sda1 /boot ext4\nnone\n"))
	if err == nil || !strings.Contains(err.Error(), "line 1") || !strings.Contains(err.Error(), "line 3") || len(es) != 1 || es[0].File != "/boot" || es[0].Line != 2 {
		t.Fatalf("short lines: %+v %v", es, err)
	}
}

func FuzzParseFstab(f *testing.F) {
	f.Add([]byte("UUID=abc / ext4 defaults 0 1\n/dev/x\\040y /m\\0 swap sw\n"))
	f.Add([]byte("# /etc/fstab: static file system information.\n#\n# <file system> <mount point>   <type>  <options>       <dump>  <pass>\n" +
		"UUID=6b8f4c64-1c1e-4f0e-9a0b-00000000d12a /               ext4    errors=remount-ro 0       1\n" +
		"UUID=ABCD-1234  /boot/efi       vfat    umask=0077      0       1\n/swapfile none swap sw 0 0\n" +
		"/dev/mapper/rhel-root   /                       xfs     defaults        0 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, _ := ParseFstab(b)
		last := 0
		for _, e := range es {
			if e.Line <= last || e.Spec == "" || e.File == "" || e.Type == "" || len(e.Options) == 0 {
				t.Fatalf("entry %+v after line %d", e, last)
			}
			last = e.Line
		}
	})
}

// ParseFstab reads fstab as libmount does: util-linux's findmnt, reading
// the same files, is the oracle.
func TestParseFstabAgreesWithFindmnt(t *testing.T) {
	testimage.RequireTools(t, "findmnt")
	for name, text := range map[string]string{
		"Debian's installer": "# /etc/fstab: static file system information.\n#\n# <file system> <mount point>   <type>  <options>       <dump>  <pass>\n" +
			"# / was on /dev/sda1 during installation\nUUID=6b8f4c64-1c1e-4f0e-9a0b-00000000d12a /               ext4    errors=remount-ro 0       1\n" +
			"# swap was on /dev/sda5 during installation\nUUID=11111111-2222-3333-4444-555555555555 none            swap    sw              0       0\n" +
			"/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto     0       0\n",
		"RHEL's anaconda": "\n#\n# /etc/fstab\n# Created by anaconda on Tue Oct 10 10:10:10 2023\n#\n" +
			"/dev/mapper/rhel-root   /                       xfs     defaults        0 0\nUUID=3c8f1c3e-0000-4000-8000-000000000001 /boot                   xfs     defaults        0 0\n" +
			"UUID=ABCD-1234          /boot/efi               vfat    umask=0077,shortname=winnt 0 2\n/dev/mapper/rhel-swap   none                    swap    defaults        0 0\n",
		"Ubuntu's cloud image": "LABEL=cloudimg-rootfs\t/\t ext4\tdiscard,errors=remount-ro\t0 1\nLABEL=UEFI\t/boot/efi\tvfat\tumask=0077\t0 1\n",
		"a builder's": "  /dev/sdb1\t/mnt/my\\040data xfs defaults,nofail 0 2\n/dev/sdc1 /srv ext4\n/swapfile none swap sw 0 0 and more\n" +
			"tmpfs /tmp tmpfs mode=1777,size=50%\n#UUID=off / ext4 defaults 0 1\n",
	} {
		f := filepath.Join(t.TempDir(), "fstab")
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("findmnt", "--fstab", "--tab-file", f, "-J", "-o", "SOURCE,TARGET,FSTYPE,OPTIONS,FREQ,PASSNO").Output()
		if err != nil {
			t.Fatalf("%s: findmnt: %v", name, err)
		}
		var want struct {
			Filesystems []struct {
				Source, Target, Fstype string
				Options                *string
				Freq, Passno           int
			}
		}
		if err := json.Unmarshal(out, &want); err != nil {
			t.Fatalf("%s: findmnt's JSON: %v\n%s", name, err, out)
		}
		got, err := ParseFstab([]byte(text))
		if err != nil || len(got) != len(want.Filesystems) {
			t.Fatalf("%s: %d entries (%v), findmnt %d", name, len(got), err, len(want.Filesystems))
		}
		for i, w := range want.Filesystems {
			g := got[i]
			opts := "defaults"
			if w.Options != nil {
				opts = *w.Options
			}
			if g.Spec != w.Source || g.File != w.Target || g.Type != w.Fstype || strings.Join(g.Options, ",") != opts || g.Freq != w.Freq || g.Passno != w.Passno {
				t.Errorf("%s: entry %d read as %+v, findmnt %+v (options %s)", name, i, g, w, opts)
			}
		}
	}
}

package rootfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// fatImage formats a FAT filesystem with mkfs.vfat and fills it with mtools,
// including a file of bigSize bytes that spans many clusters.
func fatImage(t testing.TB, bits string, size, bigSize int) []byte {
	t.Helper()
	testimage.RequireTools(t, "mkfs.vfat", "mcopy", "mmd")
	dir := t.TempDir()
	img := filepath.Join(dir, "esp")
	os.WriteFile(img, nil, 0o644)
	os.Truncate(img, int64(size))
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("mkfs.vfat", "-F", bits, img)
	big := filepath.Join(dir, "grubx64.efi")
	os.WriteFile(big, bytes.Repeat([]byte("0123456789abcdef"), bigSize/16), 0o644)
	small := filepath.Join(dir, "BOOTX64.EFI")
	os.WriteFile(small, []byte("MZ loader"), 0o644)
	run("mmd", "-i", img, "::/EFI", "::/EFI/BOOT", "::/EFI/debian", "::/EFI/A Long Directory Name")
	run("mcopy", "-i", img, small, "::/EFI/BOOT/BOOTX64.EFI")
	run("mcopy", "-i", img, big, "::/EFI/debian/grubx64.efi")
	run("mcopy", "-i", img, small, "::/EFI/A Long Directory Name/Some Long File Name.conf")
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFAT(t *testing.T) {
	for bits, size := range map[string]int{"12": 2 << 20, "16": 32 << 20, "32": 64 << 20} {
		t.Run("FAT"+bits, func(t *testing.T) {
			img := fatImage(t, bits, size, 640000)
			tr, err := OpenFS(bytes.NewReader(img), int64(len(img)), "vfat")
			if err != nil {
				t.Fatal(err)
			}
			if b, err := tr.ReadFile("efi/boot/bootx64.efi"); err != nil || string(b) != "MZ loader" {
				t.Fatalf("bootx64.efi: %q %v", b, err)
			}
			if b, err := tr.ReadFile("EFI/debian/grubx64.efi"); err != nil || len(b) != 640000 || !bytes.HasPrefix(b[639984:], []byte("0123456789abcdef")) {
				t.Fatalf("multi-cluster file: %d bytes, %v", len(b), err)
			}
			ents, err := tr.ReadDir("EFI")
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			sort.Strings(names)
			if err != nil || strings.Join(names, ",") != "A Long Directory Name,BOOT,debian" {
				t.Fatalf("EFI: %v %v", names, err)
			}
			if _, err := tr.ReadFile("EFI/A Long Directory Name/Some Long File Name.conf"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A FAT whose chain loops ends with an error, not a hang.
func TestFATLoopingChain(t *testing.T) {
	img := fatImage(t, "16", 32<<20, 640000)
	f, err := openFAT(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.find("EFI/debian/grubx64.efi")
	if err != nil {
		t.Fatal(err)
	}
	// Point the file's second cluster back at its first.
	reserved := int64(binary.LittleEndian.Uint16(img[14:]))
	second := f.fat[e.cluster]
	binary.LittleEndian.PutUint16(img[reserved*512+int64(second)*2:], uint16(e.cluster))
	tr, err := OpenFS(bytes.NewReader(img), int64(len(img)), "vfat")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.ReadFile("EFI/debian/grubx64.efi"); err == nil {
		t.Fatal("a looping cluster chain was read")
	}
}

func TestFATDirectoryLoop(t *testing.T) {
	img := fatImage(t, "16", 32<<20, 1000)
	f, err := openFAT(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	efi, _ := f.find("EFI")
	boot, _ := f.find("EFI/BOOT")
	// Turn EFI/BOOT/BOOTX64.EFI into a directory that is EFI again.
	at := f.dataStart + int64(boot.cluster-2)*f.clusterSize
	i := bytes.Index(img[at:at+f.clusterSize], []byte("BOOTX64 EFI"))
	if i < 0 {
		t.Fatal("no BOOTX64.EFI entry")
	}
	img[at+int64(i)+11] = 0x10
	binary.LittleEndian.PutUint16(img[at+int64(i)+26:], uint16(efi.cluster))
	tr, err := OpenFS(bytes.NewReader(img), int64(len(img)), "vfat")
	if err != nil {
		t.Fatal(err)
	}
	walked := 0
	err = fs.WalkDir(tr, ".", func(p string, d fs.DirEntry, err error) error {
		if walked++; walked > 1000 {
			return fs.SkipAll
		}
		return err
	})
	if walked > 1000 || !errors.Is(err, ErrDirLoop) {
		t.Fatalf("walk over a directory loop: %d entries, %v", walked, err)
	}
}

func FuzzFAT(f *testing.F) {
	f.Add(fatImage(f, "12", 128<<10, 16000))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := OpenFS(bytes.NewReader(b), int64(len(b)), "vfat")
		if err != nil {
			return
		}
		tr.ReadFile("EFI/BOOT/BOOTX64.EFI")
		tr.ReadDir("EFI")
	})
}

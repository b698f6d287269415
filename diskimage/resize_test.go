package diskimage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/raw"
)

// gptDisk makes a raw disk of size with two partitions, by sfdisk.
func gptDisk(t *testing.T, path string, size int64, label string) {
	t.Helper()
	testimage.RequireTools(t, "sfdisk")
	writeSparse(t, path, size, 2*raw.MiB, 13*raw.MiB)
	cmd := exec.Command("sfdisk", "-q", path)
	cmd.Stdin = strings.NewReader("label: " + label + "\n,10M\n,10M\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
}

// sfdiskVerify asks sfdisk, the independent oracle, whether the table is
// sound, and returns its dump without the lines that name the file.
func sfdiskVerify(t *testing.T, path string) string {
	t.Helper()
	out, _ := exec.Command("sfdisk", "--verify", path).CombinedOutput()
	if !strings.Contains(string(out), "No errors detected") || strings.Contains(string(out), "mismatch") {
		t.Fatalf("sfdisk --verify %s:\n%s", path, out)
	}
	dump, err := exec.Command("sfdisk", "-d", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(`(?m)^device: .*$`).ReplaceAllString(strings.ReplaceAll(string(dump), path, "DISK"), "")
}

func TestResizeGrowsGPTRawAndMovesBackup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.raw")
	gptDisk(t, path, 40*raw.MiB, "gpt")
	before := sfdiskVerify(t, path)
	res, err := Resize(ResizeOptions{Path: path, Size: 64 * raw.MiB})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || !res.GPTMoved || fileSize(t, path) != 64*raw.MiB {
		t.Fatalf("result %+v, file %d bytes", res, fileSize(t, path))
	}
	after := sfdiskVerify(t, path)
	if strings.Replace(after, "last-lba: 131038", "last-lba: 81886", 1) != before {
		t.Fatalf("partitions changed beyond last-lba:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestResizeFixedVHDMovesFooterAndGPT(t *testing.T) {
	dir := t.TempDir()
	src, img := filepath.Join(dir, "disk.raw"), filepath.Join(dir, "disk.vhd")
	gptDisk(t, src, 40*raw.MiB, "gpt")
	if _, err := Convert(context.Background(), ConvertOptions{Input: src, Output: img}); err != nil {
		t.Fatal(err)
	}
	if _, err := Resize(ResizeOptions{Path: img, Size: 100 * raw.MiB}); err != nil {
		t.Fatal(err)
	}
	if got := qemuVirtualSize(t, img); got != 100*raw.MiB || fileSize(t, img) != 100*raw.MiB+512 {
		t.Fatalf("qemu-img sees %d, file %d", got, fileSize(t, img))
	}
	back := filepath.Join(dir, "back.raw")
	qemuImg(t, "convert", "-f", "vpc", "-O", "raw", img, back)
	sfdiskVerify(t, back)
	// The old footer must not survive as data inside the guest's new space.
	b := make([]byte, 8)
	f, _ := os.Open(back)
	f.ReadAt(b, 40*raw.MiB)
	f.Close()
	if string(b) == "conectix" {
		t.Fatal("the old footer is still inside the grown disk")
	}
}

func TestResizeAlignAndNothingToDo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.raw")
	writeSparse(t, path, raw.MiB+1, 0)
	res, err := Resize(ResizeOptions{Path: path, Align: true})
	if err != nil || res.NewSize != 2*raw.MiB || fileSize(t, path) != 2*raw.MiB {
		t.Fatalf("--align: %+v, %v, file %d", res, err, fileSize(t, path))
	}
	res, err = Resize(ResizeOptions{Path: path, Align: true})
	if err != nil || res.Changed {
		t.Fatalf("--align on an aligned image: %+v, %v", res, err)
	}
}

func TestResizeShrinkIsGuarded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.raw")
	gptDisk(t, path, 64*raw.MiB, "gpt") // partitions end at 21 MiB
	if _, err := Resize(ResizeOptions{Path: path, Size: 40 * raw.MiB}); err == nil || !strings.Contains(err.Error(), "--shrink") {
		t.Fatalf("shrink without --shrink: %v", err)
	}
	_, err := Resize(ResizeOptions{Path: path, Size: 21 * raw.MiB, Shrink: true})
	if err == nil || !strings.Contains(err.Error(), "smallest size is 22 MiB") {
		t.Fatalf("shrink into the GPT backup area: %v", err)
	}
	if fileSize(t, path) != 64*raw.MiB {
		t.Fatal("a refused shrink changed the file")
	}
	if _, err := Resize(ResizeOptions{Path: path, Size: 22 * raw.MiB, Shrink: true}); err != nil {
		t.Fatal(err)
	}
	sfdiskVerify(t, path)
}

func TestResizeRefusesContainersItCannotChange(t *testing.T) {
	dir := t.TempDir()
	src, q := filepath.Join(dir, "d.raw"), filepath.Join(dir, "d.qcow2")
	writeSparse(t, src, 4*raw.MiB, 0)
	qemuImg(t, "convert", "-O", "qcow2", src, q)
	_, err := Resize(ResizeOptions{Path: q, Size: 8 * raw.MiB})
	if err == nil || !strings.Contains(err.Error(), "vhdprep convert") {
		t.Fatalf("resize of qcow2: %v", err)
	}
}

// On a disk without a partition table the data says where the guest's disk
// ends: a shrink below its last data extent (SEEK_DATA) is refused with
// the numbers, as one into a partition is; one above it keeps every byte
// (qemu-img compare against the original).
func TestResizeShrinkKeepsDataWithoutATable(t *testing.T) {
	dir := t.TempDir()
	path, orig := filepath.Join(dir, "disk.raw"), filepath.Join(dir, "orig.raw")
	writeSparse(t, path, 64*raw.MiB, 0, 40*raw.MiB)
	writeSparse(t, orig, 64*raw.MiB, 0, 40*raw.MiB)
	_, err := Resize(ResizeOptions{Path: path, Size: 30 * raw.MiB, Shrink: true})
	if err == nil || !strings.Contains(err.Error(), "no partition table") || !strings.Contains(err.Error(), "data up to byte 42008576") || !strings.Contains(err.Error(), "smallest size is 41 MiB") {
		t.Fatalf("shrink below the data: %v", err)
	}
	if fileSize(t, path) != 64*raw.MiB {
		t.Fatal("a refused shrink changed the file")
	}
	if _, err := Resize(ResizeOptions{Path: path, Size: 41 * raw.MiB, Shrink: true}); err != nil {
		t.Fatal(err)
	}
	assertSameData(t, "raw", path, "raw", orig)
}

// A block device is read (info, convert from it) but never changed in
// place, and no lock file is made beside it.
func TestBlockDeviceIsReadNotResized(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("attaching a loop device needs root")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.raw")
	writeSparse(t, img, 21*raw.MiB, 0, 20*raw.MiB)
	out, err := exec.Command("losetup", "--find", "--show", img).Output()
	if err != nil {
		t.Skipf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	info, err := Inspect(dev, nil)
	if err != nil || info.VirtualSize != 21*raw.MiB {
		t.Fatalf("info of %s: %+v, %v", dev, info, err)
	}
	for name, run := range map[string]func() error{
		"resize": func() error { _, err := Resize(ResizeOptions{Path: dev, Size: 30 * raw.MiB}); return err },
		"convert --in-place": func() error {
			_, err := Convert(context.Background(), ConvertOptions{Input: dev, InPlace: true})
			return err
		},
	} {
		if err := run(); err == nil || !strings.Contains(err.Error(), "block device") {
			t.Errorf("%s of %s: %v", name, dev, err)
		}
		if _, err := os.Stat(dev + ".vhdprep-lock"); err == nil {
			os.Remove(dev + ".vhdprep-lock")
			t.Errorf("%s left a lock file beside %s", name, dev)
		}
	}
	vhdOut := filepath.Join(dir, "disk.vhd")
	if _, err := Convert(context.Background(), ConvertOptions{Input: dev, Output: vhdOut}); err != nil {
		t.Fatal(err)
	}
	assertSameData(t, "raw", img, "vpc", vhdOut)
}

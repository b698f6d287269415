package diskimage

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/raw/part"
)

// sgdiskVerify asks sgdisk, the independent oracle, whether the GPT of the
// disk in path (a raw image or fixed VHD, extracted by qemu-img) is sound:
// its backup where the disk ends, CRCs right, partitions inside.
func sgdiskVerify(t *testing.T, path string) {
	t.Helper()
	testimage.RequireTools(t, "sgdisk")
	if f, _, _ := detectFile(path); f == VHDFixed {
		back := path + ".back.raw"
		qemuImg(t, "convert", "-f", "vpc", "-O", "raw", path, back)
		defer os.Remove(back)
		path = back
	}
	out, err := exec.Command("sgdisk", "-v", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") {
		t.Fatalf("sgdisk -v %s: %v\n%s", filepath.Base(path), err, out)
	}
}

// Every operation that changes a GPT disk's size moves the backup GPT to
// the new end, as resize does: convert when the raw size is not a whole
// MiB, convert --size, convert --in-place (with and without --size),
// convert --to raw --size. sgdisk -v is the oracle, and qemu-img compare
// says the partitions' data is the input's.
func TestEverySizeChangeMovesTheBackupGPT(t *testing.T) {
	const size = 40*raw.MiB + 3584 // not a whole MiB
	ctx := context.Background()
	for _, c := range []struct {
		name string
		opts ConvertOptions
		want int64
	}{
		{"convert", ConvertOptions{}, 41 * raw.MiB},
		{"convert --size", ConvertOptions{Size: 64 * raw.MiB}, 64 * raw.MiB},
		{"convert --in-place", ConvertOptions{InPlace: true}, 41 * raw.MiB},
		{"convert --in-place --size", ConvertOptions{InPlace: true, Size: 50 * raw.MiB}, 50 * raw.MiB},
		{"convert --to raw --size", ConvertOptions{ToRaw: true, Size: 48*raw.MiB + 512}, 48*raw.MiB + 512},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "disk.raw")
			gptDisk(t, in, size, "gpt")
			orig := filepath.Join(dir, "orig.raw")
			qemuImg(t, "convert", "-f", "raw", "-O", "raw", in, orig)
			opts := c.opts
			opts.Input, opts.Output = in, filepath.Join(dir, "out")
			if opts.InPlace {
				opts.Output = in
			}
			res, err := Convert(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.VirtualSize != c.want {
				t.Fatalf("virtual size %d, want %d", res.VirtualSize, c.want)
			}
			sgdiskVerify(t, opts.Output)
			im, err := Open(opts.Output)
			if err != nil {
				t.Fatal(err)
			}
			tab, err := part.Read(im.Disk, im.Disk.Size())
			im.Close()
			if err != nil || len(tab.Warnings) != 0 || len(tab.Partitions) != 2 {
				t.Fatalf("our reader: %+v, %v", tab, err)
			}
			outFmt := "vpc"
			if opts.ToRaw {
				outFmt = "raw"
			}
			// The partitions hold what they held: compare them (qemu-img
			// compare of the whole disks would also see the moved backup).
			assertSamePartitions(t, orig, opts.Output, outFmt)
		})
	}
}

// assertSamePartitions compares the bytes of gptDisk's two partitions
// (1 to 21 MiB) in a raw image and in an image of format outFmt, which
// qemu-img extracts. The sectors before them hold the GPT, which a move
// rewrites.
func assertSamePartitions(t *testing.T, rawPath, out, outFmt string) {
	t.Helper()
	back := out + ".back"
	qemuImg(t, "convert", "-f", outFmt, "-O", "raw", out, back)
	a, b := make([]byte, 20*raw.MiB), make([]byte, 20*raw.MiB)
	for _, r := range []struct {
		path string
		buf  []byte
	}{{rawPath, a}, {back, b}} {
		f, err := os.Open(r.path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.ReadAt(r.buf, raw.MiB)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(a, b) {
		t.Fatal("the partitions' data changed")
	}
}

// A disk whose GPT backup was left mid-disk (grown by truncate, as the
// issue's users did): DSK001's remedy, resize --align, moves it even when
// the size is already a whole MiB.
func TestResizeAlignRepairsAMisplacedBackup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.raw")
	gptDisk(t, path, 40*raw.MiB, "gpt")
	if err := os.Truncate(path, 64*raw.MiB); err != nil {
		t.Fatal(err)
	}
	res, err := Resize(ResizeOptions{Path: path, Align: true})
	if err != nil || !res.Changed || !res.GPTMoved {
		t.Fatalf("resize --align: %+v, %v", res, err)
	}
	sgdiskVerify(t, path)
}

// A GPT whose primary header is damaged converts as it is when the size
// stays (readers use the backup, which stays at the end); a size change,
// which would need the backup moved from a primary that cannot be trusted,
// is refused with what to do.
func TestDamagedPrimaryGPT(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "disk.raw")
	gptDisk(t, in, 40*raw.MiB, "gpt")
	f, err := os.OpenFile(in, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("X"), 512+60) // the disk GUID, in the primary header: its CRC fails
	f.Close()
	out := filepath.Join(dir, "same.vhd")
	if _, err := Convert(context.Background(), ConvertOptions{Input: in, Output: out}); err != nil {
		t.Fatalf("convert at the same size: %v", err)
	}
	assertSameData(t, "raw", in, "vpc", out)
	_, err = Convert(context.Background(), ConvertOptions{Input: in, Output: filepath.Join(dir, "big.vhd"), Size: 64 * raw.MiB})
	if err == nil || !strings.Contains(err.Error(), "primary GPT is damaged") {
		t.Fatalf("convert --size: %v", err)
	}
	assertOnly(t, dir, "disk.raw", "same.vhd")
}

// resize of such a disk is refused before the file is touched.
func TestResizeRefusesADamagedPrimaryGPTUntouched(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.raw")
	gptDisk(t, path, 40*raw.MiB, "gpt")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("X"), 512+60)
	f.Close()
	before, _ := os.ReadFile(path)
	_, err = Resize(ResizeOptions{Path: path, Size: 64 * raw.MiB})
	if err == nil || !strings.Contains(err.Error(), "primary GPT is damaged") || strings.Contains(err.Error(), "restored") {
		t.Fatalf("resize: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("the file changed")
	}
}

// detectFile tells the container format of the file at path and its size.
func detectFile(path string) (Format, int64, error) {
	f, size, err := raw.OpenFile(path, os.O_RDONLY)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	format, err := Detect(f, size)
	return format, size, err
}

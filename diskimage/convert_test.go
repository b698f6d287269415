package diskimage

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/vhd"
)

// Raw images of the sizes that matter become fixed VHDs that qemu-img reads
// with exactly the size vhdprep meant and the same data.
func TestConvertRawSizesAgreeWithQemu(t *testing.T) {
	for _, size := range []int64{
		raw.MiB - 1, raw.MiB, raw.MiB + 1, 20 * raw.MiB,
		100*raw.MiB + 3*512, // CHS rounding differs from the size
		3 << 30,             // multi-GiB, cheap because sparse
	} {
		t.Run(strconv.FormatInt(size, 10), func(t *testing.T) {
			dir := t.TempDir()
			in, out := filepath.Join(dir, "in.raw"), filepath.Join(dir, "out.vhd")
			writeSparse(t, in, size, 0, size/2&^511, size-min(size, 4096))
			res, err := Convert(context.Background(), ConvertOptions{Input: in, Output: out})
			if err != nil {
				t.Fatal(err)
			}
			want := raw.AlignMiB(size)
			if res.VirtualSize != want || fileSize(t, out) != want+512 {
				t.Fatalf("virtual size %d, file %d; want %d and %d", res.VirtualSize, fileSize(t, out), want, want+512)
			}
			if got := qemuVirtualSize(t, out); got != want {
				t.Fatalf("qemu-img sees %d bytes, want %d", got, want)
			}
			assertSameData(t, "raw", in, "vpc", out)
			if a := allocated(t, out); a > 4*raw.MiB {
				t.Fatalf("output allocates %d bytes for 192 KiB of data: holes were filled", a)
			}
		})
	}
}

// qcow2 (plain, zlib- and zstd-compressed, v2) and dynamic VHD inputs,
// written by qemu-img, convert to the same data.
func TestConvertFormatsQemuWrote(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	const size = 64*raw.MiB + 7*512
	writeSparse(t, src, size, 0, 5*raw.MiB+512, 40*raw.MiB, size-4096)
	for name, args := range map[string][]string{
		"qcow2":      {"-O", "qcow2"},
		"qcow2-v2":   {"-O", "qcow2", "-o", "compat=0.10"},
		"qcow2-zlib": {"-O", "qcow2", "-c"},
		"qcow2-zstd": {"-O", "qcow2", "-c", "-o", "compression_type=zstd"},
		"vhd-dyn":    {"-O", "vpc", "-o", "subformat=dynamic,force_size=on"},
	} {
		t.Run(name, func(t *testing.T) {
			in := filepath.Join(dir, name+".img")
			qemuImg(t, append(append([]string{"convert", "-f", "raw"}, args...), src, in)...)
			out := filepath.Join(dir, name+".vhd")
			res, err := Convert(context.Background(), ConvertOptions{Input: in, Output: out})
			if err != nil {
				t.Fatal(err)
			}
			if res.VirtualSize != raw.AlignMiB(res.InputSize) {
				t.Fatalf("virtual size %d for input of %d", res.VirtualSize, res.InputSize)
			}
			if got := qemuVirtualSize(t, out); got != res.VirtualSize {
				t.Fatalf("qemu-img sees %d, want %d", got, res.VirtualSize)
			}
			assertSameData(t, "raw", src, "vpc", out)
		})
	}
}

func TestConvertSizeAndToRaw(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.raw")
	writeSparse(t, in, 10*raw.MiB, 0, 9*raw.MiB)
	big := filepath.Join(dir, "big.vhd")
	if _, err := Convert(context.Background(), ConvertOptions{Input: in, Output: big, Size: 30*raw.MiB + 1}); err != nil {
		t.Fatal(err)
	}
	if got := qemuVirtualSize(t, big); got != 31*raw.MiB {
		t.Fatalf("--size 30MiB+1 gave %d, want 31 MiB", got)
	}
	if _, err := Convert(context.Background(), ConvertOptions{Input: in, Output: filepath.Join(dir, "small.vhd"), Size: raw.MiB}); err == nil {
		t.Fatal("a --size below the input's was accepted")
	}
	back := filepath.Join(dir, "back.raw")
	res, err := Convert(context.Background(), ConvertOptions{Input: big, Output: back, ToRaw: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.OutputFormat != Raw || fileSize(t, back) != 31*raw.MiB {
		t.Fatalf("--to raw wrote %s of %d bytes", res.OutputFormat, fileSize(t, back))
	}
	assertSameData(t, "raw", in, "raw", back)
}

// --in-place appends a footer without copying, and --to raw takes it off
// again, leaving the original bytes.
func TestConvertInPlaceRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "disk.raw")
	const size = 5*raw.MiB + 100
	writeSparse(t, path, size, 0, 3*raw.MiB)
	orig, _ := os.ReadFile(path)

	if _, err := Convert(context.Background(), ConvertOptions{Input: path, InPlace: true}); err != nil {
		t.Fatal(err)
	}
	if fileSize(t, path) != 6*raw.MiB+512 || qemuVirtualSize(t, path) != 6*raw.MiB {
		t.Fatalf("after --in-place: file %d bytes, qemu sees %d", fileSize(t, path), qemuVirtualSize(t, path))
	}
	// Again: already a fixed VHD, nothing to do.
	if res, err := Convert(context.Background(), ConvertOptions{Input: path, InPlace: true}); err != nil || res.Changed || fileSize(t, path) != 6*raw.MiB+512 {
		t.Fatalf("--in-place on a fixed VHD: %+v, %v", res, err)
	}
	if _, err := Convert(context.Background(), ConvertOptions{Input: path, InPlace: true, ToRaw: true}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if len(got) != 6*raw.MiB || string(got[:size]) != string(orig) || strings.Trim(string(got[size:]), "\x00") != "" {
		t.Fatal("--in-place --to raw did not give back the original bytes followed by zeros")
	}
	assertOnly(t, dir, "disk.raw")
}

func TestConvertRefusesAndLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.raw")
	writeSparse(t, in, 2*raw.MiB, 0)
	exists := filepath.Join(dir, "exists.vhd")
	os.WriteFile(exists, []byte("keep me"), 0o644)
	vhdx := filepath.Join(dir, "disk.vhdx")
	os.WriteFile(vhdx, append([]byte("vhdxfile"), make([]byte, 4096)...), 0o644)
	vmdk := filepath.Join(dir, "disk.vmdk")
	os.WriteFile(vmdk, append([]byte("KDMV"), make([]byte, 4096)...), 0o644)
	badQcow := filepath.Join(dir, "bad.qcow2")
	os.WriteFile(badQcow, []byte("QFI\xfb\x00\x00\x00\x03"), 0o644)
	sub := filepath.Join(dir, "subdir")
	os.Mkdir(sub, 0o755)

	for name, c := range map[string]struct {
		opts ConvertOptions
		want string
	}{
		"existing output": {ConvertOptions{Input: in, Output: exists}, "--force"},
		"same file":       {ConvertOptions{Input: in, Output: in}, "same file"},
		"same via path":   {ConvertOptions{Input: in, Output: filepath.Join(dir, ".", "in.raw")}, "same file"},
		"vhdx":            {ConvertOptions{Input: vhdx, Output: filepath.Join(dir, "o1.vhd")}, "disk.vhdx"},
		"vmdk":            {ConvertOptions{Input: vmdk, Output: filepath.Join(dir, "o2.vhd")}, "disk.vmdk: unsupported VMDK image: header version 0"},
		"truncated qcow2": {ConvertOptions{Input: badQcow, Output: filepath.Join(dir, "o3.vhd")}, "bad.qcow2"},
		"directory":       {ConvertOptions{Input: sub, Output: filepath.Join(dir, "o4.vhd")}, "directory"},
		"missing":         {ConvertOptions{Input: filepath.Join(dir, "nope.raw"), Output: filepath.Join(dir, "o5.vhd")}, "nope.raw"},
	} {
		_, err := Convert(context.Background(), c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v; want one line containing %q", name, err, c.want)
		}
	}
	if b, _ := os.ReadFile(exists); string(b) != "keep me" {
		t.Fatal("an existing output was overwritten")
	}
	assertOnly(t, dir, "bad.qcow2", "disk.vhdx", "disk.vmdk", "exists.vhd", "in.raw", "subdir")
}

// A cancelled convert (Ctrl-C) removes its partial output.
func TestConvertCancelledLeavesNoOutput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.raw")
	writeSparse(t, in, 8*raw.MiB, 0, raw.MiB, 2*raw.MiB)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Convert(ctx, ConvertOptions{Input: in, Output: filepath.Join(dir, "out.vhd")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertOnly(t, dir, "in.raw")
}

// truncatedVHD makes a 20 MiB fixed VHD of in (by convert) and cuts its
// data to keep bytes, or pads it to that many, keeping the footer.
func truncatedVHD(t *testing.T, in, out string, keep int64) {
	t.Helper()
	full := out + ".full"
	if _, err := Convert(context.Background(), ConvertOptions{Input: in, Output: full}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(full)
	data, footer := b[:len(b)-vhd.FooterSize], b[len(b)-vhd.FooterSize:]
	if keep <= int64(len(data)) {
		data = data[:keep]
	} else {
		data = append(data, make([]byte, keep-int64(len(data)))...)
	}
	if err := os.WriteFile(out, append(data, footer...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A fixed VHD cut short (the footer says 20 MiB, the file holds 5) is
// refused by convert, convert --in-place and resize, naming both sizes;
// with --accept-data-loss convert copies the disk the footer describes,
// which qemu-img reads the same way: the missing bytes as zeros.
func TestTruncatedVHDIsRefusedUnlessDataLossIsAccepted(t *testing.T) {
	dir := t.TempDir()
	in, img := filepath.Join(dir, "d.raw"), filepath.Join(dir, "cut.vhd")
	writeSparse(t, in, 20*raw.MiB, 0, 4*raw.MiB, 12*raw.MiB)
	truncatedVHD(t, in, img, 5*raw.MiB)
	before, _ := os.ReadFile(img)
	out := filepath.Join(dir, "out.vhd")
	for name, run := range map[string]func() error{
		"convert": func() error {
			_, err := Convert(context.Background(), ConvertOptions{Input: img, Output: out})
			return err
		},
		"convert --in-place": func() error {
			_, err := Convert(context.Background(), ConvertOptions{Input: img, InPlace: true, ToRaw: true})
			return err
		},
		"resize --align": func() error { _, err := Resize(ResizeOptions{Path: img, Align: true}); return err },
	} {
		err := run()
		if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "20971520") || !strings.Contains(err.Error(), "5242880") || !strings.Contains(err.Error(), "--accept-data-loss") {
			t.Errorf("%s: %v; want ErrTruncated naming both sizes and --accept-data-loss", name, err)
		}
	}
	if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
		t.Fatal("a refusal changed the file")
	}
	assertOnly(t, dir, "cut.vhd", "d.raw")

	res, err := Convert(context.Background(), ConvertOptions{Input: img, Output: out, AcceptDataLoss: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.VirtualSize != 20*raw.MiB || !strings.Contains(res.DataLost, "15728640") || !strings.Contains(res.DataLost, "zeros") {
		t.Fatalf("result %+v", res)
	}
	// The copy is the original's first 5 MiB, then zeros (qemu-img reads
	// the truncated file the same, except that it takes the footer that
	// now sits at 5 MiB for data).
	want := filepath.Join(dir, "want.raw")
	writeSparse(t, want, 20*raw.MiB, 0, 4*raw.MiB)
	assertSameData(t, "raw", want, "vpc", out)
}

// An over-long VHD (the file holds more than its footer says) is refused
// too; accepted, the copy is the footer's disk, as qemu-img reads it.
func TestOverLongVHD(t *testing.T) {
	dir := t.TempDir()
	in, img, out := filepath.Join(dir, "d.raw"), filepath.Join(dir, "long.vhd"), filepath.Join(dir, "out.vhd")
	writeSparse(t, in, 20*raw.MiB, 0, 12*raw.MiB)
	truncatedVHD(t, in, img, 25*raw.MiB)
	_, err := Convert(context.Background(), ConvertOptions{Input: img, Output: out})
	if !errors.Is(err, ErrOverLong) || !strings.Contains(err.Error(), "26214400") {
		t.Fatalf("convert: %v", err)
	}
	res, err := Convert(context.Background(), ConvertOptions{Input: img, Output: out, AcceptDataLoss: true})
	if err != nil || res.VirtualSize != 20*raw.MiB || !strings.Contains(res.DataLost, "left out") {
		t.Fatalf("%+v, %v", res, err)
	}
	assertSameData(t, "vpc", img, "vpc", out)
}

// convert warns with Azure's verdict on its output: --size 5T is above
// Azure's maximum.
func TestConvertWarnsWithTheVerdict(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "d.raw"), filepath.Join(dir, "d.vhd")
	writeSparse(t, in, raw.MiB, 0)
	res, err := Convert(context.Background(), ConvertOptions{Input: in, Output: out, Size: 5 << 40})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "above Azure's maximum of 4095 GiB") {
		t.Fatalf("warnings %q", res.Warnings)
	}
}

// TestConvertCompressedQcow2ByteForByte: compressed qcow2 images qemu-img
// made (zlib and zstd, small and large clusters) convert to exactly the
// bytes qemu-img's own conversion to raw writes, with many chunks in
// flight at once: dense data of mixed compressibility, runs of written
// zeros, holes, and a last cluster the disk ends inside.
func TestConvertCompressedQcow2ByteForByte(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	const size = 24*raw.MiB + 3*512
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 10*raw.MiB+777)
	for i := range data {
		switch {
		case i%(1<<20) < 64<<10: // zeros inside data
		case i%3 == 0:
			data[i] = byte(rng.Uint32())
		default:
			data[i] = "qcow2"[rng.IntN(5)]
		}
	}
	for _, off := range []int64{0, 11*raw.MiB + 4096, size - 2*raw.MiB} {
		n := min(int64(len(data)), size-off)
		if _, err := f.WriteAt(data[:n], off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	for name, opts := range map[string]string{
		"zlib":    "compression_type=zlib",
		"zstd":    "compression_type=zstd",
		"zlib-4k": "compression_type=zlib,cluster_size=4k",
		"zstd-2M": "compression_type=zstd,cluster_size=2M",
	} {
		t.Run(name, func(t *testing.T) {
			img := filepath.Join(dir, name+".qcow2")
			qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", "-c", "-o", opts, src, img)
			want := filepath.Join(dir, name+".qemu.raw")
			qemuImg(t, "convert", "-f", "qcow2", "-O", "raw", img, want)
			got := filepath.Join(dir, name+".vhdprep.raw")
			if _, err := Convert(context.Background(), ConvertOptions{Input: img, Output: got, ToRaw: true}); err != nil {
				t.Fatal(err)
			}
			a, err := os.ReadFile(want)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				at := 0
				for at < min(len(a), len(b)) && a[at] == b[at] {
					at++
				}
				t.Fatalf("vhdprep wrote %d bytes, qemu-img %d; they differ from byte %d", len(b), len(a), at)
			}
		})
	}
}

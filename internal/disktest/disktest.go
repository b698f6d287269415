// Package disktest holds what the tests of the container readers (vdi,
// vhdx, vmdk, ova) share: a source disk with data and holes, qemu-img as
// the oracle, VMDKs laid out as VMware writes them (which qemu-img cannot
// write, but reads), and the checks every raw.Disk must pass, fuzzed or
// not.
package disktest

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/raw"
)

// Source writes a raw disk of size bytes in dir: recognisable runs of data
// at its start, across 1 MiB boundaries, in its middle and at its end,
// holes between them. It returns the file's path and bytes.
func Source(t testing.TB, dir string, size int64) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	for _, off := range []int64{0, 70000, 3<<20 - 4096, size / 2 &^ 511, size - 1500} {
		for i := int64(0); i < 100000 && off >= 0 && off+i < size; i++ {
			data[off+i] = byte(i*13 + off>>9 + 1)
		}
	}
	path := filepath.Join(dir, "src.raw")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// Qemu runs qemu-img, skipping the test when it is missing.
func Qemu(t testing.TB, args ...string) string {
	t.Helper()
	testimage.RequireTools(t, "qemu-img")
	out, err := exec.Command("qemu-img", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// QemuRaw is the disk qemu-img reads in the image at path: the oracle.
func QemuRaw(t testing.TB, format, path string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "oracle.raw")
	Qemu(t, "convert", "-f", format, "-O", "raw", path, out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// AssertQemuExtents checks that d's data extents are the ranges qemu-img
// maps as data in the image at path (`qemu-img map`: allocated and not
// known to be zeros), so holes stay holes exactly where qemu-img's do.
func AssertQemuExtents(t testing.TB, d raw.Disk, format, path string) {
	t.Helper()
	var ranges []struct {
		Start, Length int64
		Data, Zero    bool
	}
	if err := json.Unmarshal([]byte(Qemu(t, "map", "--output=json", "-f", format, path)), &ranges); err != nil {
		t.Fatal(err)
	}
	var want []raw.Extent
	for _, r := range ranges {
		if r.Data && !r.Zero {
			want = append(want, raw.Extent{Offset: r.Start, Length: r.Length})
		}
	}
	want = raw.Coalesce(want)
	got, err := d.Extents()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(raw.Coalesce(got), want) {
		t.Fatalf("extents %v; qemu-img maps data at %v", got, want)
	}
}

// Seeds adds to f the images qemu-img makes of a small disk in each of the
// option sets, when qemu-img is here.
func Seeds(f *testing.F, format string, optSets ...[]string) {
	dir := f.TempDir()
	src := filepath.Join(dir, "s.raw")
	data := make([]byte, 2048)
	copy(data, bytes.Repeat([]byte("vhdprep!"), 64))
	copy(data[1700:], "tail")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		f.Fatal(err)
	}
	for i, opts := range optSets {
		img := filepath.Join(dir, "s"+string(rune('a'+i))+"."+format)
		args := append(append([]string{"convert", "-f", "raw", "-O", format}, opts...), src, img)
		if exec.Command("qemu-img", args...).Run() == nil {
			if b, err := os.ReadFile(img); err == nil {
				f.Add(b)
			}
		}
	}
}

// AssertSame reads the whole disk and compares it with want, and checks
// every non-zero byte lies inside an extent.
func AssertSame(t testing.TB, d raw.Disk, want []byte) {
	t.Helper()
	if d.Size() != int64(len(want)) {
		t.Fatalf("size %d, want %d", d.Size(), len(want))
	}
	got := make([]byte, len(want))
	if n, err := d.ReadAt(got, 0); n != len(want) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("first difference at byte %d: %#x, want %#x", i, got[i], want[i])
			}
		}
	}
	exts, err := d.Extents()
	if err != nil {
		t.Fatal(err)
	}
	CheckExtents(t, d, exts)
	j := 0
	for i, b := range want {
		for j < len(exts) && int64(i) >= exts[j].End() {
			j++
		}
		if b != 0 && (j == len(exts) || int64(i) < exts[j].Offset) {
			t.Fatalf("non-zero byte %d outside every extent", i)
		}
	}
}

// CheckExtents fails when extents are empty, out of order, overlapping or
// outside the disk.
func CheckExtents(t testing.TB, d raw.Disk, exts []raw.Extent) {
	t.Helper()
	for i, e := range exts {
		if e.Length <= 0 || e.Offset < 0 || e.End() > d.Size() || (i > 0 && e.Offset < exts[i-1].End()) {
			t.Fatalf("extents out of order or outside the %d-byte disk: %v", d.Size(), exts)
		}
	}
}

// Exercise is what a fuzz target does with a disk its reader opened:
// list the extents, check them, and read across the disk's start, end and
// first extents; a read that returns less than asked must say why.
func Exercise(t testing.TB, d raw.Disk) {
	exts, err := d.Extents()
	if err == nil {
		CheckExtents(t, d, exts)
	}
	buf := make([]byte, 1500)
	offs := []int64{0, d.Size() - 700}
	for _, e := range exts[:min(len(exts), 4)] {
		offs = append(offs, e.Offset)
	}
	for _, off := range offs {
		if off < 0 {
			continue
		}
		n, err := d.ReadAt(buf, off)
		if err == nil && n != len(buf) {
			t.Fatalf("ReadAt at %d returned %d bytes and no error", off, n)
		}
	}
}

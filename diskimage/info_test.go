package diskimage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/raw"
)

// VHDs that qemu-img writes: with force_size the size is exact; without it
// qemu rounds the disk up to its CHS geometry, so the size is no longer a
// whole MiB, and info says so and what to do.
func TestInspectQemuWrittenVHDs(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	writeSparse(t, src, 100*raw.MiB, 0)

	forced := filepath.Join(dir, "forced.vhd")
	qemuImg(t, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on", src, forced)
	info, err := Inspect(forced, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Valid || info.VirtualSize != 100*raw.MiB || info.Footer.CreatorApp != "qem2" || info.Footer.QemuSize != 100*raw.MiB {
		t.Fatalf("force_size VHD: %+v %+v", info, info.Footer)
	}

	rounded := filepath.Join(dir, "rounded.vhd")
	qemuImg(t, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed", src, rounded)
	info, err = Inspect(rounded, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.Valid || info.MiBAligned || info.VirtualSize != qemuVirtualSize(t, rounded) {
		t.Fatalf("CHS-rounded VHD: %+v", info)
	}
	if !strings.Contains(strings.Join(info.Problems, "\n"), "vhdprep resize "+rounded+" --align") {
		t.Fatalf("problems do not say how to fix it: %v", info.Problems)
	}

	dynamic := filepath.Join(dir, "dynamic.vhd")
	qemuImg(t, "convert", "-f", "raw", "-O", "vpc", src, dynamic)
	info, err = Inspect(dynamic, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != VHDDynamic || info.Valid || info.VirtualSize != qemuVirtualSize(t, dynamic) {
		t.Fatalf("dynamic VHD: %+v", info)
	}
}

func TestOpenTruncatedAndCorruptVHDs(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	writeSparse(t, src, 8*raw.MiB, 0, 5*raw.MiB)
	dynamic := filepath.Join(dir, "d.vhd")
	qemuImg(t, "convert", "-f", "raw", "-O", "vpc", "-o", "force_size=on", src, dynamic)
	b, _ := os.ReadFile(dynamic)

	truncated := filepath.Join(dir, "truncated.vhd")
	os.WriteFile(truncated, b[:1500], 0o644)
	badHeader := filepath.Join(dir, "badheader.vhd")
	c := append([]byte{}, b...)
	c[512+40] ^= 0xff // inside the dynamic header: its checksum fails
	os.WriteFile(badHeader, c, 0o644)
	for _, path := range []string{truncated, badHeader} {
		_, err := Open(path)
		if err == nil || !strings.Contains(err.Error(), filepath.Base(path)) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v; want one line naming the file", filepath.Base(path), err)
		}
	}
}

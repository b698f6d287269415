package lvm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// Tests against LVM's own tools on loop devices: they need root and loop
// devices, and are skipped otherwise. Device-mapper is not needed: the
// tools run with --driverloaded n and never activate an LV.

// loopDevices attaches each file to a loop device until the test ends.
func loopDevices(t *testing.T, readOnly bool, files ...string) []string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root")
	}
	testimage.RequireTools(t, "losetup", "lvm")
	var devs []string
	for _, f := range files {
		args := []string{"--find", "--show", f}
		if readOnly {
			args = append(args, "--read-only")
		}
		out, err := exec.Command("losetup", args...).Output()
		if err != nil {
			t.Skipf("no loop device: %v", err)
		}
		dev := strings.TrimSpace(string(out))
		t.Cleanup(func() { exec.Command("losetup", "--detach", dev).Run() })
		devs = append(devs, dev)
	}
	return devs
}

// lvm runs an LVM command restricted to devs and returns its output.
func lvm(t *testing.T, devs []string, args ...string) string {
	t.Helper()
	args = append([]string{args[0], "--devices", strings.Join(devs, ","), "--driverloaded", "n"}, args[1:]...)
	cmd := exec.Command("lvm", args...)
	cmd.Env = append(os.Environ(), "LVM_SUPPRESS_FD_WARNINGS=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lvm %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

// lvs reports one line per LV segment: name;start extent;PE ranges.
func lvs(t *testing.T, devs []string) []string {
	out := lvm(t, devs, "lvs", "--noheadings", "--separator", ";", "-o", "lv_name,seg_start_pe,seg_pe_ranges", "--sort", "lv_name,seg_start_pe")
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	return lines
}

// The PV lvmgen writes is one LVM reads the same way.
func TestLVMToolsAgree(t *testing.T) {
	img := pvImage(t)
	path := filepath.Join(t.TempDir(), "pv")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	devs := loopDevices(t, true, path)
	pv, err := ReadPV(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, lv := range pv.VG.LVs {
		s := lv.Segments[0]
		want = append(want, fmt.Sprintf("%s;0;%s:%d-%d", lv.Name, devs[0], s.Stripes[0].StartExtent, s.Stripes[0].StartExtent+s.ExtentCount-1))
	}
	if got := lvs(t, devs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lvs says\n%s\nwe read\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A VG that LVM itself made on two PVs, with a two-segment linear LV, a
// striped LV, and enough metadata updates that the newest copy wraps
// around the end of the metadata area. Every 64 KiB of both PVs is stamped
// with its PV and offset; each LV must read back the stamps of the extents
// lvs says it has.
func TestRealLVM(t *testing.T) {
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")}
	for _, f := range files {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Truncate(f, 16<<20)
	}
	devs := loopDevices(t, false, files...)
	// A 64 KiB data alignment leaves a 60 KiB metadata area.
	lvm(t, devs, "pvcreate", "-q", "--metadatasize", "32k", "--dataalignment", "64k", devs[0], devs[1])
	lvm(t, devs, "vgcreate", "-q", "-s", "1m", "real", devs[0], devs[1])
	lvm(t, devs, "lvcreate", "-q", "-an", "-Zn", "-L", "2m", "-n", "lin", "real", devs[0])
	lvm(t, devs, "lvcreate", "-q", "-an", "-Zn", "-L", "2m", "-n", "gap", "real", devs[0])
	lvm(t, devs, "lvextend", "-q", "-L", "4m", "real/lin", devs[0])
	lvm(t, devs, "lvcreate", "-q", "-an", "-Zn", "-i", "2", "-I", "64k", "-L", "4m", "-n", "str", "real")
	// Each commit adds 1 KiB of tags, so the copies grow and soon wrap.
	for i := 0; !wrapped(t, files[0]); i++ {
		if i == 40 {
			t.Fatal("40 commits and the metadata never wrapped around")
		}
		args := []string{"lvchange", "-q"}
		for j := range 8 {
			args = append(args, "--addtag", fmt.Sprintf("c%d-%d-%s", i, j, strings.Repeat("x", 120)))
		}
		lvm(t, devs, append(args, "real/gap")...)
	}
	segments := lvs(t, devs)
	peStart := map[string]int64{}
	out := lvm(t, devs, "pvs", "--noheadings", "--nosuffix", "--units", "b", "--separator", ";", "-o", "pv_name,pe_start")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		name, start, _ := strings.Cut(strings.TrimSpace(l), ";")
		peStart[name], _ = strconv.ParseInt(start, 10, 64)
	}
	for _, d := range devs {
		exec.Command("losetup", "--detach", d).Run()
	}

	const chunk = 64 << 10
	images := map[string][]byte{}
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for off := peStart[devs[i]]; off+chunk <= int64(len(b)); off += chunk {
			copy(b[off:], fmt.Sprintf("%s@%d;", devs[i], off))
		}
		images[devs[i]] = b
	}
	pv, err := ReadPV(bytes.NewReader(images[devs[0]]), int64(len(images[devs[0]])))
	if err != nil {
		t.Fatal(err)
	}
	pvs := map[string]*io.SectionReader{}
	for _, info := range pv.VG.PVs {
		for i, d := range devs {
			// The metadata names each PV by the device LVM saw it on.
			if info.Device == d {
				pvs[info.ID] = pvBytes(images[devs[i]])
			}
		}
	}
	if len(pvs) != 2 || pv.VG.Name != "real" {
		t.Fatalf("VG %s with PVs %+v", pv.VG.Name, pv.VG.PVs)
	}
	const extent = 1 << 20
	for _, seg := range segments {
		f := strings.Split(seg, ";")
		lvName, ranges := f[0], strings.Fields(f[2])
		first, _ := strconv.ParseInt(f[1], 10, 64)
		r, _, err := pv.VG.Open(lvName, pvs)
		if err != nil {
			t.Fatalf("%s: %v", lvName, err)
		}
		// Chunk c of the segment is on stripe c%n, row c/n of that stripe.
		for c := int64(0); ; c++ {
			stripe := ranges[c%int64(len(ranges))]
			dev, span, _ := strings.Cut(stripe, ":")
			lo, hi, _ := strings.Cut(span, "-")
			pe, _ := strconv.ParseInt(lo, 10, 64)
			last, _ := strconv.ParseInt(hi, 10, 64)
			at := peStart[dev] + pe*extent + c/int64(len(ranges))*chunk
			if at >= peStart[dev]+(last+1)*extent {
				break
			}
			want := fmt.Sprintf("%s@%d;", dev, at)
			got := make([]byte, len(want))
			if _, err := r.ReadAt(got, first*extent+c*chunk); err != nil || string(got) != want {
				t.Fatalf("%s chunk %d of segment at extent %d: read %q (%v), want %q", lvName, c, first, got, err, want)
			}
		}
	}
}

// wrapped says whether the PV's committed metadata runs past the end of
// its metadata area, so that reading it needs the wrap-around.
func wrapped(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	le := binary.LittleEndian
	label := make([]byte, 512)
	f.ReadAt(label, 512)
	h := label[32:]
	mdaOff, mdaSize := int64(le.Uint64(h[72:])), le.Uint64(h[80:])
	hdr := make([]byte, 64)
	f.ReadAt(hdr, mdaOff)
	off, n := le.Uint64(hdr[40:]), le.Uint64(hdr[48:])
	return off+n > mdaSize
}

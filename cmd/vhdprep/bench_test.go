package main

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// BenchmarkConvert compares, on one machine in one run, vhdprep convert with
// qemu-img's fixed-VHD conversion on a 4 GiB raw image holding 1 GiB of
// data: wall time, bytes the output allocates, and vhdprep's peak memory;
// then --in-place, whose cost must not depend on the image's size.
func BenchmarkConvert(b *testing.B) {
	testimage.RequireTools(b, "qemu-img")
	dir := b.TempDir()
	in := filepath.Join(dir, "disk.raw")
	makeHalfSparse(b, in, 4<<30, 1<<30)

	for i := 0; i < b.N; i++ {
		ours := filepath.Join(dir, "vhdprep.vhd")
		theirs := filepath.Join(dir, "qemu.vhd")
		os.Remove(ours)
		os.Remove(theirs)

		vhdprepTime, rusage := timeCmd(b, vhdprepBin, "convert", "--quiet", in, ours)
		qemuTime, _ := timeCmd(b, "qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on", in, theirs)
		b.ReportMetric(vhdprepTime.Seconds(), "vhdprep-s")
		b.ReportMetric(qemuTime.Seconds(), "qemu-img-s")
		b.ReportMetric(float64(allocatedBytes(b, ours))/(1<<20), "vhdprep-written-MiB")
		b.ReportMetric(float64(allocatedBytes(b, theirs))/(1<<20), "qemu-img-written-MiB")
		b.ReportMetric(float64(rusage.Maxrss)/1024, "vhdprep-peak-RSS-MiB")

		inPlace := filepath.Join(dir, "inplace.raw")
		if out, err := exec.Command("cp", "--sparse=always", in, inPlace).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v %s", err, out)
		}
		inPlaceTime, _ := timeCmd(b, vhdprepBin, "convert", "--quiet", "--in-place", inPlace)
		b.ReportMetric(float64(inPlaceTime.Microseconds())/1000, "in-place-ms")
		os.Remove(inPlace)
	}
}

// makeHalfSparse writes data bytes of random data in 64 MiB runs spread
// evenly over a sparse file of size bytes.
func makeHalfSparse(b *testing.B, path string, size, data int64) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	f.Truncate(size)
	run := make([]byte, 64<<20)
	rand.Read(run)
	runs := data / int64(len(run))
	for i := int64(0); i < runs; i++ {
		if _, err := f.WriteAt(run, i*(size/runs)); err != nil {
			b.Fatal(err)
		}
	}
	f.Sync()
}

func timeCmd(b *testing.B, name string, args ...string) (time.Duration, *syscall.Rusage) {
	cmd := exec.Command(name, args...)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", name, err, out)
	}
	return time.Since(start), cmd.ProcessState.SysUsage().(*syscall.Rusage)
}

func allocatedBytes(b *testing.B, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Blocks * 512
}

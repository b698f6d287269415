package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
	makeHalfSparse(b, in, 4<<30, 1<<30, false)

	for i := 0; i < b.N; i++ {
		ours := filepath.Join(dir, "vhdprep.vhd")
		theirs := filepath.Join(dir, "qemu.vhd")
		os.Remove(ours)
		os.Remove(theirs)

		vhdprepTime, peak := timeCmd(b, vhdprepBin, "convert", "--quiet", in, ours)
		qemuTime, _ := timeCmd(b, "qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on", in, theirs)
		b.ReportMetric(vhdprepTime.Seconds(), "vhdprep-s")
		b.ReportMetric(qemuTime.Seconds(), "qemu-img-s")
		b.ReportMetric(float64(allocatedBytes(b, ours))/(1<<20), "vhdprep-written-MiB")
		b.ReportMetric(float64(allocatedBytes(b, theirs))/(1<<20), "qemu-img-written-MiB")
		b.ReportMetric(float64(peak)/(1<<20), "vhdprep-peak-RSS-MiB")

		inPlace := filepath.Join(dir, "inplace.raw")
		// Flush the copy first: --in-place fsyncs the file, and must not be
		// charged for writing back the pages cp just dirtied.
		if out, err := exec.Command("sh", "-c", `cp --sparse=always "$0" "$1" && sync "$1"`, in, inPlace).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v %s", err, out)
		}
		inPlaceTime, _ := timeCmd(b, vhdprepBin, "convert", "--quiet", "--in-place", inPlace)
		b.ReportMetric(float64(inPlaceTime.Microseconds())/1000, "in-place-ms")
		os.Remove(inPlace)
	}
}

// BenchmarkConvertFormats compares, in one run, vhdprep convert with
// qemu-img's fixed-VHD conversion from each format vhdprep reads in pure
// Go, on the 4 GiB disk holding 1 GiB of (compressible) data of
// BenchmarkConvert, each image made by qemu-img: wall times and their
// ratio (goal: at most 1), and vhdprep's peak memory.
func BenchmarkConvertFormats(b *testing.B) {
	testimage.RequireTools(b, "qemu-img")
	dir := b.TempDir()
	src := filepath.Join(dir, "disk.raw")
	makeHalfSparse(b, src, 4<<30, 1<<30, true)
	for _, f := range []struct {
		name, format string
		opts         []string
	}{
		{"vdi", "vdi", nil},
		{"vhdx", "vhdx", nil},
		{"vmdk-sparse", "vmdk", nil},
		{"vmdk-stream", "vmdk", []string{"-o", "subformat=streamOptimized"}},
	} {
		b.Run(f.name, func(b *testing.B) {
			in := filepath.Join(dir, f.name+"."+f.format)
			timeCmd(b, "qemu-img", append(append([]string{"convert", "-f", "raw", "-O", f.format}, f.opts...), src, in)...)
			defer os.Remove(in)
			ours, theirs := filepath.Join(dir, "vhdprep.vhd"), filepath.Join(dir, "qemu.vhd")
			for range b.N {
				vhdprepTime, peak := timeCmd(b, vhdprepBin, "convert", "--quiet", in, ours)
				qemuTime, _ := timeCmd(b, "qemu-img", "convert", "-f", f.format, "-O", "vpc", "-o", "subformat=fixed,force_size=on", in, theirs)
				b.ReportMetric(vhdprepTime.Seconds(), "vhdprep-s")
				b.ReportMetric(qemuTime.Seconds(), "qemu-img-s")
				b.ReportMetric(vhdprepTime.Seconds()/qemuTime.Seconds(), "ratio")
				b.ReportMetric(float64(peak)/(1<<20), "vhdprep-peak-RSS-MiB")
				os.Remove(ours)
				os.Remove(theirs)
			}
		})
	}
}

// makeHalfSparse writes data bytes in 64 MiB runs spread evenly over a
// sparse file of size bytes: random bytes or, compressible, random letters
// of a 16-letter alphabet, which deflate to about half, as a disk's files
// do.
func makeHalfSparse(b *testing.B, path string, size, data int64, compressible bool) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	f.Truncate(size)
	run := make([]byte, 64<<20)
	rand.Read(run)
	if compressible {
		for i, c := range run {
			run[i] = 'a' + c%16
		}
	}
	runs := data / int64(len(run))
	for i := int64(0); i < runs; i++ {
		if _, err := f.WriteAt(run, i*(size/runs)); err != nil {
			b.Fatal(err)
		}
	}
	f.Sync()
}

// timeCmd runs a command that must succeed and returns its wall time and
// peak resident memory.
func timeCmd(b *testing.B, name string, args ...string) (time.Duration, int64) {
	elapsed, peak, code, out := timeCmdExit(b, name, args...)
	if code != 0 {
		b.Fatalf("%s exited %d\n%s", name, code, out)
	}
	return elapsed, peak
}

// timeCmdExit runs a command and returns its wall time, peak resident
// memory, exit code and output. The peak is sampled from /proc (VmHWM)
// while it runs: the kernel's rusage would also count this process's
// memory, which a child shares until it execs.
func timeCmdExit(b *testing.B, name string, args ...string) (time.Duration, int64, int, string) {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done, peakc := make(chan struct{}), make(chan int64)
	go func() {
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		var peak int64
		for {
			select {
			case <-done:
				peakc <- peak
				return
			case <-time.After(5 * time.Millisecond):
			}
			peak = max(peak, vmHWM(status))
		}
	}()
	err := cmd.Wait()
	elapsed := time.Since(start)
	close(done)
	peak := <-peakc
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		b.Fatalf("%s: %v\n%s", name, err, out.String())
	}
	return elapsed, peak, cmd.ProcessState.ExitCode(), out.String()
}

// vmHWM reads a process's peak resident set size in bytes, or 0.
func vmHWM(statusFile string) int64 {
	b, err := os.ReadFile(statusFile)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kib << 10
		}
	}
	return 0
}

func allocatedBytes(b *testing.B, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Blocks * 512
}

// BenchmarkCheck runs check on a 2 GiB image with two kernels and a 40 MB
// zstd initramfs each: wall time (goal under 1 s) and peak resident memory
// (goal under 200 MiB).
func BenchmarkCheck(b *testing.B) {
	img := testimage.Path(b, "bench-check-2g")
	for i := 0; i < b.N; i++ {
		elapsed, peak, code, out := timeCmdExit(b, vhdprepBin, "check", "--quiet", img)
		// Exit 1 is the verdict on a stock image, not a failure to check.
		if code != exitOK && code != exitGate {
			b.Fatalf("check exited %d\n%s", code, out)
		}
		b.ReportMetric(float64(elapsed.Milliseconds()), "wall-ms")
		b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	}
}

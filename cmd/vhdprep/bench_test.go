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

// benchShrink is what every benchmark's disk is divided by
// (VHDPREP_BENCH_SHRINK, for a quick run: 16 makes 4 GiB 256 MiB); 1, the
// sizes the README quotes, when unset.
func benchShrink(b *testing.B) int64 {
	v := os.Getenv("VHDPREP_BENCH_SHRINK")
	if v == "" {
		return 1
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || n > 1024 {
		b.Fatalf("VHDPREP_BENCH_SHRINK=%q: want a whole number from 1 to 1024", v)
	}
	return n
}

// sizeName names a benchmark by its disk's size: 4GiB, 256MiB.
func sizeName(n int64) string {
	if n%(1<<30) == 0 {
		return fmt.Sprintf("%dGiB", n>>30)
	}
	return fmt.Sprintf("%dMiB", n>>20)
}

// gnuTime is GNU time, which the benchmarks run each command under for its
// CPU time and peak memory.
const gnuTime = "/usr/bin/time"

// measured is what a benchmark measures of one run of a command.
type measured struct {
	wall time.Duration
	cpu  time.Duration // user + system, from its rusage
	peak int64         // its rusage's ru_maxrss, in bytes
}

// measure runs a command that must succeed, with env added to the test's
// environment, and returns what it measured and the command's standard
// output. The command runs under GNU time, which forks it from a small
// process of its own and reports its rusage: the rusage of a command this
// process started would count this process's memory too (Go starts a child
// in its parent's address space, and exec folds that space's peak into the
// child's ru_maxrss).
func measure(b *testing.B, env []string, name string, args ...string) (measured, string) {
	b.Helper()
	stats := filepath.Join(b.TempDir(), "rusage")
	cmd := exec.Command(gnuTime, append([]string{"-f", "%U %S %M", "-o", stats, "--", name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// What earlier commands left to write back is not this one's to pay.
	syscall.Sync()
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		b.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	text, err := os.ReadFile(stats)
	if err != nil {
		b.Fatal(err)
	}
	var user, sys float64
	var kib int64
	if _, err := fmt.Sscan(string(text), &user, &sys, &kib); err != nil {
		b.Fatalf("%s's rusage from GNU time, %q: %v", name, text, err)
	}
	return measured{wall: wall, cpu: time.Duration((user + sys) * float64(time.Second)), peak: kib << 10}, stdout.String()
}

// contender is a run to compare vhdprep's with: the reference tool's, as a
// column of the report.
type contender struct {
	name string
	run  measured
}

// reportRuns reports each run's wall time, CPU time and peak memory, as
// NAME:METRIC, and for each contender vhdprep's wall time over its own
// (NAME:wall-ratio, below 1 where vhdprep is faster), which
// scripts/bench-report.sh lays out as a table with a column for each name.
func reportRuns(b *testing.B, ours measured, others ...contender) {
	for _, c := range append([]contender{{"vhdprep", ours}}, others...) {
		b.ReportMetric(c.run.wall.Seconds(), c.name+":wall-s")
		b.ReportMetric(c.run.cpu.Seconds(), c.name+":cpu-s")
		b.ReportMetric(float64(c.run.peak)/(1<<20), c.name+":peak-RSS-MiB")
		if c.name != "vhdprep" {
			b.ReportMetric(ours.wall.Seconds()/c.run.wall.Seconds(), c.name+":wall-ratio")
		}
	}
}

// qemuVHD is qemu-img's conversion of in, of format, to a fixed VHD at out:
// with -t writeback, which writes the output back before it exits, as
// vhdprep does (equal durability), or with its default cache mode, which
// leaves that to the kernel.
func qemuVHD(format, in, out string, writeback bool) []string {
	args := []string{"convert", "-f", format, "-O", "vpc", "-o", "subformat=fixed,force_size=on"}
	if writeback {
		args = append(args, "-t", "writeback")
	}
	return append(args, in, out)
}

// BenchmarkConvert compares, on one machine in one run, vhdprep convert with
// qemu-img's fixed-VHD conversion, both with -t writeback (equal
// durability) and with its default, on raw images of 4 and 16 GiB holding
// 1 GiB of data: wall time and its ratio, CPU time, peak memory and bytes
// the output allocates for each; then --in-place, whose cost must not
// depend on the image's size.
func BenchmarkConvert(b *testing.B) {
	testimage.RequireTools(b, "qemu-img", gnuTime)
	shrink := benchShrink(b)
	for _, size := range []int64{4 << 30, 16 << 30} {
		size, data := size/shrink, int64(1<<30)/shrink
		b.Run(sizeName(size), func(b *testing.B) {
			dir := b.TempDir()
			in := filepath.Join(dir, "disk.raw")
			makeHalfSparse(b, in, size, data, false)
			out := filepath.Join(dir, "out.vhd")
			cmds := [][]string{
				{vhdprepBin, "convert", "--quiet", in, out},
				append([]string{"qemu-img"}, qemuVHD("raw", in, out, true)...),
				append([]string{"qemu-img"}, qemuVHD("raw", in, out, false)...),
			}
			warmUp(b, out, cmds...)
			for range b.N {
				var runs [3]measured
				var written [3]int64
				for i, c := range cmds {
					os.Remove(out)
					runs[i], _ = measure(b, nil, c[0], c[1:]...)
					written[i] = allocatedBytes(b, out)
					os.Remove(out)
				}
				ours, wb, def := runs[0], runs[1], runs[2]
				reportRuns(b, ours, contender{"qemu-img-t-writeback", wb}, contender{"qemu-img", def})
				for i, name := range []string{"vhdprep", "qemu-img-t-writeback", "qemu-img"} {
					b.ReportMetric(float64(written[i])/(1<<20), name+":written-MiB")
				}

				inPlace := filepath.Join(dir, "inplace.raw")
				// Flush the copy first: --in-place fsyncs the file, and must not be
				// charged for writing back the pages cp just dirtied.
				if out, err := exec.Command("sh", "-c", `cp --sparse=always "$0" "$1" && sync "$1"`, in, inPlace).CombinedOutput(); err != nil {
					b.Fatalf("cp: %v %s", err, out)
				}
				r, _ := measure(b, nil, vhdprepBin, "convert", "--quiet", "--in-place", inPlace)
				b.ReportMetric(float64(r.wall.Microseconds())/1000, "in-place-ms")
				os.Remove(inPlace)
			}
		})
	}
}

// BenchmarkConvertFormats compares, in one run, vhdprep convert with
// qemu-img's fixed-VHD conversion (-t writeback and its default) from each
// format vhdprep reads in pure Go, on the 4 GiB disk holding 1 GiB of
// (compressible) data of BenchmarkConvert, each image made by qemu-img:
// wall times and their ratio (goal: at most 1), CPU time and peak memory.
func BenchmarkConvertFormats(b *testing.B) {
	testimage.RequireTools(b, "qemu-img", gnuTime)
	shrink := benchShrink(b)
	dir := b.TempDir()
	src := filepath.Join(dir, "disk.raw")
	makeHalfSparse(b, src, (4<<30)/shrink, (1<<30)/shrink, true)
	for _, f := range []struct {
		name, format string
		opts         []string
	}{
		{"vdi", "vdi", nil},
		{"vhdx", "vhdx", nil},
		{"vmdk-sparse", "vmdk", nil},
		{"vmdk-stream", "vmdk", []string{"-o", "subformat=streamOptimized"}},
		{"qcow2-zlib", "qcow2", []string{"-c"}},
		{"qcow2-zstd", "qcow2", []string{"-c", "-o", "compression_type=zstd"}},
	} {
		b.Run(f.name, func(b *testing.B) {
			in := filepath.Join(dir, f.name+"."+f.format)
			measure(b, nil, "qemu-img", append(append([]string{"convert", "-f", "raw", "-O", f.format}, f.opts...), src, in)...)
			defer os.Remove(in)
			out := filepath.Join(dir, "out.vhd")
			cmds := [][]string{
				{vhdprepBin, "convert", "--quiet", in, out},
				append([]string{"qemu-img"}, qemuVHD(f.format, in, out, true)...),
				append([]string{"qemu-img"}, qemuVHD(f.format, in, out, false)...),
			}
			warmUp(b, out, cmds...)
			for range b.N {
				var runs [3]measured
				for i, c := range cmds {
					os.Remove(out)
					runs[i], _ = measure(b, nil, c[0], c[1:]...)
					os.Remove(out)
				}
				ours, wb, def := runs[0], runs[1], runs[2]
				reportRuns(b, ours, contender{"qemu-img-t-writeback", wb}, contender{"qemu-img", def})
			}
		})
	}
}

// warmUp runs each conversion once, not timed, removing its output. On this
// project's 2-core VMs the first command to read an image a way it had not
// been read yet (read(2), or copy_file_range) paid 1.4-2.3 s of system time
// the next command reading it that way did not, whichever tool it was
// (reading the file with cat first did not help), which single runs turned
// into ratios of 0.3 or 1.4 for the same two commands.
func warmUp(b *testing.B, out string, cmds ...[]string) {
	for _, c := range cmds {
		os.Remove(out)
		measure(b, nil, c[0], c[1:]...)
	}
	os.Remove(out)
}

// makeHalfSparse writes data bytes in runs of 64 MiB (or data, if less)
// spread evenly over a sparse file of size bytes: random bytes or,
// compressible, random letters of a 16-letter alphabet, which deflate to
// about half, as a disk's files do.
func makeHalfSparse(b *testing.B, path string, size, data int64, compressible bool) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	f.Truncate(size)
	run := make([]byte, min(64<<20, data))
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

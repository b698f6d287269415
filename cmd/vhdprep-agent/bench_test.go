package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/wiresim"
)

// BenchmarkBinarySize builds the static agent for each architecture and
// reports its size (budget: under 10 MB each).
func BenchmarkBinarySize(b *testing.B) {
	for _, arch := range []string{"amd64", "arm64"} {
		b.Run(arch, func(b *testing.B) {
			var size int64
			for range b.N {
				fi, err := os.Stat(buildAgent(b, arch))
				if err != nil {
					b.Fatal(err)
				}
				size = fi.Size()
			}
			b.ReportMetric(float64(size)/1e6, "MB")
		})
	}
}

// BenchmarkStartToReady measures from starting the agent process to the
// wire server receiving its Ready report (budget: under 1 s when the wire
// server answers at once).
func BenchmarkStartToReady(b *testing.B) {
	sim := simOn80(b)
	bin := buildAgent(b, "amd64")
	root := vmRoot(b)
	var mu sync.Mutex
	ready := make(chan time.Time, 1)
	sim.OnRequest(func(r wiresim.Request) {
		if strings.Contains(r.Path, "comp=health") && r.Status == 200 {
			mu.Lock()
			defer mu.Unlock()
			select {
			case ready <- time.Now():
			default:
			}
		}
	})
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		cmd := exec.Command(bin, "--root", root, "daemon")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-ready:
			total += at.Sub(start)
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			b.Fatal("no Ready report in 30 s")
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-ready")
}

// BenchmarkResidentMemory runs the daemon against the simulator and reports
// its resident memory once it has reported Ready and is polling (budget:
// under 15 MB), and its peak.
func BenchmarkResidentMemory(b *testing.B) {
	sim := simOn80(b)
	bin := buildAgent(b, "amd64")
	root := vmRoot(b)
	var rss, hwm float64
	for range b.N {
		cmd := exec.Command(bin, "--root", root, "daemon")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for len(sim.Health()) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		// Past the first goal-state poll, as the daemon idles.
		time.Sleep(7 * time.Second)
		var err error
		rss, hwm, err = procMemory(cmd.Process.Pid)
		cmd.Process.Kill()
		cmd.Wait()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(rss, "MB-rss")
	b.ReportMetric(hwm, "MB-peak-rss")
}

// procMemory reads VmRSS and VmHWM from /proc/PID/status, in MB.
func procMemory(pid int) (rss, hwm float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return 0, 0, err
		}
		if k == "VmRSS" {
			rss = kb / 1000
		} else {
			hwm = kb / 1000
		}
	}
	return rss, hwm, sc.Err()
}

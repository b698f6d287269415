package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/agent/extension/extensiontest"
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

// BenchmarkIdleDaemon runs the daemon with an extension installed and
// enabled, then measures it between goal states, as it idles polling the
// goal state and keeping the status blob current (budgets: resident
// memory under 20 MB, CPU under 0.5 % of one core).
func BenchmarkIdleDaemon(b *testing.B) {
	sim := simOn80(b)
	bin := buildAgent(b, "amd64")
	const handler = "Vhdprep.Test.CustomScript"
	pkg := extensiontest.CustomScript(b, handler, "")
	sim.Handle("/packages/cs.zip", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pkg) }))
	manifest := extensiontest.Manifest(map[string]string{"1.0": sim.URL() + "/packages/cs.zip"})
	sim.Handle("/manifests/cs.xml", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(manifest)) }))
	sim.SetDocument("extensionsConfig", extensiontest.ExtensionsConfig(sim.StatusBlobURL(), "BlockBlob", extensiontest.Plugin{
		Name: handler, Version: "1.0", State: "enabled", ManifestURL: sim.URL() + "/manifests/cs.xml",
		HandlerSettings: map[string]any{"publicSettings": map[string]string{"commandToExecute": "echo ok"}},
	}))
	const idle = 30 * time.Second
	var rss, cpu float64
	for range b.N {
		root := vmRoot(b)
		before := len(sim.Statuses())
		cmd := exec.Command(bin, "--root", root, "daemon")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for !handlerReported(sim.Statuses()[before:], handler) {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				b.Fatal("the extension's status never reached the status blob")
			}
			time.Sleep(50 * time.Millisecond)
		}
		t0, err := procCPU(cmd.Process.Pid)
		uploads := len(sim.Statuses())
		if err == nil {
			time.Sleep(idle)
			var t1 time.Duration
			if t1, err = procCPU(cmd.Process.Pid); err == nil {
				cpu = 100 * float64(t1-t0) / float64(idle)
				rss, _, err = procMemory(cmd.Process.Pid)
			}
		}
		if err == nil && len(sim.Statuses()) == uploads {
			err = fmt.Errorf("no status upload in %v of idling; the daemon must report every loop", idle)
		}
		cmd.Process.Kill()
		cmd.Wait()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(rss, "MB-idle-rss")
	b.ReportMetric(cpu, "pct-cpu-idle")
}

// handlerReported reports whether a status document shows handler Ready.
func handlerReported(docs [][]byte, handler string) bool {
	for _, d := range docs {
		if strings.Contains(string(d), `"handlerName":"`+handler+`","status":"Ready"`) {
			return true
		}
	}
	return false
}

// procCPU reads the user and system time of process pid from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

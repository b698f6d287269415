package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/wiresim"
)

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"version"}, exitOK, "vhdprep-agent dev\n"},
		{nil, exitUsage, ""},
		{[]string{"bogus"}, exitUsage, ""},
		{[]string{"--nosuchflag", "status"}, exitUsage, ""},
		{[]string{"status", "extra"}, exitUsage, ""},
	} {
		var out, errOut bytes.Buffer
		if code := run(tc.args, &out, &errOut); code != tc.code || out.String() != tc.out {
			t.Errorf("run %q = %d, %q (stderr %q); want %d, %q", tc.args, code, out.String(), errOut.String(), tc.code, tc.out)
		}
		if tc.code == exitUsage && !strings.Contains(errOut.String(), "usage: vhdprep-agent") {
			t.Errorf("run %q: no usage on stderr: %q", tc.args, errOut.String())
		}
	}
}

// buildAgent builds the command as make does: static.
func buildAgent(t testing.TB, goarch string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "vhdprep-agent-"+goarch)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=test", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// vmRoot is a system whose DHCP lease names 127.0.0.1 as the wire server
// and whose configuration turns provisioning off, so the real agent
// process can run against a simulator on 127.0.0.1:80 without touching
// the machine.
func vmRoot(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	for rel, data := range map[string]string{
		"var/lib/dhcp/dhclient.eth0.leases": "lease {\n  interface \"eth0\";\n  option unknown-245 7f:0:0:1;\n  expire never;\n}\n",
		"etc/vhdprep-agent.conf":            "Provisioning.Enabled=n\n",
		"var/log/.keep":                     "",
	} {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// simOn80 starts the simulator where the agent looks for it, or skips.
func simOn80(t testing.TB) *wiresim.Server {
	t.Helper()
	s, err := wiresim.NewAt("127.0.0.1:80")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.1:80 for the agent process (needs root and a free port): %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestProcessAgainstSimulator(t *testing.T) {
	sim := simOn80(t)
	bin := buildAgent(t, "amd64")
	root := vmRoot(t)

	out, err := exec.Command(bin, "--root", root, "report-ready").CombinedOutput()
	if err != nil {
		t.Fatalf("report-ready: %v\n%s", err, out)
	}
	if h := sim.Health(); len(h) != 1 || h[0].State != "Ready" || h[0].Incarnation != "1" {
		t.Fatalf("reports %+v", h)
	}
	for _, r := range sim.Requests() {
		if r.Header.Get("x-ms-agent-name") != "vhdprep-agent/test" {
			t.Errorf("agent name %q", r.Header.Get("x-ms-agent-name"))
		}
	}

	out, _ = exec.Command(bin, "--root", root, "status").CombinedOutput()
	if !strings.Contains(string(out), "127.0.0.1 (DHCP option 245 in ") || !strings.Contains(string(out), "incarnation 1, container "+sim.ContainerID()) {
		t.Errorf("status:\n%s", out)
	}

	// The daemon reports Ready, follows a new incarnation, ends cleanly on SIGTERM.
	cmd := exec.Command(bin, "--root", root, "daemon")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	wait := func(n int) {
		deadline := time.Now().Add(20 * time.Second)
		for len(sim.Health()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d reports after 20 s, want %d; logs:\n%s", len(sim.Health()), n, logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait(2)
	sim.SetIncarnation(2)
	wait(3)
	if h := sim.Health(); h[2].State != "Ready" || h[2].Incarnation != "2" {
		t.Errorf("after the new incarnation: %+v", h[2])
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("daemon exit: %v; logs:\n%s", err, logs.String())
	}
	if b, err := os.ReadFile(filepath.Join(root, logFile)); err != nil || !strings.Contains(string(b), "health reported") {
		t.Errorf("log file: %v\n%s", err, b)
	}
}

// The log file is rotated by size while the daemon runs, not only at
// start: it never grows past the limit and one older file is kept.
func TestLogFileRotatesBySize(t *testing.T) {
	name := filepath.Join(t.TempDir(), "agent.log")
	os.WriteFile(name, []byte(strings.Repeat("o", 60)), 0o640)
	w, err := openLogFile(name, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	line := []byte(strings.Repeat("x", 29) + "\n")
	for i := range 7 {
		if n, err := w.Write(line); n != len(line) || err != nil {
			t.Fatalf("write %d: %d %v", i, n, err)
		}
		if fi, err := os.Stat(name); err != nil || fi.Size() > 100 {
			t.Fatalf("after write %d: %v %v, want at most 100 bytes", i, fi, err)
		}
	}
	cur, _ := os.ReadFile(name)
	old, _ := os.ReadFile(name + ".1")
	// 60 old bytes + 1 line; then 3 lines; then 3 lines.
	if string(cur) != strings.Repeat(string(line), 3) || string(old) != strings.Repeat(string(line), 3) {
		t.Errorf("log %q, rotated %q", cur, old)
	}
}

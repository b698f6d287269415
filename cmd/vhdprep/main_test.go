package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/iostreams"
)

// The version stamps of the test build, as make sets them.
const (
	testVersion = "v0.0.0-test"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
)

// vhdprepBin is the real binary, built once for the tests that run it, with
// the guest agents (agentBins, by GOARCH) embedded as `make build` embeds
// them.
var (
	vhdprepBin string
	agentBins  = map[string]string{}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vhdprep-bin-")
	if err != nil {
		panic(err)
	}
	vhdprepBin = filepath.Join(dir, "vhdprep")
	if err := buildWithAgents(dir); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildWithAgents builds the agent for each architecture and vhdprep with
// them in agent/inject/bin, through a build overlay: the source tree stays
// as it is, so a fresh clone tests agent inject for real without make.
func buildWithAgents(dir string) error {
	embedDir, err := filepath.Abs("../../agent/inject/bin")
	if err != nil {
		return err
	}
	replace := map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		name := "vhdprep-agent-linux-" + arch
		agentBins[arch] = filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", agentBins[arch], "../vhdprep-agent")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %v\n%s", name, err, out)
		}
		replace[filepath.Join(embedDir, name)] = agentBins[arch]
	}
	// The stamp make writes beside the agents, as a test build's.
	stamp := filepath.Join(dir, "VERSION")
	if err := os.WriteFile(stamp, []byte(testVersion+" "+testCommit+"\n"), 0o644); err != nil {
		return err
	}
	replace[filepath.Join(embedDir, "VERSION")] = stamp
	overlay, err := json.Marshal(map[string]any{"Replace": replace})
	if err != nil {
		return err
	}
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o600); err != nil {
		return err
	}
	// Built as the Makefile builds it: without cgo, whose threads would not
	// start under the address-space limit the memory tests set.
	build := exec.Command("go", "build", "-overlay", overlayFile, "-ldflags", "-X main.version="+testVersion+" -X main.commit="+testCommit, "-o", vhdprepBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building vhdprep: %v\n%s", err, out)
	}
	return nil
}

// runCLI runs vhdprep in-process and returns exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	code := run(context.Background(), args, ios)
	return code, out.String(), errOut.String()
}

// runBin runs the built binary and returns its exit code and combined output.
func runBin(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(vhdprepBin, args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// version -o json traces the binary and the agents it embeds to their
// build: version and commit as make stamps them, Go, and each agent's
// digest.
func TestVersionJSON(t *testing.T) {
	code, out := runBin(t, "version", "--output", "json")
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != exitOK {
		t.Fatalf("version --output json: exit %d, %v\n%s", code, err, out)
	}
	if v.Version != testVersion || v.Commit != testCommit || v.Go != runtime.Version() || v.Arch != runtime.GOARCH || len(v.Agents) != 2 {
		t.Fatalf("version --output json = %+v", v)
	}
	for _, a := range v.Agents {
		b, err := os.ReadFile(agentBins[a.Arch])
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); a.SHA256 != hex.EncodeToString(sum[:]) || a.Version != testVersion || a.Commit != testCommit || a.Go != runtime.Version() {
			t.Errorf("agent %+v", a)
		}
	}
	if code, out := runBin(t, "version"); code != exitOK || !strings.HasPrefix(out, "vhdprep "+testVersion+" (commit "+testCommit[:12]+", ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{"no-such-command"},
		{"version", "--no-such-flag"},
		{"version", "extra-arg"},
		{"version", "--output", "yaml"},
	} {
		code, out := runBin(t, args...)
		if code != exitUsage {
			t.Errorf("vhdprep %v: exit %d, want %d; output %q", args, code, exitUsage, out)
		}
		if lines := strings.Count(strings.TrimSpace(out), "\n"); lines != 0 || !strings.HasPrefix(out, "vhdprep: ") {
			t.Errorf("vhdprep %v: want one 'vhdprep: ...' line, got %q", args, out)
		}
	}
}

func TestHelpHasExamples(t *testing.T) {
	root := newRootCmd(&app{io: mustTestIO()})
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if c.Example == "" {
			t.Errorf("command %q has no examples in its help", c.Name())
		}
	}
}

func mustTestIO() *iostreams.IOStreams { s, _, _, _ := iostreams.Test(); return s }

// Progress bars are drawn only on a terminal, plain lines elsewhere, and
// nothing with --quiet or --output json.
func TestProgressOnlyOnATerminal(t *testing.T) {
	for _, c := range []struct {
		tty, quiet bool
		output     string
		bar, lines bool
	}{
		{tty: true, output: "text", bar: true},
		{tty: false, output: "text", lines: true},
		{tty: true, quiet: true, output: "text"},
		{tty: false, quiet: true, output: "text"},
		{tty: true, output: "json"},
	} {
		ios := mustTestIO()
		ios.SetTTY(c.tty, c.tty)
		a := &app{io: ios, quiet: c.quiet, output: c.output}
		p := a.progress()
		_, isBar := p.(*bar)
		_, isLines := p.(*lines)
		if isBar != c.bar || isLines != c.lines {
			t.Errorf("%+v: progress bar = %v, lines = %v", c, isBar, isLines)
		}
	}
}

// Where no bar can be drawn, a long job prints a line every interval (done,
// total, percent, rate, time left) and one when it ends, in MiB and GiB.
func TestProgressLines(t *testing.T) {
	// Finish waits for the ticking goroutine, so out is read after every write.
	var out bytes.Buffer
	l := newLines(&out, 20*time.Millisecond)
	l.Start("convert disk.raw", 4<<30)
	l.Add(1 << 30)
	time.Sleep(70 * time.Millisecond)
	l.Add(3 << 30)
	l.Finish()
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(got) < 2 {
		t.Fatalf("%d lines, want at least one while running and one at the end:\n%s", len(got), out.String())
	}
	if !strings.HasPrefix(got[0], "convert disk.raw: 1 GiB of 4 GiB (25%), ") || !strings.HasSuffix(got[0], " left") {
		t.Errorf("line while running: %q", got[0])
	}
	if last := got[len(got)-1]; !strings.HasPrefix(last, "convert disk.raw: 4 GiB of 4 GiB (100%), ") || strings.HasSuffix(last, " left") {
		t.Errorf("last line: %q", last)
	}

	// A job stopped short prints no last line: its error says why.
	out.Reset()
	l = newLines(&out, time.Hour)
	l.Start("convert disk.raw", 4<<30)
	l.Add(1 << 30)
	l.Finish()
	if out.String() != "" {
		t.Errorf("a job stopped short printed %q", out.String())
	}
}

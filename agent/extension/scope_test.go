package extension

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/agent/extconf"
)

func TestScopeCommandLine(t *testing.T) {
	unit := scopeUnit("Microsoft.Azure.Extensions.CustomScript", "Enable")
	if !regexp.MustCompile(`^Microsoft\.Azure\.Extensions\.CustomScript_enable_[0-9a-f]{16}\.scope$`).MatchString(unit) {
		t.Errorf("unit %q", unit)
	}
	if other := scopeUnit("Microsoft.Azure.Extensions.CustomScript", "Enable"); other == unit {
		t.Errorf("two commands got the same scope %q", unit)
	}
	if u := scopeUnit("A-b c/../\xff"+strings.Repeat("x", 300), "Install"); !regexp.MustCompile(`^A_b_c_\.\.__x+_install_[0-9a-f]{16}\.scope$`).MatchString(u) || len(u) > 255 {
		t.Errorf("unit %q (%d bytes) for a name unit names cannot hold", u, len(u))
	}
	got := scopeArgs("/usr/bin/systemd-run", unit, "./handler.sh enable")
	want := []string{"/usr/bin/systemd-run", "--scope", "--unit=" + unit, "--slice=azure-vmextensions.slice",
		"-p", "CPUAccounting=yes", "-p", "MemoryAccounting=yes", "/bin/sh", "-c", "./handler.sh enable"}
	if !slices.Equal(got, want) {
		t.Errorf("command line\n%q\nwant\n%q", got, want)
	}
}

// fakeSystemdRun puts a systemd-run on PATH that logs its arguments to
// log, then runs body (a shell fragment with the arguments in "$@").
func fakeSystemdRun(t *testing.T, body string) (path, log string) {
	t.Helper()
	bin := t.TempDir()
	log = filepath.Join(bin, "calls")
	path = filepath.Join(bin, "systemd-run")
	script := "#!/bin/sh\nprintf '%s\\n' \"$*\" >> " + log + "\n" + body + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	return path, log
}

// scopeLike behaves as systemd-run --scope does: it names the unit on
// stderr and runs the command after the options in the foreground.
const scopeLike = `for a; do case $a in --unit=*) unit=${a#--unit=};; esac; done
echo "Running scope as unit: $unit" >&2
while [ $# -gt 0 ] && [ "$1" != /bin/sh ]; do shift; done
exec "$@"`

func TestSystemdRunFoundAsWALinuxAgentFindsSystemd(t *testing.T) {
	path, _ := fakeSystemdRun(t, "exit 0")
	root := t.TempDir()
	if got := SystemdRun(root); got != "" {
		t.Errorf("without /run/systemd/system: %q, want none", got)
	}
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := SystemdRun(root); got != path {
		t.Errorf("with /run/systemd/system: %q, want %q", got, path)
	}
	t.Setenv("PATH", t.TempDir())
	if got := SystemdRun(root); got != "" {
		t.Errorf("without systemd-run on PATH: %q, want none", got)
	}
}

// With systemd-run, each command runs in a scope of its own under the
// extensions' slice; a command that fails in its scope is the handler's
// failure and is not run again.
func TestCommandsRunInTheirOwnScope(t *testing.T) {
	h := newHarness(t)
	path, log := fakeSystemdRun(t, scopeLike)
	h.proc.SystemdRun = path
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	s, _ := h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled", command: "echo in scope"})
	if _, ext, _ := s.handler(t, testHandlerName); ext.Status != StatusSuccess || ext.FormattedMessage.Message != "in scope" {
		t.Fatalf("status %+v", ext)
	}
	b, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	re := regexp.MustCompile(`^--scope --unit=Vhdprep\.Test\.CustomScript_(install|enable)_[0-9a-f]{16}\.scope --slice=azure-vmextensions\.slice -p CPUAccounting=yes -p MemoryAccounting=yes /bin/sh -c \./handler\.sh (install|enable)$`)
	if len(lines) != 2 || !re.MatchString(lines[0]) || !re.MatchString(lines[1]) || !strings.HasSuffix(lines[1], "enable") {
		t.Errorf("systemd-run calls:\n%s", b)
	}

	s, _ = h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled", seq: 1, command: "exit 3"})
	if _, ext, _ := s.handler(t, testHandlerName); ext.Status != StatusError || ext.Code != 3 {
		t.Errorf("a failing command in its scope: %+v", ext)
	}
	wantCalls(t, h.calls(), "install", "enable 1.0 seq=0", "enable 1.0 seq=1")
	if b, _ := os.ReadFile(log); strings.Count(string(b), "\n") != 3 || h.proc.noScope.Load() {
		t.Errorf("a command that failed in its scope made systemd-run count as broken:\n%s", b)
	}
}

// When systemd-run cannot make the scope, the command runs in a plain
// process group, and so does every later one, as WALinuxAgent does.
func TestScopeFallsBackToAProcessGroup(t *testing.T) {
	h := newHarness(t)
	path, log := fakeSystemdRun(t, `echo "Failed to start transient scope unit: Access denied" >&2; exit 1`)
	h.proc.SystemdRun = path
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	s, _ := h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled", command: "echo without scope"})
	if _, ext, _ := s.handler(t, testHandlerName); ext.Status != StatusSuccess || ext.FormattedMessage.Message != "without scope" {
		t.Fatalf("status %+v", ext)
	}
	wantCalls(t, h.calls(), "install", "enable 1.0 seq=0")
	if b, _ := os.ReadFile(log); strings.Count(string(b), "\n") != 1 {
		t.Errorf("systemd-run tried again after it failed:\n%s", b)
	}
}

// Stopping the agent (its context cancelled) leaves a running command
// alone: a restart must not kill what an extension started.
func TestAgentStopLeavesTheCommandRunning(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			if _, err := os.Stat(filepath.Join(dir, "cmd.pid")); err == nil {
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	start := time.Now()
	_, err := run(ctx, "Enable", dir, sh("echo $$ > cmd.pid; exec sleep 30"), nil, time.Minute, "")
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("run = %v after %s, want an error as the agent stops", err, time.Since(start))
	}
	b, err := os.ReadFile(filepath.Join(dir, "cmd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid := 0
	for _, c := range strings.TrimSpace(string(b)) {
		pid = pid*10 + int(c-'0')
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	if err := syscall.Kill(pid, 0); err != nil {
		t.Errorf("the command %d was killed as the agent stopped: %v", pid, err)
	}
}

func sh(command string) []string { return []string{"/bin/sh", "-c", command} }

// The real systemd-run on a machine that systemd does not run fails
// without naming the unit: the command must then run without a scope.
func TestRealSystemdRunWithoutSystemdIsNoScope(t *testing.T) {
	path, err := exec.LookPath("systemd-run")
	if err != nil {
		t.Skip("no systemd-run here")
	}
	if SystemdRun("/") != "" {
		t.Skip("systemd runs here: a real scope would be made")
	}
	unit := scopeUnit(testHandlerName, "Enable")
	_, err = run(context.Background(), "Enable", t.TempDir(), scopeArgs(path, unit, "echo ran"), nil, time.Minute, unit)
	if !errors.Is(err, errNoScope) {
		t.Errorf("run = %v, want errNoScope", err)
	}
}

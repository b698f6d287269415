package extension

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/agent/extconf"
)

func TestEnableTimeoutKillsTheProcessGroup(t *testing.T) {
	h := newHarness(t)
	h.proc.Limits.Enable = 2 * time.Second // time for the handler to start its command on a loaded machine
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	// The command leaves a child behind that would outlive a kill of the shell alone.
	s, _ := h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled",
		command: "sleep 30 & echo $! > child.pid; echo started; wait"})
	st, ext, _ := s.handler(t, testHandlerName)
	if st != "NotReady" || ext.Status != StatusError || ext.Code != codeScriptTimedOut ||
		!strings.Contains(ext.FormattedMessage.Message, "timed out") || !strings.Contains(ext.FormattedMessage.Message, "[stdout]") {
		t.Errorf("timeout status: %s %+v", st, ext)
	}
	b, err := os.ReadFile(filepath.Join(h.handlerDir("1.0"), "child.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid := 0
	for _, c := range strings.TrimSpace(string(b)) {
		pid = pid*10 + int(c-'0')
	}
	deadline := time.Now().Add(2 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the timed-out command still runs", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A handler that starts a worker and exits, the worker keeping stdout and
// stderr open (CustomScript's shim: nohup ... & behind a tee), returns at
// once; the worker is left to run past the command and past the limit.
func TestDetachedWorkersAreLeftAlone(t *testing.T) {
	for name, command := range map[string]string{
		"background child": "sleep 30 & echo $! > worker.pid; echo shim done",
		"setsid child":     "setsid sh -c 'echo $$ > worker.pid; exec sleep 30' & sleep 0.2; echo shim done",
		"nohup worker":     "nohup sh -c 'echo $$ > worker.pid; exec sleep 30' & sleep 0.2; echo shim done",
	} {
		t.Run(name, func(t *testing.T) {
			// In parallel, so the limit can be far above a loaded
			// machine's start of a shell and the test still short.
			t.Parallel()
			dir := t.TempDir()
			const limit = 8 * time.Second
			start := time.Now()
			out, err := run(context.Background(), "Enable", dir, sh(command), nil, limit, "")
			if err != nil || time.Since(start) >= limit || !strings.Contains(out, "shim done") {
				t.Fatalf("run took %s: %q, %v; want the shim's output at once", time.Since(start), out, err)
			}
			b, err := os.ReadFile(filepath.Join(dir, "worker.pid"))
			if err != nil {
				t.Fatal(err)
			}
			pid := 0
			for _, c := range strings.TrimSpace(string(b)) {
				pid = pid*10 + int(c-'0')
			}
			defer syscall.Kill(pid, syscall.SIGKILL)
			time.Sleep(time.Until(start.Add(limit + 500*time.Millisecond))) // past the limit
			if err := syscall.Kill(pid, 0); err != nil {
				t.Errorf("the worker %d was killed: %v", pid, err)
			}
		})
	}
}

func TestCommandOutputTailsAreBounded(t *testing.T) {
	out, err := run(context.Background(), "Enable", t.TempDir(), sh("head -c 100000 /dev/zero | tr '\\0' a; echo END; echo oops >&2; exit 2"), nil, 10*time.Second, "")
	ce, ok := err.(*CommandError)
	if !ok || ce.ExitCode != 2 || ce.TimedOut {
		t.Fatalf("err = %v", err)
	}
	if len(out) > 2*maxOutputTail+64 || !strings.Contains(out, "aEND\n\n\n[stderr]\noops") {
		t.Errorf("output %d bytes: ...%s", len(out), out[max(0, len(out)-80):])
	}
}

func TestCommandEnvironment(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled", seq: 3,
		command: "env | grep -E 'AZURE_GUEST_AGENT|ConfigSequenceNumber' | sort > env.txt"})
	b, _ := os.ReadFile(filepath.Join(h.handlerDir("1.0"), "env.txt"))
	for _, want := range []string{
		"AZURE_GUEST_AGENT_EXTENSION_PATH=" + h.handlerDir("1.0"),
		"AZURE_GUEST_AGENT_EXTENSION_VERSION=1.0",
		"AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS=" + h.sim.Endpoint(),
		"ConfigSequenceNumber=3",
	} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("environment lacks %s:\n%s", want, b)
		}
	}
}

func TestMalformedAndHugeStatusFiles(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	s, _ := h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled",
		script: `printf '[{"status": {' > status/0.status`})
	if st, ext, _ := s.handler(t, testHandlerName); st != "Ready" || ext.Status != StatusError || ext.Code != codeStatusFileError {
		t.Errorf("malformed status file: %s %+v", st, ext)
	}
	huge := `printf '[{"status":{"status":"success","code":0,"formattedMessage":{"lang":"en","message":"' > status/1.status
head -c 300000 /dev/zero | tr '\0' x >> status/1.status
printf '"}}}]' >> status/1.status`
	s, _ = h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled", seq: 1, script: huge})
	_, ext, _ := s.handler(t, testHandlerName)
	if ext.Status != StatusSuccess || len(ext.FormattedMessage.Message) != maxStatusMessage || !strings.HasSuffix(ext.FormattedMessage.Message, truncatedSuffix) {
		t.Errorf("huge status file: %s, message of %d bytes", ext.Status, len(ext.FormattedMessage.Message))
	}
	if n := len(h.sim.Statuses()[len(h.sim.Statuses())-1]); n > 16<<10 {
		t.Errorf("uploaded document is %d bytes", n)
	}
}

func TestZipWithPathTraversalIsRefused(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", buildZip(t,
		zipEntry{name: "HandlerManifest.json", body: `[{"handlerManifest":{"enableCommand":"true"}}]`},
		zipEntry{name: "../../escaped.sh", body: "#!/bin/sh\n", mode: 0o755}))
	s, _ := h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled", command: "true"})
	st, ext, _ := s.handler(t, testHandlerName)
	if st != "NotReady" || ext.Code != codePackageExtractFailed || !strings.Contains(ext.FormattedMessage.Message, "unsafe") {
		t.Errorf("traversal status: %s %+v", st, ext)
	}
	root := filepath.Dir(filepath.Dir(filepath.Dir(h.dirs.Lib)))
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if fi != nil && fi.Name() == "escaped.sh" {
			t.Errorf("%s written", p)
		}
		return nil
	})
	if _, err := os.Stat(h.handlerDir("1.0")); !os.IsNotExist(err) {
		t.Errorf("handler directory exists: %v", err)
	}
}

func TestDirectDownloadFailsOverToHostPlugin(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	// Direct requests carry no HostGAPlugin headers: refuse them, as a VM
	// without storage access sees it.
	var direct atomic.Int32
	pkgPath := "/packages/" + testHandlerName + "-1.0.zip"
	pkg := testHandlerZip(t, "1.0", "")
	h.sim.Handle(pkgPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("x-ms-artifact-location") == "" {
			direct.Add(1)
			http.Error(w, "storage unreachable", http.StatusForbidden)
			return
		}
		w.Write(pkg)
	}))
	s, err := h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled", command: "echo via host plugin"})
	if err != nil {
		t.Fatal(err)
	}
	if st, ext, _ := s.handler(t, testHandlerName); st != "Ready" || ext.FormattedMessage.Message != "via host plugin" {
		t.Errorf("status: %s %+v", st, ext)
	}
	if n := direct.Load(); n != 1 {
		t.Errorf("%d direct package requests, want 1 before the HostGAPlugin", n)
	}
	var viaHost int
	for _, r := range h.sim.Requests() {
		if r.HostPlugin && strings.HasPrefix(r.Path, "/extensionArtifact") {
			viaHost++
		}
	}
	if viaHost != 1 {
		t.Errorf("%d HostGAPlugin artifact requests, want 1", viaHost)
	}
}

func TestFailedDownloadHidesSAS(t *testing.T) {
	h := newHarness(t)
	h.proc.Fetch.ViaHostPlugin = nil
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	h.sim.Fail(1, http.StatusNotFound, "/packages/")
	s, _ := h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled", command: "true"})
	st, ext, _ := s.handler(t, testHandlerName)
	if st != "NotReady" || ext.Code != codePackageDownloadFailed || strings.Contains(ext.FormattedMessage.Message, "secret") {
		t.Errorf("status: %s %+v", st, ext)
	}
	// The next goal state downloads it: nothing half-done was kept.
	s, _ = h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled", seq: 1, command: "true"})
	if st, _, _ := s.handler(t, testHandlerName); st != "Ready" {
		t.Errorf("retry: %s", st)
	}
}

func TestGoalStateChangeStopsBetweenHandlers(t *testing.T) {
	h := newHarness(t)
	const other = "Vhdprep.Test.Second"
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	h.serve(other, "1.0", testHandlerZip(t, "1.0", ""))
	// While the first handler enables, a new goal state arrives (its
	// command leaves the flag the daemon would get from the wire server).
	flag := filepath.Join(h.dirs.Lib, "new-incarnation")
	h.proc.Changed = func() bool { _, err := os.Stat(flag); return err == nil }
	first := plugin{name: testHandlerName, version: "1.0", state: "enabled", command: "touch " + flag}
	second := plugin{name: other, version: "1.0", state: "enabled", level: 1, command: "true"}
	s, err := h.process(extconf.BlockBlob, first, second)
	if !errors.Is(err, ErrGoalStateChanged) {
		t.Fatalf("Process = %v, want ErrGoalStateChanged", err)
	}
	wantCalls(t, h.calls(), "install", "enable")
	if st, ext, _ := s.handler(t, other); st != "NotReady" || !strings.Contains(ext.FormattedMessage.Message, "newer goal state") {
		t.Errorf("postponed handler: %s %+v", st, ext)
	}
	// The new goal state runs both: the first is enabled again, not reinstalled.
	os.Remove(flag)
	first.command = "true"
	if _, err := h.process(extconf.BlockBlob, first, second); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, h.calls(), "install", "enable", "enable", "install", "enable")
}

func TestRequiredFeatureUnsupported(t *testing.T) {
	h := newHarness(t)
	cfg, err := extconf.Parse([]byte(strings.Replace(h.extensionsConfig(extconf.BlockBlob,
		plugin{name: testHandlerName, version: "1.0", state: "enabled", command: "true"}),
		"<StatusUploadBlob", "<RequiredFeatures><RequiredFeature><Name>VersioningGovernance</Name><Value>1.0</Value></RequiredFeature></RequiredFeatures><StatusUploadBlob", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.proc.Process(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "VersioningGovernance") {
		t.Errorf("Process = %v", err)
	}
	s := h.upload(cfg)
	if st, ext, _ := s.handler(t, testHandlerName); st != "NotReady" || ext.Status != StatusError || !strings.Contains(ext.FormattedMessage.Message, "VersioningGovernance") {
		t.Errorf("status: %s %+v", st, ext)
	}
	if _, err := os.Stat(h.handlerDir("1.0")); !os.IsNotExist(err) {
		t.Error("a handler was installed for an unsupported goal state")
	}
}

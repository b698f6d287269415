package extension

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/agent/extconf"
	"github.com/vhdprep/vhdprep/agent/extension/extensiontest"
)

func TestInstallEnableNewSeqDisableUninstall(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	cs := plugin{name: testHandlerName, version: "1.0", state: "enabled", seq: 0, command: "echo hello > marker; echo done"}

	s, err := h.process(extconf.BlockBlob, cs)
	if err != nil {
		t.Fatal(err)
	}
	dir := h.handlerDir("1.0")
	wantCalls(t, h.calls(), "install 1.0 seq=0 from= uninstallrc=NOT_RUN", "enable 1.0 seq=0")
	if b, _ := os.ReadFile(filepath.Join(dir, "marker")); string(b) != "hello\n" {
		t.Errorf("commandToExecute did not run in the handler directory: marker %q", b)
	}
	fi, err := os.Stat(filepath.Join(dir, "config", "0.settings"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("0.settings: %v %v, want mode 0600", fi, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "config", "HandlerState")); string(b) != StateEnabled {
		t.Errorf("HandlerState %q", b)
	}
	var env []struct {
		Name               string
		HandlerEnvironment map[string]string
	}
	b, _ := os.ReadFile(filepath.Join(dir, "HandlerEnvironment.json"))
	if json.Unmarshal(b, &env) != nil || len(env) != 1 || env[0].Name != testHandlerName ||
		env[0].HandlerEnvironment["logFolder"] != filepath.Join(h.dirs.Log, testHandlerName) ||
		env[0].HandlerEnvironment["statusFolder"] != filepath.Join(dir, "status") {
		t.Errorf("HandlerEnvironment.json: %s", b)
	}
	if fi, err := os.Stat(filepath.Join(h.dirs.Log, testHandlerName)); err != nil || !fi.IsDir() {
		t.Errorf("log dir: %v", err)
	}
	st, ext, seq := s.handler(t, testHandlerName)
	if st != "Ready" || ext.Status != StatusSuccess || seq != 0 || ext.FormattedMessage.Message != "done" {
		t.Errorf("status after enable: %s %+v seq %d", st, ext, seq)
	}
	if s.Version != "1.1" || s.AggregateStatus.GuestAgentStatus.Status != "Ready" || s.GuestOSInfo == nil ||
		len(s.SupportedFeatures) != 1 || s.SupportedFeatures[0]["Key"] != "MultipleExtensionsPerHandler" || s.SupportedFeatures[0]["Value"] != "1.0" {
		t.Errorf("document: %+v", s)
	}

	// The agent restarts (a new Processor) in the middle of downloading
	// another version, and gets the same goal state: enable again, no
	// install, the half-done download gone.
	h.proc = &Processor{Dirs: h.dirs, Fetch: h.fetcher(), Limits: h.proc.Limits, WireAddress: h.proc.WireAddress}
	leftover := filepath.Join(h.dirs.Lib, "."+testHandlerName+"-1.0"+unpackSuffix+"123")
	os.MkdirAll(leftover, 0o755)
	if _, err := h.process(extconf.BlockBlob, cs); err != nil {
		t.Fatal(err)
	}
	// A new sequence number: enable with it.
	cs.seq, cs.command = 1, "echo second"
	s, _ = h.process(extconf.BlockBlob, cs)
	wantCalls(t, h.calls(), "install", "enable 1.0 seq=0", "enable 1.0 seq=0", "enable 1.0 seq=1")
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("half-done unpack left: %v", err)
	}
	if _, ext, seq := s.handler(t, testHandlerName); seq != 1 || ext.FormattedMessage.Message != "second" {
		t.Errorf("status after seq 1: %+v seq %d", ext, seq)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "mrseq")); string(b) != "1" {
		t.Errorf("mrseq %q", b)
	}

	cs.state = "disabled"
	s, _ = h.process(extconf.BlockBlob, cs)
	wantCalls(t, h.calls()[4:], "disable 1.0 seq=1")
	if b, _ := os.ReadFile(filepath.Join(dir, "config", "HandlerState")); string(b) != StateInstalled {
		t.Errorf("HandlerState after disable %q", b)
	}
	if st, _, _ := s.handler(t, testHandlerName); st != "Ready" {
		t.Errorf("handler status after disable %s", st)
	}
	// Disabled again: nothing runs.
	h.process(extconf.BlockBlob, cs)
	if n := len(h.calls()); n != 5 {
		t.Errorf("disable ran again: %v", h.calls())
	}

	cs.state = "uninstall"
	s, _ = h.process(extconf.BlockBlob, cs)
	wantCalls(t, h.calls()[5:], "uninstall 1.0")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("handler directory left after uninstall: %v", err)
	}
	if len(s.AggregateStatus.Handlers) != 0 {
		t.Errorf("uninstalled handler still reported: %+v", s.AggregateStatus.Handlers)
	}
}

func TestUpdateRunsWALinuxAgentOrder(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	h.serve(testHandlerName, "1.1", testHandlerZip(t, "1.1", ""))
	if _, err := h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled", command: "true"}); err != nil {
		t.Fatal(err)
	}
	s, err := h.process(extconf.PageBlob, plugin{name: testHandlerName, version: "1.1", state: "enabled", seq: 1, command: "echo updated"})
	if err != nil {
		t.Fatal(err)
	}
	wantCalls(t, h.calls(), "install 1.0", "enable 1.0 seq=0",
		"disable 1.0", "update 1.1 seq=1 from=1.0 uninstallrc= disablerc=0", "uninstall 1.0",
		"install 1.1 seq=1 from= uninstallrc=0", "enable 1.1 seq=1")
	if _, err := os.Stat(h.handlerDir("1.0")); !os.IsNotExist(err) {
		t.Errorf("old version left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.handlerDir("1.1"), "status", "0.status")); err != nil {
		t.Errorf("old status files not carried over: %v", err)
	}
	st, ext, _ := s.handler(t, testHandlerName)
	if st != "Ready" || ext.FormattedMessage.Message != "updated" || s.AggregateStatus.Handlers[0].HandlerVersion != "1.1" {
		t.Errorf("status after update: %s %+v", st, ext)
	}
}

// mrseq is the handler's record of what it ran: the agent carries it to
// the new version, so an update with the same sequence number does not
// run the same configuration twice.
func TestUpdateCarriesTheHandlersMrseq(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	h.serve(testHandlerName, "1.1", testHandlerZip(t, "1.1", ""))
	cs := plugin{name: testHandlerName, version: "1.0", state: "enabled", command: "echo ran >> ../runs.log; echo ok"}
	if _, err := h.process(extconf.BlockBlob, cs); err != nil {
		t.Fatal(err)
	}
	cs.version = "1.1"
	if _, err := h.process(extconf.BlockBlob, cs); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, h.calls(), "install 1.0", "enable 1.0 seq=0", "disable 1.0", "update 1.1 seq=0", "uninstall 1.0", "install 1.1", "enable 1.1 seq=0")
	if b, _ := os.ReadFile(filepath.Join(h.dirs.Lib, "runs.log")); string(b) != "ran\n" {
		t.Errorf("the command ran %q: mrseq was not carried over to 1.1", b)
	}
	if b, _ := os.ReadFile(filepath.Join(h.handlerDir("1.1"), "mrseq")); string(b) != "0" {
		t.Errorf("1.1's mrseq %q, want 0 from 1.0", b)
	}
}

func TestUpdateWithoutInstallAndFailingOldDisable(t *testing.T) {
	h := newHarness(t)
	broken := buildZip(t,
		zipEntry{name: "HandlerManifest.json", body: `[{"handlerManifest":{"enableCommand":"./enable.sh","disableCommand":"exit 3","uninstallCommand":"true"}}]`},
		zipEntry{name: "enable.sh", body: "#!/bin/sh\necho enable old >> ../calls.log\n", mode: 0o755})
	h.serve(testHandlerName, "1.0", broken)
	h.serve(testHandlerName, "2.0", testHandlerZip(t, "2.0", `,"updateMode":"UpdateWithoutInstall","continueOnUpdateFailure":true`))
	h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled", command: "true"})
	if _, err := h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "2.0", state: "enabled", seq: 1, command: "true"}); err != nil {
		t.Fatal(err)
	}
	// The old disable failed with 3; continueOnUpdateFailure goes on; no install.
	wantCalls(t, h.calls(), "enable old", "update 2.0 seq=1 from=1.0 uninstallrc= disablerc=3", "enable 2.0 seq=1")
}

func TestUpdateFailureWithoutContinueKeepsOldVersion(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", buildZip(t, zipEntry{name: "HandlerManifest.json", body: `[{"handlerManifest":{"enableCommand":"true","disableCommand":"exit 3"}}]`}))
	h.serve(testHandlerName, "2.0", testHandlerZip(t, "2.0", ""))
	h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled", command: "true"})
	s, _ := h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "2.0", state: "enabled", seq: 1, command: "true"})
	if st, ext, _ := s.handler(t, testHandlerName); st != "NotReady" || ext.Status != StatusError || ext.Code != codeDisableFailed {
		t.Errorf("failed update status: %s %+v", st, ext)
	}
	if b, _ := os.ReadFile(filepath.Join(h.handlerDir("2.0"), "config", "HandlerState")); string(b) != StateFailedUpgrade {
		t.Errorf("new version state %q, want FailedUpgrade", b)
	}
	if _, err := os.Stat(h.handlerDir("1.0")); err != nil {
		t.Errorf("old version removed after a failed update: %v", err)
	}
}

func TestDependencyLevels(t *testing.T) {
	h := newHarness(t)
	const other = "Vhdprep.Test.Second"
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	h.serve(other, "1.0", testHandlerZip(t, "1.0", ""))
	// The second handler (level 1) is listed first but runs after the first (level 0) succeeded.
	if _, err := h.process(extconf.BlockBlob,
		plugin{name: other, version: "1.0", state: "enabled", level: 1, command: "echo second"},
		plugin{name: testHandlerName, version: "1.0", state: "enabled", level: 0, command: "echo first"}); err != nil {
		t.Fatal(err)
	}
	calls := h.calls()
	wantCalls(t, calls, "install", "enable", "install", "enable")
	if b, _ := os.ReadFile(filepath.Join(h.dirs.Lib, other+"-1.0", "status", "0.status")); !strings.Contains(string(b), "second") {
		t.Errorf("second handler's status %s", b)
	}
	first, _ := os.Stat(filepath.Join(h.handlerDir("1.0"), "status", "0.status"))
	second, _ := os.Stat(filepath.Join(h.dirs.Lib, other+"-1.0", "status", "0.status"))
	if first == nil || second == nil || second.ModTime().Before(first.ModTime()) {
		t.Errorf("second handler ran before the first finished")
	}

	// The level-0 handler fails: the level-1 handler waits, reported as an error.
	s, _ := h.process(extconf.BlockBlob,
		plugin{name: other, version: "1.0", state: "enabled", seq: 1, level: 1, command: "echo second"},
		plugin{name: testHandlerName, version: "1.0", state: "enabled", seq: 1, level: 0, command: "exit 4"})
	if n := len(h.calls()); n != 5 {
		t.Errorf("the dependent handler ran: %v", h.calls())
	}
	if st, ext, _ := s.handler(t, other); st != "NotReady" || ext.Status != StatusError || !strings.Contains(ext.FormattedMessage.Message, "depends on failed") {
		t.Errorf("dependent status: %s %+v", st, ext)
	}
	if st, ext, _ := s.handler(t, testHandlerName); st != "NotReady" || ext.Status != StatusError || ext.Code != 4 {
		t.Errorf("failed handler status: %s %+v", st, ext)
	}
}

// A handler the goal state gives no settings gets an empty 0.settings, as
// WALinuxAgent's update_settings writes it, not a document of nulls.
func TestHandlerWithoutSettingsGetsEmptySettingsFile(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	doc := h.extensionsConfig(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled"})
	start, end := strings.Index(doc, "<PluginSettings>"), strings.Index(doc, "</PluginSettings>")
	doc = doc[:start] + doc[end+len("</PluginSettings>"):]
	cfg, err := extconf.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Plugins) != 1 || len(cfg.Plugins[0].Extensions) != 0 {
		t.Fatalf("goal state still has settings: %+v", cfg.Plugins)
	}
	if err := h.proc.Process(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(h.handlerDir("1.0"), "config", "0.settings"))
	if err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("0.settings: %v %v, want an empty file of mode 0600", fi, err)
	}
	wantCalls(t, h.calls(), "install 1.0 seq=0 from= uninstallrc=NOT_RUN", "enable 1.0 seq=0")
}

// Refuse reports an installed handler failed even where its own status
// of an earlier run said success, and runs nothing.
func TestRefuseOverridesAnEarlierSuccess(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	cs := plugin{name: testHandlerName, version: "1.0", state: "enabled", command: "echo done"}
	if s, _ := h.process(extconf.BlockBlob, cs); len(s.AggregateStatus.Handlers) != 1 {
		t.Fatalf("status %+v", s)
	}
	cfg, err := extconf.Parse([]byte(h.extensionsConfig(extconf.BlockBlob, cs)))
	if err != nil {
		t.Fatal(err)
	}
	h.proc.Refuse(cfg, "off")
	s := h.upload(cfg)
	st, ext, seq := s.handler(t, testHandlerName)
	if st != "NotReady" || ext.Status != StatusError || ext.Code != codeEnableFailed || seq != 0 ||
		ext.FormattedMessage.Message != "Enable: extension '"+testHandlerName+"' will not be processed: off" {
		t.Errorf("refused: %s %+v seq %d", st, ext, seq)
	}
	wantCalls(t, h.calls(), "install 1.0 seq=0 from= uninstallrc=NOT_RUN", "enable 1.0 seq=0")
}

// A handler that left the goal state without being uninstalled (the
// agent missed that goal state) is disabled, uninstalled and removed, as
// WALinuxAgent removes it; WALinuxAgent's own packages stay.
func TestHandlerLeftOutOfTheGoalStateIsRemoved(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	const other = "Vhdprep.Test.Other"
	h.serve(other, "2.0", extensiontest.CustomScript(t, other, ""))
	cs := plugin{name: testHandlerName, version: "1.0", state: "enabled", seq: 4, command: "echo one"}
	if _, err := h.process(extconf.BlockBlob, cs); err != nil {
		t.Fatal(err)
	}
	agentPkg := filepath.Join(h.dirs.Lib, "WALinuxAgent-2.9.1.1")
	os.MkdirAll(agentPkg, 0o755)
	os.WriteFile(filepath.Join(agentPkg, "HandlerManifest.json"), []byte("[]"), 0o644)

	s, err := h.process(extconf.BlockBlob, plugin{name: other, version: "2.0", state: "enabled", command: "echo two"})
	if err != nil {
		t.Fatal(err)
	}
	wantCalls(t, h.calls(), "install 1.0", "enable 1.0 seq=4", "install 2.0", "enable 2.0", "disable 1.0 seq=4", "uninstall 1.0")
	if _, err := os.Stat(h.handlerDir("1.0")); !os.IsNotExist(err) {
		t.Errorf("handler directory left: %v", err)
	}
	if _, err := os.Stat(agentPkg); err != nil {
		t.Errorf("WALinuxAgent's package removed: %v", err)
	}
	if len(s.AggregateStatus.Handlers) != 1 || s.AggregateStatus.Handlers[0].HandlerName != other {
		t.Errorf("status: %+v", s.AggregateStatus.Handlers)
	}
}

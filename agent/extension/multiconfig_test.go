package extension

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/agent/extconf"
	"github.com/vhdprep/vhdprep/agent/extension/extensiontest"
)

const multiConfigManifest = `,"supportsMultipleExtensions":true`

// mcExt is an extension of the multi-config test handler running command.
func mcExt(name string, seq int, command string) extensiontest.Extension {
	return extensiontest.Extension{Name: name, SeqNo: seq,
		HandlerSettings: map[string]any{"publicSettings": map[string]string{"commandToExecute": command}}}
}

// extensions are the multi-config statuses of name in the document, by extension name.
func (s statusDoc) extensions(t *testing.T, name string) map[string]ExtensionStatus {
	t.Helper()
	out := map[string]ExtensionStatus{}
	for _, h := range s.AggregateStatus.Handlers {
		if h.HandlerName != name {
			continue
		}
		rs := h.RuntimeSettingsStatus
		if rs == nil {
			continue // the handler alone: none of its extensions is reported
		}
		if rs.ExtensionName == "" {
			t.Fatalf("multi-config handler status without extensionName: %+v", h)
		}
		if h.Status != "Ready" {
			t.Errorf("%s.%s: handler status %s", name, rs.ExtensionName, h.Status)
		}
		out[rs.ExtensionName] = rs.SettingsStatus.Status
	}
	return out
}

func TestMultiConfigExtensions(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", multiConfigManifest))
	mc := plugin{name: testHandlerName, version: "1.0", state: "enabled",
		exts: []extensiontest.Extension{mcExt("first", 0, "echo one > first.out; echo one"), mcExt("second", 3, "echo two")}}
	s, err := h.process(extconf.BlockBlob, mc)
	if err != nil {
		t.Fatal(err)
	}
	dir := h.handlerDir("1.0")
	calls := h.calls()
	wantCalls(t, calls, "install 1.0 seq=0", "enable 1.0 seq=0", "enable 1.0 seq=3")
	if !strings.HasSuffix(calls[1], "ext=first") || !strings.HasSuffix(calls[2], "ext=second") {
		t.Errorf("ConfigExtensionName not set per extension:\n%s", strings.Join(calls, "\n"))
	}
	for _, f := range []string{"config/first.0.settings", "config/second.3.settings"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, want mode 0600", f, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "first.out")); string(b) != "one\n" {
		t.Errorf("first's command did not run: %q", b)
	}
	for f, want := range map[string]string{"first.mrseq": "0", "second.mrseq": "3", "config/first.HandlerState": ExtEnabled,
		"config/second.HandlerState": ExtEnabled, "config/HandlerState": StateEnabled} {
		if b, _ := os.ReadFile(filepath.Join(dir, f)); string(b) != want {
			t.Errorf("%s = %q, want %q", f, b, want)
		}
	}
	exts := s.extensions(t, testHandlerName)
	if len(exts) != 2 || exts["first"].Status != StatusSuccess || exts["first"].FormattedMessage.Message != "one" ||
		exts["second"].Status != StatusSuccess || exts["second"].FormattedMessage.Message != "two" {
		t.Errorf("statuses: %+v", exts)
	}

	// A new sequence number for second only: second runs its new
	// settings; first keeps its settings and status (enable runs again
	// for it, as WALinuxAgent does on every new goal state).
	mc.exts[1] = mcExt("second", 4, "echo three")
	s, _ = h.process(extconf.BlockBlob, mc)
	wantCalls(t, h.calls()[3:], "enable 1.0 seq=0", "enable 1.0 seq=4")
	exts = s.extensions(t, testHandlerName)
	if exts["second"].FormattedMessage.Message != "three" || exts["first"].FormattedMessage.Message != "one" {
		t.Errorf("statuses after second's new seqNo: %+v", exts)
	}
	if _, err := os.Stat(filepath.Join(dir, "status/second.4.status")); err != nil {
		t.Error(err)
	}

	// The fabric deletes first (state disabled): it is disabled, its
	// files go, it is no longer reported; second stays enabled.
	mc.exts[0].State = "disabled"
	s, _ = h.process(extconf.BlockBlob, mc)
	got := h.calls()[5:]
	if !slices.Contains(got, "disable 1.0 seq=0 from= uninstallrc= disablerc= ext=first") || slices.ContainsFunc(got, func(c string) bool {
		return strings.HasPrefix(c, "disable") && strings.HasSuffix(c, "ext=second")
	}) {
		t.Errorf("calls after deleting first:\n%s", strings.Join(got, "\n"))
	}
	for _, f := range []string{"config/first.0.settings", "status/first.0.status", "config/first.HandlerState", "first.mrseq"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s left after deleting first: %v", f, err)
		}
	}
	exts = s.extensions(t, testHandlerName)
	if _, ok := exts["first"]; ok || exts["second"].Status != StatusSuccess {
		t.Errorf("statuses after deleting first: %+v", exts)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "config/HandlerState")); string(b) != StateEnabled {
		t.Errorf("HandlerState %q with second still enabled", b)
	}

	// The agent restarts: second is enabled again, nothing reinstalled,
	// first stays deleted.
	h.proc = &Processor{Dirs: h.dirs, Fetch: h.fetcher(), Limits: h.proc.Limits, WireAddress: h.proc.WireAddress}
	n := len(h.calls())
	s, err = h.process(extconf.BlockBlob, mc)
	if err != nil {
		t.Fatal(err)
	}
	wantCalls(t, h.calls()[n:], "enable 1.0 seq=4")
	if exts := s.extensions(t, testHandlerName); len(exts) != 1 || exts["second"].Status != StatusSuccess {
		t.Errorf("statuses after restart: %+v", exts)
	}

	// second leaves the goal state without a word: deleted the same way.
	mc.exts = mc.exts[:1]
	s, _ = h.process(extconf.BlockBlob, mc)
	if c := h.calls(); !strings.HasPrefix(c[len(c)-1], "disable 1.0 seq=4") || !strings.HasSuffix(c[len(c)-1], "ext=second") {
		t.Errorf("calls after second left:\n%s", strings.Join(c, "\n"))
	}
	if _, err := os.Stat(filepath.Join(dir, "config/second.4.settings")); !os.IsNotExist(err) {
		t.Errorf("second's settings left: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "config/HandlerState")); string(b) != StateInstalled {
		t.Errorf("HandlerState %q with no extension enabled, want %s", b, StateInstalled)
	}
	if exts := s.extensions(t, testHandlerName); len(exts) != 0 {
		t.Errorf("deleted extensions still reported: %+v", exts)
	}
	if st, _, seq := s.handler(t, testHandlerName); st != "NotReady" || seq != -1 {
		t.Errorf("handler with every extension deleted: %s seq %d, want NotReady without runtime settings", st, seq)
	}

	// Uninstalling the handler removes it.
	mc.state, mc.exts = "uninstall", []extensiontest.Extension{mcExt("second", 4, "")}
	if _, err := h.process(extconf.BlockBlob, mc); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("handler directory left after uninstall: %v", err)
	}
}

func TestMultiConfigSettingsForSingleConfigHandler(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	s, err := h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled",
		exts: []extensiontest.Extension{mcExt("first", 0, "true")}})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, hs := range s.AggregateStatus.Handlers {
		if hs.HandlerName == testHandlerName {
			found = true
			if hs.Status != "NotReady" || hs.FormattedMessage == nil || !strings.Contains(hs.FormattedMessage.Message, "supportsMultipleExtensions") {
				t.Errorf("handler status: %+v %+v", hs, hs.FormattedMessage)
			}
		}
	}
	if !found {
		t.Fatal("no status for the handler")
	}
	if b, err := os.ReadFile(filepath.Join(h.dirs.Lib, "calls.log")); err == nil {
		t.Errorf("handler commands ran: %s", b)
	}
	if _, err := os.Stat(h.handlerDir("1.0")); !os.IsNotExist(err) {
		t.Errorf("handler left installed: %v", err)
	}
}

// The status document names each extension of a multi-config handler.
func TestMultiConfigStatusDocumentShape(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", multiConfigManifest))
	if _, err := h.process(extconf.PageBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled",
		exts: []extensiontest.Extension{mcExt("only", 7, "echo hi")}}); err != nil {
		t.Fatal(err)
	}
	ups := h.sim.StatusUploads()
	var raw struct {
		AggregateStatus struct {
			HandlerAggregateStatus []map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(ups[len(ups)-1].Doc, &raw); err != nil {
		t.Fatal(err)
	}
	hs := raw.AggregateStatus.HandlerAggregateStatus
	if len(hs) != 1 || !strings.Contains(string(hs[0]["runtimeSettingsStatus"]), `"extensionName":"only"`) ||
		!strings.Contains(string(hs[0]["runtimeSettingsStatus"]), `"sequenceNumber":7`) {
		t.Errorf("handlerAggregateStatus: %s", ups[len(ups)-1].Doc)
	}
}

// An extension name becomes part of file names: one that would leave the
// handler directory fails that extension only.
func TestMultiConfigExtensionNameEscaping(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", multiConfigManifest))
	s, err := h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled",
		exts: []extensiontest.Extension{mcExt("fine", 1, "echo ok"), mcExt("../../escaped", 0, "true")}})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(h.dirs.Lib, "escaped*")); len(m) > 0 {
		t.Errorf("files outside the handler directory: %v", m)
	}
	var bad, fine bool
	for _, hs := range s.AggregateStatus.Handlers {
		rs := hs.RuntimeSettingsStatus
		switch {
		case rs == nil:
		case rs.ExtensionName == "../../escaped":
			bad = hs.Status == "NotReady" && rs.SettingsStatus.Status.Status == StatusError &&
				strings.Contains(rs.SettingsStatus.Status.FormattedMessage.Message, "may name a multi-config extension")
		case rs.ExtensionName == "fine":
			fine = hs.Status == "Ready" && rs.SettingsStatus.Status.Status == StatusSuccess
		}
	}
	if !bad || !fine {
		t.Errorf("escaping extension reported as an error: %v; the other one succeeded: %v\n%+v", bad, fine, s.AggregateStatus.Handlers)
	}
}

// One extension failing leaves its siblings of the same level running; the
// failure is reported on that extension.
func TestMultiConfigExtensionFailsAlone(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", multiConfigManifest))
	s, err := h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled",
		exts: []extensiontest.Extension{mcExt("broken", 2, "echo nope; exit 3"), mcExt("works", 5, "echo fine")}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ExtensionStatus{}
	for _, hs := range s.AggregateStatus.Handlers {
		if rs := hs.RuntimeSettingsStatus; rs != nil {
			got[rs.ExtensionName] = rs.SettingsStatus.Status
			if hs.Status != "Ready" {
				t.Errorf("%s: handler status %s; the handler has an enabled extension", rs.ExtensionName, hs.Status)
			}
		}
	}
	if b := got["broken"]; b.Status != StatusError || b.Code != 3 || b.FormattedMessage.Message != "nope" {
		t.Errorf("broken: %+v", b)
	}
	if w := got["works"]; w.Status != StatusSuccess || w.FormattedMessage.Message != "fine" {
		t.Errorf("works: %+v", w)
	}
	dir := h.handlerDir("1.0")
	if b, _ := os.ReadFile(filepath.Join(dir, "config/works.HandlerState")); string(b) != ExtEnabled {
		t.Errorf("works.HandlerState %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "config/broken.HandlerState")); !os.IsNotExist(err) {
		t.Errorf("a failed enable recorded broken as enabled: %v", err)
	}

	// works deleted, broken failing alone: the handler is not enabled.
	works := mcExt("works", 5, "echo fine")
	works.State = "disabled"
	s, _ = h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled",
		exts: []extensiontest.Extension{mcExt("broken", 2, "echo nope; exit 3"), works}})
	var entries []handlerEntry
	for _, hs := range s.AggregateStatus.Handlers {
		if hs.HandlerName == testHandlerName {
			entries = append(entries, hs)
		}
	}
	if len(entries) != 1 || entries[0].Status != "NotReady" || entries[0].RuntimeSettingsStatus == nil ||
		entries[0].RuntimeSettingsStatus.SettingsStatus.Status.Status != StatusError {
		t.Errorf("statuses with broken alone: %+v", entries)
	}
}

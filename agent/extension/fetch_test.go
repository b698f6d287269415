package extension

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/agent/extconf"
	"github.com/vhdprep/vhdprep/agent/extension/extensiontest"
)

func TestPackageTriesLocationsInOrderAndSkipsInternalVersions(t *testing.T) {
	var seen []string
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.Path)
		switch r.URL.Path {
		case "/good.xml":
			w.Write([]byte(`<PluginVersionManifest><Plugins><Plugin><Version>1.0</Version><Uris><Uri>` + srv.URL + `/bad.zip</Uri><Uri>` + srv.URL + `/1.0.zip</Uri></Uris></Plugin></Plugins>` +
				`<InternalPlugins><Plugin><Version>2.0</Version><Uris><Uri>` + srv.URL + `/2.0.zip</Uri></Uris></Plugin></InternalPlugins></PluginVersionManifest>`))
		case "/1.0.zip":
			w.Write([]byte("package"))
		default:
			http.NotFound(w, r)
		}
	})
	f := &Fetcher{}
	pl := extconf.Plugin{Name: "H", Version: "1.0", Locations: []string{srv.URL + "/missing.xml", srv.URL + "/good.xml", srv.URL + "/never.xml"}}
	b, err := f.Package(context.Background(), pl)
	if err != nil || string(b) != "package" {
		t.Fatalf("Package = %q, %v", b, err)
	}
	if got := strings.Join(seen, " "); got != "/missing.xml /good.xml /bad.zip /1.0.zip" {
		t.Errorf("requests %s", got)
	}
	pl.Version = "2.0"
	if _, err := f.Package(context.Background(), pl); err == nil || !strings.Contains(err.Error(), "version 2.0 is not in the manifest") {
		t.Errorf("internal version chosen: %v", err)
	}
}

func TestPackageSizeBound(t *testing.T) {
	big := strings.Repeat("x", maxManifestDocSize+1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(big)) }))
	defer srv.Close()
	if _, err := (&Fetcher{}).Get(context.Background(), srv.URL+"/m.xml?sig=secret", maxManifestDocSize); err == nil ||
		!strings.Contains(err.Error(), "more than") || strings.Contains(err.Error(), "secret") {
		t.Errorf("oversized download: %v", err)
	}
}

func TestHeartbeat(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", extensiontest.CustomScript(t, testHandlerName, `,"reportHeartbeat":true`))
	cs := plugin{name: testHandlerName, version: "1.0", state: "enabled", command: "true"}
	if s, _ := h.process(extconf.BlockBlob, cs); s.AggregateStatus.Handlers[0].Status != "Unresponsive" {
		t.Errorf("no heartbeat yet: %s, want Unresponsive", s.AggregateStatus.Handlers[0].Status)
	}
	cs.seq, cs.script = 1, `printf '[{"version":1.0,"heartbeat":{"status":"notready","code":0,"formattedMessage":{"lang":"en-US","message":"warming up"}}}]' > heartbeat.log`
	s, _ := h.process(extconf.BlockBlob, cs)
	if hs := s.AggregateStatus.Handlers[0]; hs.Status != "NotReady" || hs.FormattedMessage == nil || hs.FormattedMessage.Message != "warming up" {
		t.Errorf("heartbeat status: %+v", hs)
	}
}

// A package that answers 503 (with Retry-After) directly and through the
// HostGAPlugin is downloaded on the next round, after the pause it asked for.
func TestDownloadRetriesBothChannels(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	var answered atomic.Int32
	pkg := testHandlerZip(t, "1.0", "")
	h.sim.Handle("/packages/"+testHandlerName+"-1.0.zip", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if answered.Add(1) <= 3 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write(pkg)
	}))
	start := time.Now()
	s, err := h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled", command: "echo ok"})
	if err != nil {
		t.Fatal(err)
	}
	if st, ext, _ := s.handler(t, testHandlerName); st != "Ready" || ext.Status != StatusSuccess {
		t.Fatalf("after a busy round: %s %+v", st, ext)
	}
	if n := answered.Load(); n != 4 {
		t.Errorf("%d package requests, want 4 (direct and HostGAPlugin busy; after the pause direct busy, HostGAPlugin served)", n)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("retried after %s: Retry-After asked for 1 s", took)
	}
}

// A package that is missing answers at once: retrying a 404 cannot help.
func TestDownloadDoesNotRetryWhatCannotPass(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	var answered atomic.Int32
	h.sim.Handle("/packages/"+testHandlerName+"-1.0.zip", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answered.Add(1)
		http.NotFound(w, r)
	}))
	s, _ := h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled", command: "echo ok"})
	if st, _, _ := s.handler(t, testHandlerName); st != "NotReady" {
		t.Errorf("a missing package: handler %s", st)
	}
	if n := answered.Load(); n != 2 {
		t.Errorf("%d requests for a missing package, want 2 (direct, HostGAPlugin)", n)
	}
}

// The VM moved to another container after the agent read its goal state:
// the HostGAPlugin answers 400 InvalidContainerConfiguration, the agent
// fetches the goal state again and the download goes through.
func TestDownloadRefreshesAStaleGoalState(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	if _, err := h.wire.GoalState(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.sim.SetContainerID("0e6bd3a1-4b1f-4f6e-9d0c-2a7f6c5e8b90")
	h.sim.Fail(1, http.StatusNotFound, "/packages/") // only the HostGAPlugin can serve it
	s, err := h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled", command: "echo ok"})
	if err != nil {
		t.Fatal(err)
	}
	if st, ext, _ := s.handler(t, testHandlerName); st != "Ready" || ext.Status != StatusSuccess {
		t.Fatalf("after a container change: %s %+v", st, ext)
	}
	if g := h.wire.Current(); g == nil || g.ContainerID != h.sim.ContainerID() {
		t.Errorf("the goal state was not fetched again: %+v", g)
	}
}

// A HostGAPlugin that answers 410 Gone says the goal state the request was
// built from is stale: the agent fetches it again and retries once.
func TestDownloadRefreshesTheGoalStateOnGone(t *testing.T) {
	h := newHarness(t)
	h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
	pkg := testHandlerZip(t, "1.0", "")
	var viaPlugin atomic.Int32
	h.sim.Handle("/packages/"+testHandlerName+"-1.0.zip", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("x-ms-artifact-location") == "" {
			http.NotFound(w, r) // only the HostGAPlugin can serve it
			return
		}
		if viaPlugin.Add(1) == 1 {
			http.Error(w, "gone", http.StatusGone)
			return
		}
		w.Write(pkg)
	}))
	goalStates := func() (n int) {
		for _, r := range h.sim.Requests() {
			if strings.Contains(r.Path, "comp=goalstate") {
				n++
			}
		}
		return n
	}
	if _, err := h.wire.GoalState(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := goalStates()
	s, err := h.process(extconf.BlockBlob, plugin{name: testHandlerName, version: "1.0", state: "enabled", command: "echo ok"})
	if err != nil {
		t.Fatal(err)
	}
	if st, ext, _ := s.handler(t, testHandlerName); st != "Ready" || ext.Status != StatusSuccess {
		t.Fatalf("after a 410 from the HostGAPlugin: %s %+v", st, ext)
	}
	if n := viaPlugin.Load(); n != 2 {
		t.Errorf("%d HostGAPlugin requests for the package, want 2 (410, then served after the refresh)", n)
	}
	if goalStates() <= before {
		t.Errorf("the goal state was not fetched again after the 410")
	}
}

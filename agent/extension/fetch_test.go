package extension

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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

package extension

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/agent/extconf"
	"github.com/vhdprep/vhdprep/agent/extension/extensiontest"
	"github.com/vhdprep/vhdprep/agent/wire"
	"github.com/vhdprep/vhdprep/internal/wiresim"
)

// testHandlerName is the extensiontest.CustomScript handler the scenarios run.
const testHandlerName = "Vhdprep.Test.CustomScript"

func testHandlerZip(t testing.TB, version, manifestExtra string) []byte {
	return extensiontest.CustomScript(t, testHandlerName, manifestExtra)
}

// harness is a wire server with a HostGAPlugin and status blob, a wire
// client of it and a Processor on a temporary root.
type harness struct {
	t        *testing.T
	sim      *wiresim.Server
	wire     *wire.Client
	proc     *Processor
	dirs     Dirs
	versions map[string]map[string]string // handler -> version -> package URL
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	sim := wiresim.New()
	t.Cleanup(sim.Close)
	_, port, _ := net.SplitHostPort(sim.HostPluginEndpoint())
	p, _ := strconv.Atoi(port)
	client := wire.New(sim.Endpoint(), wire.Options{Retry: wire.Retry{Initial: time.Millisecond, Max: 2 * time.Millisecond, Attempts: 2}, HostPluginPort: p})
	root := t.TempDir()
	h := &harness{t: t, sim: sim, wire: client, versions: map[string]map[string]string{},
		dirs: Dirs{Lib: filepath.Join(root, "var/lib/waagent"), Log: filepath.Join(root, "var/log/azure")}}
	h.proc = &Processor{Dirs: h.dirs, WireAddress: sim.Endpoint(), Limits: Limits{Enable: 20 * time.Second, Other: 20 * time.Second},
		DependencyWait: 5 * time.Second, Fetch: h.fetcher()}
	return h
}

func (h *harness) fetcher() *Fetcher {
	return &Fetcher{ViaHostPlugin: func(ctx context.Context, url string) (*http.Request, error) {
		g := h.wire.Current()
		if g == nil {
			var err error
			if g, err = h.wire.GoalState(ctx); err != nil {
				return nil, err
			}
		}
		return h.wire.ArtifactRequest(ctx, g, url)
	}, Refresh: func(ctx context.Context) error {
		_, err := h.wire.GoalState(ctx)
		return err
	}, Delay: 10 * time.Millisecond}
}

// serve publishes a handler version: its zip and a manifest listing every version served.
func (h *harness) serve(name, version string, pkg []byte) {
	h.sim.Handle("/packages/"+name+"-"+version+".zip", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pkg) }))
	if h.versions[name] == nil {
		h.versions[name] = map[string]string{}
	}
	h.versions[name][version] = h.sim.URL() + "/packages/" + name + "-" + version + ".zip?sv=x&sig=secret"
	doc := extensiontest.Manifest(h.versions[name])
	h.sim.Handle("/manifests/"+name+".xml", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(doc)) }))
}

// plugin is one handler of a test ExtensionsConfig.
type plugin struct {
	name, version, state string
	seq, level           int
	command              string
	script               string // sent base64-encoded as Custom Script's "script", for commands with quotes
	// exts make it a multi-config handler with these extensions.
	exts []extensiontest.Extension
}

func (h *harness) extensionsConfig(blobType string, plugins ...plugin) string {
	var ps []extensiontest.Plugin
	for _, p := range plugins {
		ps = append(ps, extensiontest.Plugin{Name: p.name, Version: p.version, State: p.state, SeqNo: p.seq, Level: p.level,
			ManifestURL: h.sim.URL() + "/manifests/" + p.name + ".xml", HandlerSettings: map[string]any{"publicSettings": publicSettings(p)},
			Extensions: p.exts})
	}
	return extensiontest.ExtensionsConfig(h.sim.StatusBlobURL(), blobType, ps...)
}

// process runs the handlers of an ExtensionsConfig, then uploads the status
// document the way the daemon does and returns it as the blob holds it.
func (h *harness) process(blobType string, plugins ...plugin) (statusDoc, error) {
	h.t.Helper()
	cfg, err := extconf.Parse([]byte(h.extensionsConfig(blobType, plugins...)))
	if err != nil {
		h.t.Fatal(err)
	}
	perr := h.proc.Process(context.Background(), cfg)
	return h.upload(cfg), perr
}

func (h *harness) upload(cfg *extconf.Config) statusDoc {
	h.t.Helper()
	doc := h.proc.StatusDocument(Agent{Name: "vhdprep-agent", Version: "1.0", Status: "Ready", Message: "Guest Agent is running"}, time.Now())
	if err := h.wire.UploadStatus(context.Background(), cfg.StatusUploadBlob, cfg.StatusBlobType, doc); err != nil {
		h.t.Fatal(err)
	}
	ups := h.sim.StatusUploads()
	last := ups[len(ups)-1]
	if last.BlobType != cfg.StatusBlobType {
		h.t.Errorf("status uploaded as %s, want %s", last.BlobType, cfg.StatusBlobType)
	}
	var s statusDoc
	if err := json.Unmarshal(last.Doc, &s); err != nil {
		h.t.Fatalf("uploaded status is not JSON: %v\n%s", err, last.Doc)
	}
	return s
}

// statusDoc is the uploaded document as a reader of the blob sees it.
type statusDoc struct {
	Version         string `json:"version"`
	AggregateStatus struct {
		GuestAgentStatus struct{ Status, Version string }
		Handlers         []handlerEntry `json:"handlerAggregateStatus"`
	}
	GuestOSInfo       map[string]string `json:"guestOSInfo"`
	SupportedFeatures []map[string]string
}

// handlerEntry is one handler status of the uploaded document.
type handlerEntry struct {
	HandlerName, HandlerVersion, Status string
	Code                                int
	FormattedMessage                    *Message
	RuntimeSettingsStatus               *struct {
		SequenceNumber int
		ExtensionName  string
		SettingsStatus struct{ Status ExtensionStatus }
	}
}

func (s statusDoc) handler(t *testing.T, name string) (status string, ext ExtensionStatus, seq int) {
	t.Helper()
	for _, h := range s.AggregateStatus.Handlers {
		if h.HandlerName == name {
			if h.RuntimeSettingsStatus == nil {
				return h.Status, ExtensionStatus{}, -1
			}
			return h.Status, h.RuntimeSettingsStatus.SettingsStatus.Status, h.RuntimeSettingsStatus.SequenceNumber
		}
	}
	t.Fatalf("no status for %s in %+v", name, s.AggregateStatus.Handlers)
	return
}

func (h *harness) calls() []string {
	b, _ := os.ReadFile(filepath.Join(h.dirs.Lib, "calls.log"))
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func (h *harness) handlerDir(version string) string {
	return filepath.Join(h.dirs.Lib, testHandlerName+"-"+version)
}

func wantCalls(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("call %d: %q, want prefix %q\nall:\n%s", i, got[i], want[i], strings.Join(got, "\n"))
		}
	}
}

func publicSettings(p plugin) map[string]string {
	s := map[string]string{"commandToExecute": p.command}
	if p.script != "" {
		s["script"] = extensiontest.Script(p.script)
	}
	return s
}

package wire

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vhdprep/vhdprep/agent/internal/fixtures"
	"github.com/vhdprep/vhdprep/internal/wiresim"
)

var fastRetry = Retry{Initial: time.Millisecond, Max: 5 * time.Millisecond, Attempts: 5}

func newClient(s *wiresim.Server) *Client {
	return New(s.Endpoint(), Options{Retry: fastRetry})
}

func TestGoalStateAndDocuments(t *testing.T) {
	s := wiresim.New()
	defer s.Close()
	c := newClient(s)
	ctx := context.Background()
	if _, err := c.CheckVersion(ctx); err != nil {
		t.Fatal(err)
	}
	g, err := c.GoalState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g.Incarnation != "1" || g.ContainerID != s.ContainerID() || g.InstanceID != s.InstanceID() || g.RoleConfigName == "" {
		t.Errorf("goal state %+v", g)
	}
	h, err := c.HostingEnv(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if h.VMName != "vhdprep-test" || h.Incarnation != "1" {
		t.Errorf("hosting env %+v", h)
	}
	sc, doc, err := c.SharedConfig(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Instances) != 1 || sc.Instances[0].Address != "10.0.0.4" || !strings.Contains(string(doc), "<SharedConfig") {
		t.Errorf("shared config %+v", sc)
	}
	for _, r := range s.Requests() {
		if strings.HasPrefix(r.Path, "/machine") && (r.Header.Get("x-ms-version") != ProtocolVersion || r.Header.Get("x-ms-agent-name") != DefaultAgentName) {
			t.Errorf("%s sent without the protocol headers: %v", r.Path, r.Header)
		}
	}

	// A document of an old incarnation is gone.
	s.SetIncarnation(2)
	if _, err := c.HostingEnv(ctx, g); !errors.Is(err, ErrGone) {
		t.Errorf("stale document: err = %v, want ErrGone", err)
	}
}

func TestReportHealth(t *testing.T) {
	s := wiresim.New()
	defer s.Close()
	c := newClient(s)
	ctx := context.Background()
	desc := "step <useradd> failed & " + strings.Repeat("é", 5000)
	if err := c.ReportHealth(ctx, Health{State: NotReady, SubStatus: ProvisioningFailed, Description: desc}); err != nil {
		t.Fatal(err)
	}
	if err := c.ReportHealth(ctx, Health{State: Ready}); err != nil {
		t.Fatal(err)
	}
	h := s.Health()
	if len(h) != 2 {
		t.Fatalf("server accepted %d reports, want 2", len(h))
	}
	if h[0].State != "NotReady" || h[0].SubStatus != "ProvisioningFailed" || h[0].Incarnation != "1" {
		t.Errorf("first report %+v", h[0])
	}
	if !strings.HasPrefix(h[0].Description, "step <useradd> failed & éé") || len(h[0].Description) >= len(desc) {
		t.Errorf("description not escaped and trimmed: %.60q (%d bytes)", h[0].Description, len(h[0].Description))
	}
	if h[1].State != "Ready" || h[1].SubStatus != "" {
		t.Errorf("second report %+v", h[1])
	}
	if err := c.ReportHealth(ctx, Health{State: Ready, SubStatus: Provisioning}); !errors.Is(err, ErrInvalidReport) {
		t.Errorf("Ready with a sub-status: err = %v", err)
	}
}

// The incarnation changes between the goal state fetch and the report: the
// server answers 410 and the client reports against the new incarnation.
func TestReportHealthAfterIncarnationChange(t *testing.T) {
	s := wiresim.New()
	defer s.Close()
	c := newClient(s)
	ctx := context.Background()
	if _, err := c.GoalState(ctx); err != nil {
		t.Fatal(err)
	}
	s.SetIncarnation(7)
	if err := c.ReportHealth(ctx, Health{State: Ready}); err != nil {
		t.Fatal(err)
	}
	h := s.Health()
	if len(h) != 1 || h[0].Incarnation != "7" {
		t.Fatalf("reports %+v, want one for incarnation 7", h)
	}
	var gone bool
	for _, r := range s.Requests() {
		gone = gone || (r.Status == http.StatusGone && strings.Contains(r.Path, "comp=health"))
	}
	if !gone {
		t.Error("the first report was not answered 410")
	}
}

func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
	}{{"503", 503}, {"429", 429}, {"500", 500}, {"502", 502}, {"504", 504}, {"dropped connection", wiresim.Drop}} {
		t.Run(tc.name, func(t *testing.T) {
			s := wiresim.New()
			defer s.Close()
			s.Fail(2, tc.status, "/machine")
			g, err := newClient(s).GoalState(context.Background())
			if err != nil {
				t.Fatalf("after 2 failures: %v", err)
			}
			if g.Incarnation != "1" || len(s.Requests()) != 3 {
				t.Errorf("incarnation %s after %d requests, want 1 after 3", g.Incarnation, len(s.Requests()))
			}
		})
	}

	t.Run("not retried", func(t *testing.T) {
		s := wiresim.New()
		defer s.Close()
		s.Fail(1, http.StatusNotFound, "")
		_, err := newClient(s).GoalState(context.Background())
		var se *StatusError
		if !errors.As(err, &se) || se.Code != 404 || len(s.Requests()) != 1 {
			t.Errorf("404: err = %v after %d requests, want a StatusError after 1", err, len(s.Requests()))
		}
	})

	t.Run("attempts exhausted", func(t *testing.T) {
		s := wiresim.New()
		defer s.Close()
		s.Fail(100, http.StatusServiceUnavailable, "")
		_, err := newClient(s).GoalState(context.Background())
		var se *StatusError
		if !errors.As(err, &se) || se.Code != 503 || len(s.Requests()) != fastRetry.Attempts {
			t.Errorf("err = %v after %d requests, want 503 after %d", err, len(s.Requests()), fastRetry.Attempts)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		s := wiresim.New()
		defer s.Close()
		s.Fail(1000, http.StatusServiceUnavailable, "")
		c := New(s.Endpoint(), Options{Retry: Retry{Initial: 20 * time.Millisecond, Max: 20 * time.Millisecond, Attempts: 1000}})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := c.GoalState(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "503") {
			t.Errorf("err = %v, want the deadline with the last error", err)
		}
	})
}

func TestGoalStateWithoutRoleInstance(t *testing.T) {
	var n atomic.Int32
	s := wiresim.New()
	defer s.Close()
	noop := `<GoalState><Incarnation>1</Incarnation><Container><ContainerId>x</ContainerId></Container></GoalState>`
	s.Handle("/machine/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			w.Write([]byte(noop))
			return
		}
		w.Write([]byte(s.GoalStateXML()))
	}))
	c := New(s.Endpoint(), Options{Retry: fastRetry})
	g, err := c.GoalState(context.Background())
	if err != nil || !g.HasRoleInstance() || n.Load() != 3 {
		t.Errorf("GoalState = %+v, %v after %d fetches; want a role instance after 3", g, err, n.Load())
	}
}

func TestMarshalHealth(t *testing.T) {
	g := &GoalState{Incarnation: "3", ContainerID: "c&1", InstanceID: "i<1>"}
	b, err := MarshalHealth(g, Health{State: NotReady, SubStatus: Provisioning, Description: "a\x00b"})
	if err != nil {
		t.Fatal(err)
	}
	want := `<?xml version="1.0" encoding="utf-8"?><Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">` +
		`<GoalStateIncarnation>3</GoalStateIncarnation><Container><ContainerId>c&amp;1</ContainerId><RoleInstanceList><Role><InstanceId>i&lt;1&gt;</InstanceId>` +
		`<Health><State>NotReady</State><Details><SubStatus>Provisioning</SubStatus><Description>a` + "\uFFFD" + `b</Description></Details></Health></Role></RoleInstanceList></Container></Health>`
	if string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
	if _, err := wiresim.ValidateHealth(b); err != nil {
		t.Errorf("simulator rejects it: %v", err)
	}
	if _, err := MarshalHealth(&GoalState{Incarnation: "1", ContainerID: "c"}, Health{State: Ready}); !errors.Is(err, ErrInvalidReport) {
		t.Errorf("no role instance: err = %v", err)
	}
}

func TestTrimDescription(t *testing.T) {
	for _, s := range []string{"", "short", strings.Repeat("&", 2000), strings.Repeat("日本", 1000), strings.Repeat("x", 10000)} {
		b := TrimDescription(s)
		if len(b) > MaxDescriptionBytes || !utf8.Valid(b) {
			t.Errorf("TrimDescription(%.10q...) = %d bytes, valid UTF-8 %v", s, len(b), utf8.Valid(b))
		}
		if len(s) < 100 && s != "" && string(b) != s {
			t.Errorf("TrimDescription(%q) = %q", s, b)
		}
	}
	if got := len(TrimDescription(strings.Repeat("&", 2000))); got != 4095 {
		t.Errorf("819 escaped ampersands expected (4095 bytes), got %d bytes", got)
	}
}

func FuzzParseGoalState(f *testing.F) {
	s := wiresim.New()
	f.Add([]byte(s.GoalStateXML()))
	s.Close()
	for _, b := range fixtures.Seeds("wire/goal_state.xml", "wire/goal_state_noop.xml", "wire/hosting_env.xml", "wire/shared_config.xml", "wire/version_info.xml") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if g, err := ParseGoalState(doc); err == nil {
			if g.Incarnation == "" || g.ContainerID == "" {
				t.Fatalf("accepted a goal state without incarnation or container: %+v", g)
			}
			if g.HasRoleInstance() {
				b, err := MarshalHealth(g, Health{State: NotReady, SubStatus: ProvisioningFailed, Description: string(doc)})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := wiresim.ValidateHealth(b); err != nil {
					t.Fatalf("health report for a parsed goal state is rejected: %v\n%s", err, b)
				}
			}
		}
		ParseHostingEnv(doc)
		ParseSharedConfig(doc)
		ParseVersions(doc)
	})
}

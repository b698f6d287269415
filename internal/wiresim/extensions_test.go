package wiresim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func do(t *testing.T, method, url string, h map[string]string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var blobHeaders = map[string]string{"x-ms-version": "2014-02-14", "x-ms-date": "Mon, 23 Nov 2026 05:00:00 GMT"}

func with(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestStatusBlobIsStrict(t *testing.T) {
	s := New()
	defer s.Close()
	u := s.StatusBlobURL()
	page := strings.Replace(u, "?", "?comp=page&", 1)
	for name, tc := range map[string]struct {
		method, url string
		h           map[string]string
		body        []byte
	}{
		"GET":                 {"GET", u, with(blobHeaders, "x-ms-blob-type", "BlockBlob"), nil},
		"no SAS":              {"PUT", strings.Split(u, "?")[0], with(blobHeaders, "x-ms-blob-type", "BlockBlob"), nil},
		"no version":          {"PUT", u, map[string]string{"x-ms-blob-type": "BlockBlob", "x-ms-date": "x"}, nil},
		"no blob type":        {"PUT", u, blobHeaders, []byte("{}")},
		"page size not 512":   {"PUT", u, with(blobHeaders, "x-ms-blob-type", "PageBlob", "x-ms-blob-content-length", "1000"), nil},
		"page before create":  {"PUT", page, with(blobHeaders, "x-ms-page-write", "update", "x-ms-range", "bytes=0-511"), make([]byte, 512)},
		"page create w/ body": {"PUT", u, with(blobHeaders, "x-ms-blob-type", "PageBlob", "x-ms-blob-content-length", "512"), []byte("x")},
	} {
		if code, msg := do(t, tc.method, tc.url, tc.h, tc.body); code < 400 {
			t.Errorf("%s: %d %s, want a refusal", name, code, msg)
		}
	}
	if code, msg := do(t, "PUT", u, with(blobHeaders, "x-ms-blob-type", "PageBlob", "x-ms-blob-content-length", "1024"), nil); code != 201 {
		t.Fatalf("create: %d %s", code, msg)
	}
	for name, tc := range map[string]struct {
		h    map[string]string
		body []byte
	}{
		"unaligned":    {with(blobHeaders, "x-ms-page-write", "update", "x-ms-range", "bytes=1-512"), make([]byte, 512)},
		"short body":   {with(blobHeaders, "x-ms-page-write", "update", "x-ms-range", "bytes=0-511"), make([]byte, 100)},
		"past the end": {with(blobHeaders, "x-ms-page-write", "update", "x-ms-range", "bytes=1024-1535"), make([]byte, 512)},
		"clear":        {with(blobHeaders, "x-ms-page-write", "clear", "x-ms-range", "bytes=0-511"), make([]byte, 512)},
	} {
		if code, msg := do(t, "PUT", page, tc.h, tc.body); code < 400 {
			t.Errorf("%s: %d %s, want a refusal", name, code, msg)
		}
	}
	doc := append([]byte(`{"ok":1}`), make([]byte, 1024-8)...)
	if code, msg := do(t, "PUT", page, with(blobHeaders, "x-ms-page-write", "update", "x-ms-range", "bytes=0-1023"), doc); code != 201 {
		t.Fatalf("page: %d %s", code, msg)
	}
	if st := s.Statuses(); len(st) != 1 || string(st[0]) != `{"ok":1}` {
		t.Errorf("statuses %q", st)
	}
}

func TestHostPlugin(t *testing.T) {
	s := New()
	defer s.Close()
	s.Handle("/packages/h.zip", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "zip of "+r.URL.Path) }))
	s.Fail(1, 404, "/packages/") // the direct download fails; the HostGAPlugin still serves it
	if code, _ := do(t, "GET", s.URL()+"/packages/h.zip", nil, nil); code != 404 {
		t.Fatalf("direct: %d", code)
	}
	hp := map[string]string{"x-ms-version": HostPluginAPIVersion, "x-ms-containerid": s.ContainerID(), "x-ms-host-config-name": "c.1.xml"}
	art := with(hp, "x-ms-artifact-location", s.URL()+"/packages/h.zip")
	if code, body := do(t, "GET", s.HostPluginURL()+"/extensionArtifact", art, nil); code != 200 || body != "zip of /packages/h.zip" {
		t.Fatalf("extensionArtifact: %d %q", code, body)
	}
	for name, h := range map[string]map[string]string{
		"no version":       with(art, "x-ms-version", ""),
		"other container":  with(art, "x-ms-containerid", "x"),
		"no config name":   with(art, "x-ms-host-config-name", ""),
		"unknown artifact": with(art, "x-ms-artifact-location", s.URL()+"/nothing"),
		"location not URL": with(art, "x-ms-artifact-location", "nothing"),
	} {
		if code, _ := do(t, "GET", s.HostPluginURL()+"/extensionArtifact", h, nil); code < 400 {
			t.Errorf("%s: %d", name, code)
		}
	}
	reqs := s.Requests()
	if last := reqs[len(reqs)-1]; !last.HostPlugin {
		t.Error("HostGAPlugin request not marked")
	}

	// /status relays a block blob upload.
	content := base64.StdEncoding.EncodeToString([]byte(`{"via":"hgap"}`))
	body, _ := json.Marshal(map[string]any{"requestUri": s.StatusBlobURL(), "content": content, "headers": []map[string]string{
		{"headerName": "x-ms-version", "headerValue": "2014-02-14"}, {"headerName": "x-ms-date", "headerValue": "d"},
		{"headerName": "x-ms-blob-type", "headerValue": "BlockBlob"}, {"headerName": "Content-Length", "headerValue": "14"}}})
	js := with(hp, "Content-Type", "application/json")
	if code, msg := do(t, "PUT", s.HostPluginURL()+"/status", js, body); code != 201 {
		t.Fatalf("status: %d %s", code, msg)
	}
	if u := s.StatusUploads(); len(u) != 1 || !u[0].HostPlugin || string(u[0].Doc) != `{"via":"hgap"}` {
		t.Errorf("uploads %+v", u)
	}
	if code, _ := do(t, "PUT", s.HostPluginURL()+"/status", js, []byte(`{"requestUri":"http://elsewhere/x","headers":[]}`)); code != 400 {
		t.Errorf("relay to another blob: %d", code)
	}
}

func TestNewAtWithHostPlugin(t *testing.T) {
	s, err := NewAtWithHostPlugin("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.HostPluginEndpoint() == s.Endpoint() || !strings.HasPrefix(s.HostPluginEndpoint(), "127.0.0.1:") {
		t.Errorf("endpoints %s %s", s.Endpoint(), s.HostPluginEndpoint())
	}
	if code, body := do(t, "GET", s.HostPluginURL()+"/versions", nil, nil); code != 200 || !strings.Contains(body, HostPluginAPIVersion) {
		t.Errorf("versions: %d %s", code, body)
	}
}

func TestAdvertisedURL(t *testing.T) {
	s := New()
	defer s.Close()
	s.SetDocument("extensionsConfig", "<Extensions/>")
	s.SetAdvertisedURL("http://168.63.129.16/")
	if !strings.Contains(s.GoalStateXML(), "<ExtensionsConfig>http://168.63.129.16/machine/") {
		t.Errorf("goal state links:\n%s", s.GoalStateXML())
	}
	if !strings.HasPrefix(s.StatusBlobURL(), "http://168.63.129.16/blobs/") {
		t.Errorf("status blob %s", s.StatusBlobURL())
	}
}

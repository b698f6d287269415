package wire

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/wiresim"
)

func newStatusClient(t *testing.T, s *wiresim.Server) *Client {
	t.Helper()
	_, port, _ := net.SplitHostPort(s.HostPluginEndpoint())
	p, _ := strconv.Atoi(port)
	return New(s.Endpoint(), Options{Retry: fastRetry, HostPluginPort: p})
}

func TestHostPluginDefaultsToWireServerHost(t *testing.T) {
	if got := New(DefaultEndpoint, Options{}).HostPlugin(); got != "168.63.129.16:32526" {
		t.Errorf("HostPlugin() = %q", got)
	}
	if got := New("10.1.2.3:8080", Options{HostPluginPort: 9}).HostPlugin(); got != "10.1.2.3:9" {
		t.Errorf("HostPlugin() = %q", got)
	}
}

func TestUploadStatusBlockBlob(t *testing.T) {
	s := wiresim.New()
	defer s.Close()
	c := newStatusClient(t, s)
	doc := []byte(`{"version":"1.1","aggregateStatus":{}}`)
	if err := c.UploadStatus(context.Background(), s.StatusBlobURL(), BlockBlob, doc); err != nil {
		t.Fatal(err)
	}
	ups := s.StatusUploads()
	if len(ups) != 1 || ups[0].BlobType != BlockBlob || ups[0].HostPlugin || !bytes.Equal(ups[0].Doc, doc) {
		t.Fatalf("uploads %+v", ups)
	}
}

func TestUploadStatusPageBlobInPages(t *testing.T) {
	s := wiresim.New()
	defer s.Close()
	c := newStatusClient(t, s)
	// Over 4 MiB: two Put Page writes, the last one zero-padded.
	doc := bytes.Repeat([]byte("x"), MaxPageWrite+1000)
	if err := c.UploadStatus(context.Background(), s.StatusBlobURL(), PageBlob, doc); err != nil {
		t.Fatal(err)
	}
	ups := s.StatusUploads()
	if len(ups) != 1 || ups[0].BlobType != PageBlob || !bytes.Equal(ups[0].Doc, doc) {
		t.Fatalf("%d uploads; first %d bytes", len(ups), len(ups[0].Doc))
	}
	var pages int
	for _, r := range s.Requests() {
		if strings.Contains(r.Path, "comp=page") {
			pages++
		}
	}
	if pages != 2 {
		t.Errorf("%d Put Page requests, want 2", pages)
	}
	// A shorter status later: the create clears what the longer one left.
	short := []byte(`{"short":true}`)
	if err := c.UploadStatus(context.Background(), s.StatusBlobURL(), PageBlob, short); err != nil {
		t.Fatal(err)
	}
	if got := s.Statuses(); !bytes.Equal(got[len(got)-1], short) {
		t.Errorf("latest status %q", got[len(got)-1])
	}
}

func TestUploadStatusFallsBackToHostPlugin(t *testing.T) {
	for _, typ := range []string{BlockBlob, PageBlob} {
		t.Run(typ, func(t *testing.T) {
			s := wiresim.New()
			defer s.Close()
			c := newStatusClient(t, s)
			if _, err := c.GoalState(context.Background()); err != nil {
				t.Fatal(err)
			}
			s.Fail(1, 403, "/blobs/")
			doc := []byte(`{"via":"hostplugin"}`)
			if err := c.UploadStatus(context.Background(), s.StatusBlobURL(), typ, doc); err != nil {
				t.Fatal(err)
			}
			ups := s.StatusUploads()
			if len(ups) != 1 || !ups[0].HostPlugin || ups[0].BlobType != typ || !bytes.Equal(ups[0].Doc, doc) {
				t.Fatalf("uploads %+v", ups)
			}
		})
	}
}

func TestUploadStatusErrorHidesSAS(t *testing.T) {
	s := wiresim.New()
	defer s.Close()
	c := New(s.Endpoint(), Options{Retry: Retry{Initial: 1, Max: 1, Attempts: 1}, HostPluginPort: 1})
	s.Fail(1, 403, "/blobs/")
	err := c.UploadStatus(context.Background(), s.StatusBlobURL(), BlockBlob, []byte("{}"))
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "sig=") {
		t.Errorf("error shows the SAS: %v", err)
	}
	if err := c.UploadStatus(context.Background(), "", BlockBlob, nil); err != ErrNoStatusBlob {
		t.Errorf("no blob: %v", err)
	}
}

func TestCertificatesRequestHeaders(t *testing.T) {
	s := wiresim.New()
	defer s.Close()
	s.SetDocument("certificates", "<CertificateFile/>")
	s.SetDocument("extensionsConfig", "<Extensions/>")
	c := newClient(s)
	g, err := c.GoalState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if doc, err := c.ExtensionsConfig(context.Background(), g); err != nil || string(doc) != "<Extensions/>" {
		t.Fatalf("ExtensionsConfig: %q, %v", doc, err)
	}
	der := []byte("not really a certificate")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if _, err := c.Certificates(context.Background(), g, certPEM); err != nil {
		t.Fatal(err)
	}
	reqs := s.Requests()
	last := reqs[len(reqs)-1]
	if got := last.Header.Get("x-ms-guest-agent-public-x509-cert"); got != base64.StdEncoding.EncodeToString(der) {
		t.Errorf("cert header %q", got)
	}
	if got := last.Header.Get("x-ms-cipher-name"); got != "AES128_CBC" {
		t.Errorf("cipher %q", got)
	}
	// A wire server that refuses AES gets the legacy cipher.
	s.Fail(1, 400, "/machine/")
	if _, err := c.Certificates(context.Background(), g, certPEM); err != nil {
		t.Fatal(err)
	}
	reqs = s.Requests()
	if got := reqs[len(reqs)-1].Header.Get("x-ms-cipher-name"); got != "DES_EDE3_CBC" {
		t.Errorf("fallback cipher %q", got)
	}
}

func TestArtifactRequestThroughHostPlugin(t *testing.T) {
	s := wiresim.New()
	defer s.Close()
	s.Handle("/packages/h.zip", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "zip") }))
	c := newStatusClient(t, s)
	g, err := c.GoalState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	req, err := c.ArtifactRequest(context.Background(), g, s.URL()+"/packages/h.zip")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "zip" {
		t.Errorf("%d %q", resp.StatusCode, b)
	}
}

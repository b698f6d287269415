// Package wiresim is an in-process Azure wire server for tests. It speaks
// the protocol strictly (headers checked, health reports validated against
// the current goal state, stale documents answered 410), records every
// request, and can be told to fail: answer a status or drop the connection
// for the next N requests, or move to a new incarnation mid-run. Beside it
// runs a HostGAPlugin (artifacts and status relayed), a status blob that
// validates block and page blob uploads as the Blob service does, and a
// Certificates document encrypted to each request's transport certificate.
package wiresim

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// ProtocolVersion is the x-ms-version every /machine request must carry.
const ProtocolVersion = "2012-11-30"

// maxDescriptionBytes is the wire server's limit on a health description.
const maxDescriptionBytes = 4096

// Request is one request the server received.
type Request struct {
	Method string
	Path   string // path and query
	Header http.Header
	Body   []byte
	Status int // the status answered; 0 when the connection was dropped
	// HostPlugin marks a request to the HostGAPlugin listener.
	HostPlugin bool
}

// HealthReport is one accepted health report.
type HealthReport struct {
	Incarnation string
	ContainerID string
	InstanceID  string
	State       string
	SubStatus   string
	Description string
}

// Drop, as a Fail status, closes the connection without an answer.
const Drop = -1

// Server is the simulated wire server. Create it with New; Close it.
type Server struct {
	srv *httptest.Server
	hp  *httptest.Server // the HostGAPlugin

	mu          sync.Mutex
	incarnation int
	containerID string
	instanceID  string
	docs        map[string]string // extra goal-state documents by type
	handlers    map[string]http.Handler
	failStatus  int
	failCount   int
	failPath    string
	requests    []Request
	health      []HealthReport
	onRequest   func(Request)
	blob        statusBlob
	pfx         []byte // SetCertificatesPFX
	advertised  string // SetAdvertisedURL
}

// New starts a server at incarnation 1 with a fixed container and role
// instance, on a free local port.
func New() *Server {
	s := newServer()
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.hp = httptest.NewServer(http.HandlerFunc(s.serveHostPlugin))
	return s
}

// NewAt starts a server like New listening on addr, such as
// "127.0.0.1:80", where a real agent process finds it through a DHCP lease
// (the wire server's port is always 80); its HostGAPlugin listens on a
// free port of the same host.
func NewAt(addr string) (*Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	return NewAtWithHostPlugin(addr, net.JoinHostPort(host, "0"))
}

// NewAtWithHostPlugin starts a server like NewAt with its HostGAPlugin
// listening on hostPluginAddr, such as "127.0.0.1:32526".
func NewAtWithHostPlugin(addr, hostPluginAddr string) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	hl, err := net.Listen("tcp", hostPluginAddr)
	if err != nil {
		l.Close()
		return nil, err
	}
	s := newServer()
	s.srv = startOn(l, s.serve)
	s.hp = startOn(hl, s.serveHostPlugin)
	return s, nil
}

func startOn(l net.Listener, h http.HandlerFunc) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	return srv
}

func newServer() *Server {
	return &Server{
		incarnation: 1,
		containerID: "c6d5526c-5ac2-4200-b6e2-56f2b70c5ab2",
		instanceID:  "b61f93d0-e1ed-40b2-b067-22c243233448.vhdprep-test",
		docs:        map[string]string{},
		handlers:    map[string]http.Handler{},
	}
}

// Close shuts the server down.
func (s *Server) Close() {
	s.srv.Close()
	s.hp.Close()
}

// Endpoint is the address to give the client (host:port).
func (s *Server) Endpoint() string { return strings.TrimPrefix(s.srv.URL, "http://") }

// URL is the server's base URL.
func (s *Server) URL() string { return s.srv.URL }

// SetAdvertisedURL sets the base URL the documents name the server by
// (goal state links, the status blob), URL() until set: a guest that
// reaches the server through a forward (QEMU's guestfwd to
// http://168.63.129.16) must be given URLs it can reach.
func (s *Server) SetAdvertisedURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advertised = strings.TrimSuffix(u, "/")
}

// AdvertisedURL is the base URL the documents name the server by.
func (s *Server) AdvertisedURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.advertisedLocked()
}

func (s *Server) advertisedLocked() string {
	if s.advertised != "" {
		return s.advertised
	}
	return s.srv.URL
}

// ContainerID and InstanceID are the names the goal state gives.
func (s *Server) ContainerID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.containerID
}

// SetContainerID moves the VM to another container, as Azure does when it
// heals or redeploys it: goal states name the new one, and the HostGAPlugin
// refuses requests made with the old one.
func (s *Server) SetContainerID(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.containerID = id
}

// InstanceID is the role instance the goal state names.
func (s *Server) InstanceID() string { return s.instanceID }

// Incarnation returns the current incarnation.
func (s *Server) Incarnation() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.incarnation
}

// SetIncarnation moves the goal state to incarnation n: documents and
// health reports of other incarnations are answered 410 Gone from now on.
func (s *Server) SetIncarnation(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.incarnation = n
}

// SetDocument serves body as the goal-state document of the given type
// ("extensionsConfig", "certificates", or a config type). The goal state
// links extensionsConfig and certificates only once they are set.
func (s *Server) SetDocument(typ, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs[typ] = body
}

// Handle serves h at path (exact match, without query) for what the wire
// server does not: manifests, packages, status blobs. Its requests are
// recorded and subject to Fail like the others.
func (s *Server) Handle(path string, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[path] = h
}

// Fail makes the next n requests whose path (without query) starts with
// prefix (every request when empty) answer status, or drop the connection
// when status is Drop.
func (s *Server) Fail(n, status int, prefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failCount, s.failStatus, s.failPath = n, status, prefix
}

// OnRequest calls f after each request is recorded, outside the server's
// lock: a test can change the goal state between two requests of a run.
func (s *Server) OnRequest(f func(Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRequest = f
}

// Requests returns every request received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Health returns every accepted health report, oldest first.
func (s *Server) Health() []HealthReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]HealthReport(nil), s.health...)
}

// GoalStateXML is the goal state document for the current incarnation.
func (s *Server) GoalStateXML() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.goalStateLocked()
}

func (s *Server) goalStateLocked() string {
	inc := strconv.Itoa(s.incarnation)
	base := s.advertisedLocked() + "/machine/" + s.containerID + "/" + s.instanceID
	cfg := func(typ string) string {
		return xmlEscape(base + "?comp=config&type=" + typ + "&incarnation=" + inc)
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>
<GoalState xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="goalstate10.xsd">
  <Version>2012-11-30</Version>
  <Incarnation>` + inc + `</Incarnation>
  <Machine><ExpectedState>Started</ExpectedState><LBProbePorts><Port>16001</Port></LBProbePorts></Machine>
  <Container>
    <ContainerId>` + s.containerID + `</ContainerId>
    <RoleInstanceList><RoleInstance>
      <InstanceId>` + s.instanceID + `</InstanceId>
      <State>Started</State>
      <Configuration>
        <HostingEnvironmentConfig>` + cfg("hostingEnvironmentConfig") + `</HostingEnvironmentConfig>
        <SharedConfig>` + cfg("sharedConfig") + `</SharedConfig>
`)
	if _, ok := s.docs["extensionsConfig"]; ok {
		b.WriteString("        <ExtensionsConfig>" + cfg("extensionsConfig") + "</ExtensionsConfig>\n")
	}
	b.WriteString("        <FullConfig>" + cfg("fullConfig") + "</FullConfig>\n")
	if _, ok := s.docs["certificates"]; ok {
		b.WriteString("        <Certificates>" + xmlEscape(base+"?comp=certificates&incarnation="+inc) + "</Certificates>\n")
	}
	b.WriteString(`        <ConfigName>` + s.instanceID + `.` + inc + `.xml</ConfigName>
      </Configuration>
    </RoleInstance></RoleInstanceList>
  </Container>
</GoalState>
`)
	return b.String()
}

func (s *Server) hostingEnvLocked() string {
	inc := strconv.Itoa(s.incarnation)
	return `<HostingEnvironmentConfig version="1.0.0.0" goalStateIncarnation="` + inc + `">
  <StoredCertificates />
  <Deployment name="vhdprep-test-deployment" guid="{ce5a036f-5c93-40e7-8adf-2613631008ab}" incarnation="` + inc + `" />
  <Incarnation number="` + inc + `" instance="vhdprep-test" guid="{a0faca35-52e5-4ec7-8fd1-63d2bc107d9b}" />
  <Role guid="{73d95f1c-6472-e58e-7a1a-523554e11d46}" name="vhdprep-test-role" hostingEnvironmentVersion="1" settleTimeSeconds="10" />
</HostingEnvironmentConfig>
`
}

func (s *Server) sharedConfigLocked() string {
	inc := strconv.Itoa(s.incarnation)
	return `<SharedConfig version="1.0.0.0" goalStateIncarnation="` + inc + `">
  <Deployment name="vhdprep-test-deployment" guid="{ce5a036f-5c93-40e7-8adf-2613631008ab}" incarnation="` + inc + `" />
  <Incarnation number="` + inc + `" instance="vhdprep-test" guid="{a0faca35-52e5-4ec7-8fd1-63d2bc107d9b}" />
  <Role guid="{73d95f1c-6472-e58e-7a1a-523554e11d46}" name="vhdprep-test-role" settleTimeSeconds="10" />
  <Instances><Instance id="vhdprep-test" address="10.0.0.4"><InputEndpoints /></Instance></Instances>
</SharedConfig>
`
}

const versionsXML = `<?xml version="1.0" encoding="utf-8"?>
<Versions><Preferred><Version>2012-11-30</Version></Preferred><Supported><Version>2010-12-15</Version><Version>2010-28-10</Version></Supported></Versions>
`

// maxBody bounds a request body the simulator reads: a 4 MiB page write
// relayed through the HostGAPlugin in base64 fits.
const maxBody = 8 << 20

func (s *Server) serve(w http.ResponseWriter, r *http.Request) { s.serveOn(w, r, false) }

func (s *Server) serveHostPlugin(w http.ResponseWriter, r *http.Request) { s.serveOn(w, r, true) }

// serveOn answers a request to the wire server or, with hostPlugin, to the
// HostGAPlugin: a Fail first, then a Handle handler, then the protocol.
func (s *Server) serveOn(w http.ResponseWriter, r *http.Request, hostPlugin bool) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	rec := Request{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body, HostPlugin: hostPlugin}

	s.mu.Lock()
	status, answer, handler := 0, "", http.Handler(nil)
	switch {
	case s.failCount > 0 && strings.HasPrefix(r.URL.Path, s.failPath):
		s.failCount--
		status, answer = s.failStatus, "simulated failure"
	case hostPlugin:
		status, answer, handler, r = s.hostPluginLocked(r, body)
	default:
		handler = s.handlers[r.URL.Path]
		switch {
		case handler != nil:
		case r.URL.Path == statusBlobPath:
			status, answer = s.blob.put(r.Method, r.URL.Query(), r.Header, body, false)
		default:
			status, answer = s.routeLocked(r, body)
		}
	}
	onRequest := s.onRequest
	s.mu.Unlock()

	switch {
	case status == Drop:
		// Recorded before the connection closes: the client sees the
		// drop at once and may ask for the record next.
		rec.Status = 0
		s.recordRequest(rec, onRequest)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
		return
	case handler != nil:
		rw := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		handler.ServeHTTP(rw, r)
		rec.Status = rw.status
	default:
		if status == http.StatusOK {
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		}
		w.WriteHeader(status)
		io.WriteString(w, answer)
		rec.Status = status
	}

	s.recordRequest(rec, onRequest)
}

func (s *Server) recordRequest(rec Request, onRequest func(Request)) {
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.mu.Unlock()
	if onRequest != nil {
		onRequest(rec)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// routeLocked answers the wire server's own endpoints.
func (s *Server) routeLocked(r *http.Request, body []byte) (int, string) {
	q := r.URL.Query()
	if r.URL.Path == "/" && q.Get("comp") == "versions" && r.Method == http.MethodGet {
		return http.StatusOK, versionsXML
	}
	if !strings.HasPrefix(r.URL.Path, "/machine") {
		return http.StatusNotFound, "no such endpoint"
	}
	if v := r.Header.Get("x-ms-version"); v != ProtocolVersion {
		return http.StatusBadRequest, fmt.Sprintf("x-ms-version %q, want %q", v, ProtocolVersion)
	}
	if r.Header.Get("x-ms-agent-name") == "" {
		return http.StatusBadRequest, "no x-ms-agent-name"
	}
	inc := strconv.Itoa(s.incarnation)
	switch {
	case (r.URL.Path == "/machine" || r.URL.Path == "/machine/") && q.Get("comp") == "goalstate":
		if r.Method != http.MethodGet {
			return http.StatusMethodNotAllowed, "goal state is GET"
		}
		return http.StatusOK, s.goalStateLocked()
	case (r.URL.Path == "/machine" || r.URL.Path == "/machine/") && q.Get("comp") == "health":
		if r.Method != http.MethodPost {
			return http.StatusMethodNotAllowed, "health is POST"
		}
		return s.healthLocked(r, body)
	case r.URL.Path == "/machine/"+s.containerID+"/"+s.instanceID:
		if q.Get("incarnation") != inc {
			return http.StatusGone, "incarnation " + q.Get("incarnation") + " is gone"
		}
		var doc string
		var ok bool
		switch q.Get("comp") {
		case "config":
			switch typ := q.Get("type"); typ {
			case "hostingEnvironmentConfig":
				doc, ok = s.hostingEnvLocked(), true
			case "sharedConfig":
				doc, ok = s.sharedConfigLocked(), true
			default:
				doc, ok = s.docs[typ]
			}
		case "certificates":
			if r.Header.Get("x-ms-guest-agent-public-x509-cert") == "" {
				return http.StatusBadRequest, "no x-ms-guest-agent-public-x509-cert"
			}
			c := r.Header.Get("x-ms-cipher-name")
			if c != "AES128_CBC" && c != "DES_EDE3_CBC" {
				return http.StatusBadRequest, "x-ms-cipher-name " + c + ", want AES128_CBC or DES_EDE3_CBC"
			}
			if s.pfx != nil {
				return s.certificatesLocked(r.Header.Get("x-ms-guest-agent-public-x509-cert"), c)
			}
			doc, ok = s.docs["certificates"]
		}
		if !ok {
			return http.StatusNotFound, "no such document"
		}
		return http.StatusOK, doc
	}
	return http.StatusNotFound, "no such endpoint"
}

// healthXML is the report's shape; anything else is rejected.
type healthXML struct {
	XMLName     xml.Name `xml:"Health"`
	Incarnation *string  `xml:"GoalStateIncarnation"`
	Container   *struct {
		ContainerID *string `xml:"ContainerId"`
		Roles       []struct {
			InstanceID *string `xml:"InstanceId"`
			Health     *struct {
				State   *string `xml:"State"`
				Details *struct {
					SubStatus   *string `xml:"SubStatus"`
					Description *string `xml:"Description"`
				} `xml:"Details"`
			} `xml:"Health"`
		} `xml:"RoleInstanceList>Role"`
	} `xml:"Container"`
}

func (s *Server) healthLocked(r *http.Request, body []byte) (int, string) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
		return http.StatusBadRequest, "health report Content-Type " + ct + ", want text/xml"
	}
	rep, err := ValidateHealth(body)
	if err != nil {
		return http.StatusBadRequest, err.Error()
	}
	if rep.ContainerID != s.containerID || rep.InstanceID != s.instanceID {
		return http.StatusBadRequest, "health report for another container or role instance"
	}
	if rep.Incarnation != strconv.Itoa(s.incarnation) {
		return http.StatusGone, "incarnation " + rep.Incarnation + " is gone"
	}
	s.health = append(s.health, rep)
	return http.StatusOK, ""
}

// ValidateHealth checks a health report document strictly: well-formed,
// UTF-8, every required element present once, a known state and
// sub-status, details only with NotReady, a description within the limit.
func ValidateHealth(body []byte) (HealthReport, error) {
	var p HealthReport
	if !utf8.Valid(body) {
		return p, fmt.Errorf("health report is not UTF-8")
	}
	if !bytes.HasPrefix(body, []byte(`<?xml version="1.0" encoding="utf-8"?>`)) {
		return p, fmt.Errorf("health report lacks the utf-8 XML declaration")
	}
	var h healthXML
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	if err := d.Decode(&h); err != nil {
		return p, fmt.Errorf("malformed health report: %v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return p, fmt.Errorf("malformed health report: content after the document")
	}
	if h.Incarnation == nil || h.Container == nil || h.Container.ContainerID == nil || len(h.Container.Roles) != 1 {
		return p, fmt.Errorf("health report lacks GoalStateIncarnation, ContainerId or exactly one Role")
	}
	role := h.Container.Roles[0]
	if role.InstanceID == nil || role.Health == nil || role.Health.State == nil {
		return p, fmt.Errorf("health report lacks InstanceId or Health/State")
	}
	p.Incarnation, p.ContainerID, p.InstanceID = *h.Incarnation, *h.Container.ContainerID, *role.InstanceID
	p.State = *role.Health.State
	switch p.State {
	case "Ready":
		if role.Health.Details != nil {
			return p, fmt.Errorf("health report: Ready with Details")
		}
	case "NotReady":
	default:
		return p, fmt.Errorf("health report: unknown state %q", p.State)
	}
	if det := role.Health.Details; det != nil {
		if det.SubStatus == nil || det.Description == nil {
			return p, fmt.Errorf("health report: Details lacks SubStatus or Description")
		}
		switch *det.SubStatus {
		case "Provisioning", "ProvisioningFailed":
		default:
			return p, fmt.Errorf("health report: unknown sub-status %q", *det.SubStatus)
		}
		p.SubStatus, p.Description = *det.SubStatus, *det.Description
		if n := len(xmlEscape(p.Description)); n > maxDescriptionBytes {
			return p, fmt.Errorf("health report: description of %d bytes escaped, over %d", n, maxDescriptionBytes)
		}
	}
	return p, nil
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

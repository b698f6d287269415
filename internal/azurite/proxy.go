package azurite

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Azure's Put Page rules, which Azurite does not all enforce.
const (
	pageSize   = 512
	maxPutPage = 4 << 20
)

// Faults says which Put Page requests the proxy spoils, by their number
// (1, 2, …, counting every Put Page it receives): every Nth of them, for
// each N that is not zero.
type Faults struct {
	Status500Every int           // answer 500 InternalError without forwarding
	Status503Every int           // answer 503 ServerBusy, with Retry-After: RetryAfter
	RetryAfter     string        // "1" if empty
	DropEvery      int           // close the connection without an answer
	SlowEvery      int           // forward after Slow
	Slow           time.Duration // how slow; 200 ms if zero
	Delay          time.Duration // hold every Put Page this long (to kill a client mid-upload)
}

// Stats is what the proxy saw.
type Stats struct {
	Requests   int   // every request received, whatever became of it
	PutPages   int   // Put Page requests forwarded that succeeded
	PutBytes   int64 // their bodies' bytes
	Clears     int   // Clear Pages requests that succeeded
	ReadBytes  int64 // blob content read back (Get Blob)
	Faults     int   // requests spoiled on purpose
	Violations []string
}

// Proxy stands between a client and Azurite, enforces Azure's Put Page
// rules (at most 4 MiB, on 512-byte pages, inside the blob, with a
// Content-MD5 that matches the body) and injects faults.
type Proxy struct {
	// Endpoint replaces the server's endpoint in URLs and connection strings.
	Endpoint string

	target string
	faults Faults
	client *http.Client

	mu    sync.Mutex
	seen  int              // Put Page requests received
	sizes map[string]int64 // blob path → size, from creations and properties
	stats Stats
}

// NewProxy starts a proxy in front of s for the test.
func NewProxy(t testing.TB, s *Server, faults Faults) *Proxy {
	t.Helper()
	if faults.RetryAfter == "" {
		faults.RetryAfter = "1"
	}
	if faults.Slow == 0 {
		faults.Slow = 200 * time.Millisecond
	}
	p := &Proxy{
		target: "http://" + s.Addr,
		faults: faults,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		sizes:  map[string]int64{},
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.Endpoint = srv.URL + "/" + Account
	return p
}

// Stats returns a copy of what the proxy saw so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Violations = append([]string(nil), s.Violations...)
	return s
}

// ResetStats starts counting again (blob sizes are kept).
func (p *Proxy) ResetStats() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats = Stats{}
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away
	}
	p.mu.Lock()
	p.stats.Requests++
	p.mu.Unlock()
	q := r.URL.Query()
	kind := ""
	if r.Method == http.MethodPut && q.Get("comp") == "page" {
		kind = strings.ToLower(r.Header.Get("x-ms-page-write")) // update or clear
	}
	if kind == "update" || kind == "clear" {
		if v := p.check(r, kind, body); v != "" {
			p.mu.Lock()
			p.stats.Violations = append(p.stats.Violations, v)
			p.mu.Unlock()
			w.Header().Set("x-ms-error-code", "ProxyRuleViolation")
			http.Error(w, v, http.StatusBadRequest)
			return
		}
	}
	if kind == "update" && p.spoil(w) {
		return
	}
	resp, err := p.forward(r, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	p.learn(r, resp, kind, len(body))
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// check applies Azure's rules to a Put Page or Clear Pages request.
func (p *Proxy) check(r *http.Request, kind string, body []byte) string {
	rng := r.Header.Get("x-ms-range")
	if rng == "" {
		rng = r.Header.Get("Range")
	}
	first, last, ok := parseRange(rng)
	if !ok {
		return fmt.Sprintf("%s: bad range %q", kind, rng)
	}
	n := last - first + 1
	p.mu.Lock()
	size, known := p.sizes[r.URL.Path]
	p.mu.Unlock()
	switch {
	case first%pageSize != 0 || n%pageSize != 0:
		return fmt.Sprintf("%s %d-%d: not on 512-byte pages", kind, first, last)
	case !known:
		return fmt.Sprintf("%s %d-%d: the client never created the blob or asked its size", kind, first, last)
	case last >= size:
		return fmt.Sprintf("%s %d-%d: past the blob's end at %d", kind, first, last, size)
	case kind == "clear":
		return ""
	case n > maxPutPage:
		return fmt.Sprintf("put page %d-%d: %d bytes, above 4 MiB", first, last, n)
	case int64(len(body)) != n:
		return fmt.Sprintf("put page %d-%d: body of %d bytes", first, last, len(body))
	}
	sum := md5.Sum(body)
	if got := r.Header.Get("Content-MD5"); got != base64.StdEncoding.EncodeToString(sum[:]) {
		return fmt.Sprintf("put page %d-%d: Content-MD5 %q does not match the body", first, last, got)
	}
	return ""
}

func parseRange(s string) (first, last int64, ok bool) {
	a, b, found := strings.Cut(strings.TrimPrefix(s, "bytes="), "-")
	if !found {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	return first, last, err1 == nil && err2 == nil && first >= 0 && last >= first
}

// spoil injects the fault this Put Page is due, and says whether it did.
func (p *Proxy) spoil(w http.ResponseWriter) bool {
	f := p.faults
	p.mu.Lock()
	p.seen++
	n := p.seen
	p.mu.Unlock()
	every := func(k int) bool { return k > 0 && n%k == 0 }
	if f.Delay > 0 {
		time.Sleep(f.Delay)
	}
	fault := true
	switch {
	case every(f.Status500Every):
		w.Header().Set("x-ms-error-code", "InternalError")
		http.Error(w, "injected", http.StatusInternalServerError)
	case every(f.Status503Every):
		w.Header().Set("x-ms-error-code", "ServerBusy")
		w.Header().Set("Retry-After", f.RetryAfter)
		http.Error(w, "injected", http.StatusServiceUnavailable)
	case every(f.DropEvery):
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
	case every(f.SlowEvery):
		time.Sleep(f.Slow)
		fault = false
	default:
		fault = false
	}
	if fault {
		p.mu.Lock()
		p.stats.Faults++
		p.mu.Unlock()
	}
	return fault
}

func (p *Proxy) forward(r *http.Request, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = r.Header.Clone()
	req.ContentLength = int64(len(body))
	return p.client.Do(req)
}

// learn records blob sizes and counts what succeeded.
func (p *Proxy) learn(r *http.Request, resp *http.Response, kind string, n int) {
	if resp.StatusCode/100 != 2 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case kind == "update":
		p.stats.PutPages++
		p.stats.PutBytes += int64(n)
	case kind == "clear":
		p.stats.Clears++
	case r.Method == http.MethodPut && strings.EqualFold(r.Header.Get("x-ms-blob-type"), "PageBlob"):
		if size, err := strconv.ParseInt(r.Header.Get("x-ms-blob-content-length"), 10, 64); err == nil {
			p.sizes[r.URL.Path] = size
		}
	case r.Method == http.MethodGet && r.URL.Query().Get("comp") == "" && r.URL.Query().Get("restype") == "":
		p.stats.ReadBytes += max(resp.ContentLength, 0)
	case r.Method == http.MethodHead && r.URL.Query().Get("comp") == "":
		if size, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); err == nil {
			p.sizes[r.URL.Path] = size
		}
	}
}

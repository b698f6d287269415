// Package wire is a client of the Azure wire server (168.63.129.16), the
// host endpoint through which a guest agent reads its goal state and
// reports health. The shapes of the requests and documents follow
// WALinuxAgent's azurelinuxagent/common/protocol/{wire,goal_state}.py.
package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vhdprep/vhdprep/internal/pause"
)

const (
	// DefaultEndpoint is the wire server's well-known address, used when no
	// DHCP lease names another (option 245).
	DefaultEndpoint = "168.63.129.16"
	// ProtocolVersion is the wire protocol version this client speaks, sent
	// as x-ms-version.
	ProtocolVersion = "2012-11-30"
	// DefaultAgentName is sent as x-ms-agent-name.
	DefaultAgentName = "vhdprep-agent"

	// MaxDocumentSize bounds every document read from the wire server; the
	// largest (ExtensionsConfig with many extensions) are well under it.
	MaxDocumentSize = 8 << 20

	headerVersion   = "x-ms-version"
	headerAgentName = "x-ms-agent-name"
	contentTypeXML  = "text/xml;charset=utf-8"
)

var (
	// ErrInvalid marks a document that does not parse or lacks what the
	// protocol requires.
	ErrInvalid = errors.New("invalid wire server document")
	// ErrInvalidReport marks a health report this client refuses to send.
	ErrInvalidReport = errors.New("invalid health report")
	// ErrUnsupportedVersion: the wire server does not speak ProtocolVersion.
	ErrUnsupportedVersion = errors.New("wire server does not support protocol version " + ProtocolVersion)
	// ErrGone is a 410 answer: the document belongs to an old goal state;
	// fetch the goal state again.
	ErrGone = errors.New("goal state changed (410 Gone)")
	// ErrNoRoleInstance: the wire server kept serving a goal state without
	// a role instance.
	ErrNoRoleInstance = errors.New("goal state has no role instance")
	// ErrTooLarge: a document exceeded MaxDocumentSize.
	ErrTooLarge = errors.New("wire server document too large")
)

// StatusError is an HTTP answer other than 200/201/202.
type StatusError struct {
	Method, URL string
	Code        int
	Body        string // the start of the answer, for the log
	retryAfter  time.Duration
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s %s: HTTP %d", e.Method, e.URL, e.Code)
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// Unwrap makes a 410 match ErrGone.
func (e *StatusError) Unwrap() error {
	if e.Code == http.StatusGone {
		return ErrGone
	}
	return nil
}

// Retry is the backoff policy: exponential from Initial to Max with
// jitter, at most Attempts tries; the context's deadline ends it sooner.
type Retry struct {
	Initial  time.Duration
	Max      time.Duration
	Attempts int
}

// defaultRetry gives a request about three minutes before it fails, enough
// for a wire server that is restarting: 12 tries, 0.5 s doubling to 20 s.
var defaultRetry = Retry{Initial: 500 * time.Millisecond, Max: 20 * time.Second, Attempts: 12}

// Client talks to one wire server. Its zero value is not usable: call New.
// A Client is safe for concurrent use.
type Client struct {
	endpoint   string
	agentName  string
	http       *http.Client
	retry      Retry
	log        *slog.Logger
	hostPlugin string // host:port of the HostGAPlugin

	mu sync.Mutex
	gs *GoalState // the last goal state fetched
}

// Options configure a Client; the zero value gives the defaults.
type Options struct {
	AgentName string       // x-ms-agent-name; DefaultAgentName when empty
	HTTP      *http.Client // must not use a proxy; a proxy-free client with a 30 s timeout when nil
	Retry     Retry        // 12 tries, 0.5 s doubling to 20 s, when zero
	Log       *slog.Logger // discarded when nil
	// HostPluginPort is the HostGAPlugin's port on the wire server's host;
	// DefaultHostPluginPort when zero. Tests point it at a simulator.
	HostPluginPort int
}

// New returns a client of the wire server at endpoint (a host or
// host:port, as Discover returns it).
func New(endpoint string, o Options) *Client {
	c := &Client{endpoint: endpoint, agentName: o.AgentName, http: o.HTTP, retry: o.Retry, log: o.Log}
	if c.agentName == "" {
		c.agentName = DefaultAgentName
	}
	if c.http == nil {
		// The wire server is reached directly: never through an HTTP proxy.
		c.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
	}
	if c.retry == (Retry{}) {
		c.retry = defaultRetry
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.hostPlugin = hostPluginAddr(endpoint, o.HostPluginPort)
	return c
}

// Endpoint returns the wire server address the client uses.
func (c *Client) Endpoint() string { return c.endpoint }

// CheckVersion asks the wire server which protocol versions it speaks and
// fails with ErrUnsupportedVersion unless ProtocolVersion is among them.
func (c *Client) CheckVersion(ctx context.Context) (*Versions, error) {
	// WALinuxAgent sends this request without the protocol headers.
	doc, err := c.do(ctx, http.MethodGet, "http://"+c.endpoint+"/?comp=versions", nil, nil)
	if err != nil {
		return nil, err
	}
	v, err := ParseVersions(doc)
	if err != nil {
		return nil, err
	}
	if !v.Supports(ProtocolVersion) {
		return v, fmt.Errorf("%w (it prefers %s)", ErrUnsupportedVersion, v.Preferred)
	}
	return v, nil
}

// maxRoleInstanceTries bounds the refetches of a goal state that lacks a
// role instance (WALinuxAgent tries 6 times, 0.5 s apart; this client waits
// as its retry policy says).
const maxRoleInstanceTries = 6

// GoalState fetches the current goal state and remembers it for health
// reports. A goal state without a role instance is fetched again a few
// times before ErrNoRoleInstance.
func (c *Client) GoalState(ctx context.Context) (*GoalState, error) {
	url := "http://" + c.endpoint + "/machine/?comp=goalstate"
	for try := 1; ; try++ {
		doc, err := c.do(ctx, http.MethodGet, url, c.headers(false), nil)
		if err != nil {
			return nil, err
		}
		g, err := ParseGoalState(doc)
		if err != nil {
			return nil, err
		}
		if g.HasRoleInstance() {
			c.mu.Lock()
			c.gs = g
			c.mu.Unlock()
			return g, nil
		}
		if try == maxRoleInstanceTries {
			return nil, fmt.Errorf("%w (incarnation %s, %d tries)", ErrNoRoleInstance, g.Incarnation, try)
		}
		if err := pause.For(ctx, c.backoff(try)); err != nil {
			return nil, err
		}
	}
}

// Current returns the goal state last fetched, or nil.
func (c *Client) Current() *GoalState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gs
}

// Fetch GETs a goal-state document (a URL from GoalState) with the protocol
// headers. A 410 answer wraps ErrGone: the goal state has moved on.
func (c *Client) Fetch(ctx context.Context, url string) ([]byte, error) {
	return c.do(ctx, http.MethodGet, url, c.headers(false), nil)
}

// ReportHealth posts a health report for the current goal state (fetching
// one first if none is known). When the wire server answers 410 the goal
// state has changed: the client fetches it again and reports against the
// new incarnation, within the same retry budget.
func (c *Client) ReportHealth(ctx context.Context, h Health) error {
	if err := h.validate(); err != nil {
		return err
	}
	url := "http://" + c.endpoint + "/machine?comp=health"
	for try := 1; ; try++ {
		g := c.Current()
		if g == nil {
			var err error
			if g, err = c.GoalState(ctx); err != nil {
				return fmt.Errorf("health report: %w", err)
			}
		}
		body, err := MarshalHealth(g, h)
		if err != nil {
			return err
		}
		_, err = c.do(ctx, http.MethodPost, url, c.headers(true), body)
		if err == nil {
			c.log.Info("health reported", "state", h.State, "substatus", h.SubStatus, "incarnation", g.Incarnation)
			return nil
		}
		if !errors.Is(err, ErrGone) || try >= c.retry.Attempts {
			return fmt.Errorf("health report (incarnation %s): %w", g.Incarnation, err)
		}
		c.log.Info("goal state changed during health report; fetching it again", "incarnation", g.Incarnation)
		if _, err := c.GoalState(ctx); err != nil {
			return fmt.Errorf("health report: %w", err)
		}
	}
}

func (c *Client) headers(xmlBody bool) http.Header {
	h := http.Header{}
	h.Set(headerVersion, ProtocolVersion)
	h.Set(headerAgentName, c.agentName)
	if xmlBody {
		h.Set("Content-Type", contentTypeXML)
	}
	return h
}

// do sends one request with retries: connection errors and 429/500/502/503/
// 504 are tried again after an exponential, jittered delay (or the server's
// Retry-After, when shorter than Max); other answers end it.
func (c *Client) do(ctx context.Context, method, url string, h http.Header, body []byte) ([]byte, error) {
	var last error
	for try := 1; try <= c.retry.Attempts; try++ {
		doc, err := c.once(ctx, method, url, h, body)
		if err == nil {
			return doc, nil
		}
		if ctx.Err() != nil {
			// The deadline cut this try short: the failure before it is
			// what the caller needs to hear about.
			if last == nil {
				return nil, err
			}
			return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		}
		last = err
		if !retryable(err) || try == c.retry.Attempts {
			break
		}
		wait := c.backoff(try)
		var se *StatusError
		if errors.As(err, &se) && se.retryAfter > 0 && se.retryAfter < c.retry.Max {
			wait = se.retryAfter
		}
		c.log.Debug("wire server request failed; retrying", "method", method, "url", url, "try", try, "wait", wait, "err", err)
		if err := pause.For(ctx, wait); err != nil {
			return nil, fmt.Errorf("%w (last error: %v)", err, last)
		}
	}
	return nil, last
}

func (c *Client) once(ctx context.Context, method, url string, h http.Header, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &netError{err}
	}
	defer resp.Body.Close()
	doc, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentSize+1))
	if err != nil {
		return nil, &netError{fmt.Errorf("%s %s: reading the answer: %w", method, url, err)}
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated, http.StatusAccepted:
	default:
		se := &StatusError{Method: method, URL: url, Code: resp.StatusCode, Body: snippet(doc)}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			se.retryAfter = time.Duration(s) * time.Second
		}
		return nil, se
	}
	if len(doc) > MaxDocumentSize {
		return nil, fmt.Errorf("%s %s: %w (over %d bytes)", method, url, ErrTooLarge, MaxDocumentSize)
	}
	return doc, nil
}

// netError marks a failure to get any answer: a connection refused, reset
// or timed out, or an answer cut short.
type netError struct{ err error }

func (e *netError) Error() string { return e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

func retryable(err error) bool {
	var ne *netError
	if errors.As(err, &ne) {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	var se *StatusError
	if errors.As(err, &se) {
		switch se.Code {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
	}
	return false
}

// backoff returns the delay before try+1: between half and all of
// Initial·2^(try-1) capped at Max, at random, so agents restarted together
// do not retry together.
func (c *Client) backoff(try int) time.Duration {
	d := c.retry.Initial
	for i := 1; i < try && d < c.retry.Max; i++ {
		d *= 2
	}
	d = min(d, c.retry.Max)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// snippet is the start of an error answer, for messages.
func snippet(b []byte) string {
	const n = 200
	if len(b) > n {
		b = b[:n]
	}
	return string(bytes.ToValidUTF8(bytes.TrimSpace(b), []byte("?")))
}

package wire

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HostGAPlugin and status blob constants, WALinuxAgent's
// (azurelinuxagent/common/protocol/{hostplugin,wire}.py).
const (
	// StorageVersion is the Blob service version of status uploads.
	StorageVersion = "2014-02-14"
	// MaxPageWrite is the most one Put Page may write.
	MaxPageWrite = 4 << 20

	// Blob types of the status blob, as ExtensionsConfig names them.
	BlockBlob = "BlockBlob"
	PageBlob  = "PageBlob"

	// Cipher names for the Certificates request: the wire server encrypts
	// with AES-128-CBC when asked, and otherwise (older hosts answer 400)
	// with 3DES, the legacy one, as WALinuxAgent falls back.
	cipherAES128 = "AES128_CBC"
	cipher3DES   = "DES_EDE3_CBC"
)

// ErrNoStatusBlob: the goal state gives no status blob to upload to.
var ErrNoStatusBlob = errors.New("ExtensionsConfig has no StatusUploadBlob")

// ExtensionsConfig fetches g's ExtensionsConfig document.
func (c *Client) ExtensionsConfig(ctx context.Context, g *GoalState) ([]byte, error) {
	if g.ExtensionsConfig == "" {
		return nil, fmt.Errorf("%w: goal state incarnation %s has no ExtensionsConfig", ErrInvalid, g.Incarnation)
	}
	return c.Fetch(ctx, g.ExtensionsConfig)
}

// Certificates fetches g's Certificates document, encrypted to the
// transport certificate certPEM, which is sent (its DER in base64) in
// x-ms-guest-agent-public-x509-cert. It asks for AES-128-CBC and falls
// back to 3DES when the wire server refuses that.
func (c *Client) Certificates(ctx context.Context, g *GoalState, certPEM []byte) ([]byte, error) {
	if g.Certificates == "" {
		return nil, fmt.Errorf("%w: goal state incarnation %s has no Certificates", ErrInvalid, g.Incarnation)
	}
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("certificates request: the transport certificate is not a PEM CERTIFICATE")
	}
	h := c.headers(false)
	h.Set("x-ms-guest-agent-public-x509-cert", base64.StdEncoding.EncodeToString(b.Bytes))
	var err error
	for _, cipher := range []string{cipherAES128, cipher3DES} {
		h.Set("x-ms-cipher-name", cipher)
		var doc []byte
		if doc, err = c.do(ctx, http.MethodGet, g.Certificates, h, nil); err == nil {
			return doc, nil
		}
		var se *StatusError
		if !errors.As(err, &se) || se.Code != http.StatusBadRequest {
			break
		}
		c.log.Info("wire server refused a cipher for certificates; trying the legacy one", "cipher", cipher)
	}
	return nil, err
}

// UploadStatus writes doc (the aggregate status document) to the status
// blob blobURL, a SAS URL, as a block or page blob; when that fails it
// sends the same requests through the HostGAPlugin's /status endpoint, as
// WALinuxAgent does. blobType is BlockBlob or PageBlob (BlockBlob when
// empty). The SAS never appears in errors or logs.
func (c *Client) UploadStatus(ctx context.Context, blobURL, blobType string, doc []byte) error {
	if blobURL == "" {
		return ErrNoStatusBlob
	}
	if blobType == "" {
		blobType = BlockBlob
	}
	if blobType != BlockBlob && blobType != PageBlob {
		return fmt.Errorf("status blob type %q: want %s or %s", blobType, BlockBlob, PageBlob)
	}
	reqs := statusRequests(blobURL, blobType, doc, time.Now())
	direct := c.putDirect(ctx, reqs)
	if direct == nil {
		return nil
	}
	c.log.Info("status upload to the blob failed; trying the HostGAPlugin", "blob", redactSAS(blobURL), "err", direct)
	if err := c.putThroughHostPlugin(ctx, reqs); err != nil {
		return fmt.Errorf("status upload: to the blob: %v; through the HostGAPlugin: %w", direct, err)
	}
	return nil
}

// blobRequest is one PUT of a status upload.
type blobRequest struct {
	url    string
	header []hostPluginHeader // blob service headers, WALinuxAgent's names and order, Content-Length included
	body   []byte
}

// statusRequests are the PUTs that write doc: one for a block blob; for a
// page blob a create at doc's size rounded up to 512 bytes (which clears
// what an earlier, longer status left) and Put Page writes of at most
// MaxPageWrite, each zero-padded to 512 bytes.
func statusRequests(blobURL, blobType string, doc []byte, now time.Time) []blobRequest {
	date := now.UTC().Format(http.TimeFormat)
	hdr := func(kv ...string) []hostPluginHeader {
		h := []hostPluginHeader{{"x-ms-date", date}, {"x-ms-version", StorageVersion}}
		for i := 0; i < len(kv); i += 2 {
			h = append(h, hostPluginHeader{kv[i], kv[i+1]})
		}
		return h
	}
	if blobType == BlockBlob {
		return []blobRequest{{url: blobURL, body: doc, header: hdr(
			"x-ms-blob-type", BlockBlob,
			"Content-Length", strconv.Itoa(len(doc)))}}
	}
	size := roundUp512(len(doc))
	reqs := []blobRequest{{url: blobURL, header: hdr(
		"x-ms-blob-type", PageBlob,
		"Content-Length", "0",
		"x-ms-blob-content-length", strconv.Itoa(size))}}
	pageURL := blobURL + "&comp=page"
	if !strings.Contains(blobURL, "?") {
		pageURL = blobURL + "?comp=page"
	}
	for start := 0; start < len(doc); {
		end := start + min(len(doc)-start, MaxPageWrite)
		pageEnd := roundUp512(end)
		buf := make([]byte, pageEnd-start)
		copy(buf, doc[start:end])
		reqs = append(reqs, blobRequest{url: pageURL, body: buf, header: hdr(
			"x-ms-range", fmt.Sprintf("bytes=%d-%d", start, pageEnd-1),
			"x-ms-page-write", "update",
			"Content-Length", strconv.Itoa(len(buf)))})
		start = end
	}
	return reqs
}

func roundUp512(n int) int { return (n + 511) / 512 * 512 }

// putDirect sends the requests to the blob service, once each: a failure
// goes to the HostGAPlugin rather than waiting on retries.
func (c *Client) putDirect(ctx context.Context, reqs []blobRequest) error {
	for _, r := range reqs {
		h := http.Header{}
		for _, kv := range r.header {
			if kv.Name != "Content-Length" { // net/http sets it from the body
				h.Set(kv.Name, kv.Value)
			}
		}
		if _, err := c.once(ctx, http.MethodPut, r.url, h, r.body); err != nil {
			return redactErr(err, r.url)
		}
	}
	return nil
}

// hostPluginStatus is the JSON body of a HostGAPlugin /status PUT.
type hostPluginStatus struct {
	Content    string             `json:"content,omitempty"`
	Headers    []hostPluginHeader `json:"headers"`
	RequestURI string             `json:"requestUri"`
}

type hostPluginHeader struct {
	Name  string `json:"headerName"`
	Value string `json:"headerValue"`
}

// putThroughHostPlugin relays each blob request through the HostGAPlugin,
// which needs the container and role config names of the current goal
// state.
func (c *Client) putThroughHostPlugin(ctx context.Context, reqs []blobRequest) error {
	g := c.Current()
	if g == nil {
		var err error
		if g, err = c.GoalState(ctx); err != nil {
			return err
		}
	}
	url := "http://" + c.hostPlugin + "/status"
	h := http.Header{}
	c.setHostPluginHeaders(h, g)
	h.Set("Content-Type", "application/json")
	for _, r := range reqs {
		body, err := json.Marshal(hostPluginBody(r))
		if err != nil {
			return err
		}
		if _, err := c.do(ctx, http.MethodPut, url, h, body); err != nil {
			return redactErr(err, r.url)
		}
	}
	return nil
}

// hostPluginBody is the relay of r; like WALinuxAgent's, it has no
// content for the page blob create.
func hostPluginBody(r blobRequest) hostPluginStatus {
	s := hostPluginStatus{RequestURI: r.url, Headers: r.header}
	if r.body != nil {
		s.Content = base64.StdEncoding.EncodeToString(r.body)
	}
	return s
}

// redactSAS drops a URL's query, where a SAS signature is.
func redactSAS(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?<SAS redacted>"
	}
	return u
}

// redactErr rewrites an error about a request to a SAS URL so that the
// SAS does not leak into logs; errors.Is and As still see the cause.
func redactErr(err error, sasURL string) error {
	msg := err.Error()
	if i := strings.IndexByte(sasURL, '?'); i >= 0 {
		msg = strings.ReplaceAll(msg, sasURL[i:], "?<SAS redacted>")
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

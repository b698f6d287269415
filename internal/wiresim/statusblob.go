package wiresim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
)

// The status blob the ExtensionsConfig of tests names; uploads to it are
// validated as the Blob service would and recorded.
const (
	statusBlobPath  = "/blobs/vhdprep-test.status"
	statusBlobQuery = "sv=2018-03-28&sr=b&sk=system-1&sig=simulated%2Bsig%3D&se=9999-01-01T00%3a00%3a00Z&sp=w"
	// maxPageWrite is the Blob service's limit on one Put Page.
	maxPageWrite = 4 << 20
	// maxStatusBlob bounds the page blob the simulator keeps.
	maxStatusBlob = 64 << 20
)

// StatusUpload is one complete status document written to the status blob.
type StatusUpload struct {
	BlobType   string // "BlockBlob" or "PageBlob"
	Doc        []byte // a page blob's content without its zero or blank padding
	HostPlugin bool   // relayed through the HostGAPlugin's /status
}

type statusBlob struct {
	pages   []byte // the page blob, nil until created
	uploads []StatusUpload
}

var rangeRE = regexp.MustCompile(`^bytes=(\d+)-(\d+)$`)

// StatusBlobURL is the status blob's SAS URL, for StatusUploadBlob.
func (s *Server) StatusBlobURL() string {
	return s.AdvertisedURL() + statusBlobPath + "?" + statusBlobQuery
}

// Statuses returns every complete status document uploaded, oldest first.
func (s *Server) Statuses() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, u := range s.blob.uploads {
		out = append(out, u.Doc)
	}
	return out
}

// HandlerStatus is "<handler status>/<extension status>/<message>" of the
// named handler in the newest status document: "" when no document names
// it, "unparsable" when the newest is no JSON.
func (s *Server) HandlerStatus(name string) string {
	docs := s.Statuses()
	if len(docs) == 0 {
		return ""
	}
	var doc struct {
		AggregateStatus struct {
			HandlerAggregateStatus []struct {
				HandlerName, Status   string
				RuntimeSettingsStatus struct {
					SettingsStatus struct {
						Status struct {
							Status           string
							FormattedMessage struct{ Message string }
						}
					}
				}
			}
		}
	}
	if json.Unmarshal(docs[len(docs)-1], &doc) != nil {
		return "unparsable"
	}
	for _, h := range doc.AggregateStatus.HandlerAggregateStatus {
		if h.HandlerName == name {
			st := h.RuntimeSettingsStatus.SettingsStatus.Status
			return h.Status + "/" + st.Status + "/" + st.FormattedMessage.Message
		}
	}
	return ""
}

// StatusUploads returns every complete status upload with how it came.
func (s *Server) StatusUploads() []StatusUpload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]StatusUpload(nil), s.blob.uploads...)
}

// put applies one Blob service request to the status blob strictly: a
// block blob PUT, a page blob create, or a Put Page; anything else is
// refused as the Blob service would.
func (b *statusBlob) put(method string, q url.Values, h http.Header, body []byte, viaHostPlugin bool) (int, string) {
	if method != http.MethodPut {
		return http.StatusMethodNotAllowed, "status blob takes PUT"
	}
	if q.Get("sig") == "" || q.Get("sp") == "" {
		return http.StatusForbidden, "no SAS on the status blob request"
	}
	if h.Get("x-ms-version") == "" || h.Get("x-ms-date") == "" {
		return http.StatusBadRequest, "status blob request lacks x-ms-version or x-ms-date"
	}
	if cl := h.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(body)) {
		return http.StatusBadRequest, fmt.Sprintf("Content-Length %s, body of %d bytes", cl, len(body))
	}
	switch comp := q.Get("comp"); {
	case comp == "page":
		return b.putPage(h, body, viaHostPlugin)
	case comp != "":
		return http.StatusBadRequest, "status blob: comp=" + comp + " is not supported"
	}
	switch t := h.Get("x-ms-blob-type"); t {
	case "BlockBlob":
		b.uploads = append(b.uploads, StatusUpload{BlobType: t, Doc: bytes.Clone(body), HostPlugin: viaHostPlugin})
		return http.StatusCreated, ""
	case "PageBlob":
		if len(body) != 0 {
			return http.StatusBadRequest, "page blob create with a body"
		}
		n, err := strconv.Atoi(h.Get("x-ms-blob-content-length"))
		if err != nil || n < 0 || n%512 != 0 || n > maxStatusBlob {
			return http.StatusBadRequest, "x-ms-blob-content-length " + h.Get("x-ms-blob-content-length") + " is not a multiple of 512 within bounds"
		}
		b.pages = make([]byte, n)
		return http.StatusCreated, ""
	default:
		return http.StatusBadRequest, "x-ms-blob-type " + t + ", want BlockBlob or PageBlob"
	}
}

func (b *statusBlob) putPage(h http.Header, body []byte, viaHostPlugin bool) (int, string) {
	if b.pages == nil {
		return http.StatusNotFound, "Put Page to a page blob not created"
	}
	if w := h.Get("x-ms-page-write"); w != "update" {
		return http.StatusBadRequest, "x-ms-page-write " + w + ", want update"
	}
	m := rangeRE.FindStringSubmatch(h.Get("x-ms-range"))
	if m == nil {
		return http.StatusBadRequest, "x-ms-range " + h.Get("x-ms-range") + " is not bytes=start-end"
	}
	start, err1 := strconv.Atoi(m[1])
	end, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil || start%512 != 0 || (end+1)%512 != 0 || end < start {
		return http.StatusBadRequest, "x-ms-range " + m[0] + " is not 512-aligned"
	}
	n := end - start + 1
	if n > maxPageWrite {
		return http.StatusBadRequest, fmt.Sprintf("Put Page of %d bytes, over 4 MiB", n)
	}
	if n != len(body) {
		return http.StatusBadRequest, fmt.Sprintf("x-ms-range of %d bytes, body of %d", n, len(body))
	}
	if end >= len(b.pages) {
		return 416, fmt.Sprintf("x-ms-range ends at %d, past the blob's %d bytes", end, len(b.pages))
	}
	copy(b.pages[start:], body)
	// The write that reaches the blob's end completes a document.
	if end+1 == len(b.pages) {
		doc := bytes.TrimRight(b.pages, "\x00 ")
		b.uploads = append(b.uploads, StatusUpload{BlobType: "PageBlob", Doc: bytes.Clone(doc), HostPlugin: viaHostPlugin})
	}
	return http.StatusCreated, ""
}

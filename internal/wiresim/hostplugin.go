package wiresim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// HostPluginAPIVersion is the x-ms-version HostGAPlugin requests carry.
const HostPluginAPIVersion = "2015-09-01"

// HostPluginURL is the HostGAPlugin's base URL.
func (s *Server) HostPluginURL() string { return s.hp.URL }

// HostPluginEndpoint is the HostGAPlugin's host:port.
func (s *Server) HostPluginEndpoint() string { return strings.TrimPrefix(s.hp.URL, "http://") }

// hostPluginLocked answers the HostGAPlugin's endpoints: /versions,
// /extensionArtifact (which fetches the x-ms-artifact-location from the
// paths served by Handle, so a test can make direct downloads fail while
// the HostGAPlugin still serves them) and /status (which relays an upload
// to the status blob). It returns a handler, and the request it must see,
// for artifacts.
func (s *Server) hostPluginLocked(r *http.Request, body []byte) (int, string, http.Handler, *http.Request) {
	switch r.URL.Path {
	case "/versions":
		return http.StatusOK, `["2015-09-01"]`, nil, r
	case "/extensionArtifact", "/status":
	default:
		return http.StatusNotFound, "no such HostGAPlugin endpoint", nil, r
	}
	if v := r.Header.Get("x-ms-version"); v != HostPluginAPIVersion {
		return http.StatusBadRequest, "x-ms-version " + v + ", want " + HostPluginAPIVersion, nil, r
	}
	if r.Header.Get("x-ms-containerid") != s.containerID {
		// The HostGAPlugin's answer to a request built from a stale goal state.
		return http.StatusBadRequest, "InvalidContainerConfiguration: x-ms-containerid is not this VM's container", nil, r
	}
	if r.Header.Get("x-ms-host-config-name") == "" {
		return http.StatusBadRequest, "no x-ms-host-config-name", nil, r
	}
	if r.URL.Path == "/status" {
		code, msg := s.relayStatusLocked(r, body)
		return code, msg, nil, r
	}
	if r.Method != http.MethodGet {
		return http.StatusMethodNotAllowed, "extensionArtifact is GET", nil, r
	}
	loc, err := url.Parse(r.Header.Get("x-ms-artifact-location"))
	if err != nil || loc.Host == "" {
		return http.StatusBadRequest, "x-ms-artifact-location is not a URL", nil, r
	}
	h := s.handlers[loc.Path]
	if h == nil {
		return http.StatusNotFound, "no artifact at x-ms-artifact-location", nil, r
	}
	fwd := r.Clone(r.Context())
	fwd.URL = loc
	fwd.RequestURI = loc.RequestURI()
	fwd.Body = http.NoBody
	return 0, "", h, fwd
}

// hostPluginStatus is the JSON of a HostGAPlugin /status PUT.
type hostPluginStatus struct {
	Content *string `json:"content"`
	Headers []struct {
		Name  string `json:"headerName"`
		Value string `json:"headerValue"`
	} `json:"headers"`
	RequestURI string `json:"requestUri"`
}

func (s *Server) relayStatusLocked(r *http.Request, body []byte) (int, string) {
	if r.Method != http.MethodPut {
		return http.StatusMethodNotAllowed, "status is PUT"
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return http.StatusBadRequest, "Content-Type " + ct + ", want application/json"
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	var st hostPluginStatus
	if err := d.Decode(&st); err != nil {
		return http.StatusBadRequest, "malformed status relay: " + err.Error()
	}
	u, err := url.Parse(st.RequestURI)
	if err != nil || u.Path != statusBlobPath || "http://"+u.Host != s.advertisedLocked() && "http://"+u.Host != s.srv.URL {
		return http.StatusBadRequest, "requestUri is not the status blob"
	}
	h := http.Header{}
	for _, kv := range st.Headers {
		h.Set(kv.Name, kv.Value)
	}
	var content []byte
	if st.Content != nil {
		if content, err = base64.StdEncoding.DecodeString(*st.Content); err != nil {
			return http.StatusBadRequest, "content is not base64"
		}
	}
	return s.blob.put(http.MethodPut, u.Query(), h, content, true)
}

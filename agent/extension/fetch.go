package extension

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/vhdprep/vhdprep/agent/extconf"
)

// maxManifestDocSize bounds a plugin manifest (a few KiB in practice).
const maxManifestDocSize = 4 << 20

// Fetcher downloads manifests and packages: directly first, then through
// the HostGAPlugin, as WALinuxAgent's download does when the direct
// request fails.
type Fetcher struct {
	HTTP *http.Client
	// ViaHostPlugin builds the HostGAPlugin request for url (see
	// wire.Client.ArtifactRequest); nil disables the fallback.
	ViaHostPlugin func(ctx context.Context, url string) (*http.Request, error)
}

// Get returns the body of url, at most limit bytes: directly, else through
// the HostGAPlugin.
func (f *Fetcher) Get(ctx context.Context, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("download %s: %v", redact(url), err)
	}
	body, direct := f.do(req, limit)
	if direct == nil || f.ViaHostPlugin == nil || ctx.Err() != nil {
		return body, direct
	}
	req, err = f.ViaHostPlugin(ctx, url)
	if err != nil {
		return nil, errors.Join(direct, err)
	}
	body, err = f.do(req, limit)
	if err != nil {
		return nil, fmt.Errorf("%v; through the HostGAPlugin: %v", direct, err)
	}
	return body, nil
}

func (f *Fetcher) do(req *http.Request, limit int64) ([]byte, error) {
	what := redact(req.URL.String())
	if a := req.Header.Get("x-ms-artifact-location"); a != "" {
		what = redact(a) + " through the HostGAPlugin"
	}
	c := f.HTTP
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %v", what, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download %s: HTTP %s", what, resp.Status)
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("download %s: %d bytes, more than %d", what, resp.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("download %s: %v", what, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("download %s: more than %d bytes", what, limit)
	}
	return b, nil
}

// Package downloads the package of p's goal-state version: the manifest
// from the first of p's locations that answers, then the version's first
// package URL that downloads.
func (f *Fetcher) Package(ctx context.Context, p extconf.Plugin) ([]byte, error) {
	var errs []error
	var m *extconf.Manifest
	for _, loc := range p.Locations {
		doc, err := f.Get(ctx, loc, maxManifestDocSize)
		if err == nil {
			m, err = extconf.ParseManifest(doc)
		}
		if err == nil {
			break
		}
		errs = append(errs, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%s %s: no manifest: %w", p.Name, p.Version, errors.Join(errs...))
	}
	v, err := chooseVersion(m, p.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", p.Name, err)
	}
	errs = errs[:0]
	for _, u := range v.URIs {
		b, err := f.Get(ctx, u, MaxPackageSize)
		if err == nil {
			return b, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%s %s: no package downloaded: %w", p.Name, p.Version, errors.Join(errs...))
}

// chooseVersion picks the goal state's version from the manifest;
// internal versions are never chosen, as WALinuxAgent excludes them.
func chooseVersion(m *extconf.Manifest, want string) (extconf.ManifestVersion, error) {
	for _, v := range m.Versions {
		if v.Version == want && !v.IsInternal && len(v.URIs) > 0 {
			return v, nil
		}
	}
	return extconf.ManifestVersion{}, fmt.Errorf("version %s is not in the manifest (or has no package); the goal state cannot be met", want)
}

// redact drops a URL's query, which holds SAS tokens.
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?<redacted>"
	}
	return u
}

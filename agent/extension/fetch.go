package extension

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vhdprep/vhdprep/agent/extconf"
	"github.com/vhdprep/vhdprep/internal/pause"
)

// maxManifestDocSize bounds a plugin manifest (a few KiB in practice).
const maxManifestDocSize = 4 << 20

// DownloadBudget bounds one handler's download, manifest and package,
// over both channels and every retry: WALinuxAgent's _DOWNLOAD_TIMEOUT.
const DownloadBudget = 5 * time.Minute

// maxRounds is how many times one URL is tried over both channels before
// the next URL is: WALinuxAgent's DEFAULT_RETRIES.
const maxRounds = 6

// invalidContainer is what the HostGAPlugin answers, with 400, to a
// request built from a stale goal state.
const invalidContainer = "InvalidContainerConfiguration"

// Fetcher downloads manifests and packages: directly first, then through
// the HostGAPlugin, as WALinuxAgent's download does when the direct
// request fails; both again, after a pause, while the failure is one
// that can pass (a 503, a refused connection), within DownloadBudget.
type Fetcher struct {
	HTTP *http.Client
	// ViaHostPlugin builds the HostGAPlugin request for url (see
	// wire.Client.ArtifactRequest); nil disables the fallback.
	ViaHostPlugin func(ctx context.Context, url string) (*http.Request, error)
	// Refresh fetches the goal state again, for when the HostGAPlugin says
	// the one its request was built from is stale (410 Gone, or 400
	// InvalidContainerConfiguration); the request is then made once more.
	Refresh func(ctx context.Context) error
	// Delay is the pause before the first retry (1 s when zero); the next
	// ones grow as Fibonacci's numbers (1, 1, 2, 3, 5 times Delay), as
	// WALinuxAgent's do, or are as long as a Retry-After asks.
	Delay time.Duration
}

// Get returns the body of url, at most limit bytes: directly, else through
// the HostGAPlugin; both again after a pause while a failure may pass, up
// to maxRounds times and ctx's deadline.
func (f *Fetcher) Get(ctx context.Context, url string, limit int64) ([]byte, error) {
	delay := f.Delay
	if delay == 0 {
		delay = time.Second
	}
	prev := time.Duration(0)
	for round := 1; ; round++ {
		body, err := f.getOnce(ctx, url, limit)
		if err == nil || !retryable(err) || round == maxRounds {
			return body, err
		}
		wait := max(delay, retryAfter(err))
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return nil, fmt.Errorf("%w; no time left to try again within the download's %s", err, DownloadBudget)
		}
		if pause.For(ctx, wait) != nil {
			return nil, err
		}
		delay, prev = delay+prev, delay
	}
}

// getOnce tries url directly, then through the HostGAPlugin.
func (f *Fetcher) getOnce(ctx context.Context, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("download %s: %v", redact(url), err)
	}
	body, direct := f.do(req, limit)
	if direct == nil || f.ViaHostPlugin == nil || ctx.Err() != nil {
		return body, direct
	}
	body, err = f.viaHostPlugin(ctx, url, limit)
	if err != nil {
		return nil, &fetchError{msg: fmt.Sprintf("%v; through the HostGAPlugin: %v", direct, err),
			retry: retryable(direct) || retryable(err), after: max(retryAfter(direct), retryAfter(err))}
	}
	return body, nil
}

// viaHostPlugin downloads url through the HostGAPlugin, refreshing the
// goal state once when the HostGAPlugin says it is stale.
func (f *Fetcher) viaHostPlugin(ctx context.Context, url string, limit int64) ([]byte, error) {
	req, err := f.ViaHostPlugin(ctx, url)
	if err != nil {
		return nil, err
	}
	body, err := f.do(req, limit)
	var fe *fetchError
	if err == nil || f.Refresh == nil || !errors.As(err, &fe) || !fe.stale {
		return body, err
	}
	if rerr := f.Refresh(ctx); rerr != nil {
		return nil, fmt.Errorf("%v; fetching a new goal state: %v", err, rerr)
	}
	if req, err = f.ViaHostPlugin(ctx, url); err != nil {
		return nil, err
	}
	return f.do(req, limit)
}

// fetchError is a failed download: whether trying again may help, how
// long the server asked to wait, and whether the HostGAPlugin said the
// goal state the request came from is stale.
type fetchError struct {
	msg   string
	retry bool
	after time.Duration
	stale bool
}

func (e *fetchError) Error() string { return e.msg }

func retryable(err error) bool {
	var fe *fetchError
	return errors.As(err, &fe) && fe.retry
}

func retryAfter(err error) time.Duration {
	var fe *fetchError
	if errors.As(err, &fe) {
		return fe.after
	}
	return 0
}

// retryStatus are the answers WALinuxAgent tries again after
// (restutil.RETRY_CODES); through the HostGAPlugin a 400 too, whose cache
// can answer it for a valid artifact for a while.
func retryStatus(code int, hostPlugin bool) bool {
	switch code {
	case http.StatusForbidden, http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusNotImplemented,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusInsufficientStorage:
		return true
	}
	return hostPlugin && code == http.StatusBadRequest
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

func (f *Fetcher) do(req *http.Request, limit int64) ([]byte, error) {
	what := redact(req.URL.String())
	hostPlugin := req.Header.Get("x-ms-artifact-location") != ""
	if hostPlugin {
		what = redact(req.Header.Get("x-ms-artifact-location")) + " through the HostGAPlugin"
	}
	c := f.HTTP
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		// A refused or dropped connection may pass; a bad URL or a
		// cancelled download will not.
		var ne net.Error
		retry := req.Context().Err() == nil && (errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF))
		return nil, &fetchError{msg: fmt.Sprintf("download %s: %v", what, errors.Unwrap(err)), retry: retry}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// The answer's text says why (InvalidContainerConfiguration...).
		text, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		stale := hostPlugin && (resp.StatusCode == http.StatusGone ||
			resp.StatusCode == http.StatusBadRequest && strings.Contains(string(text), invalidContainer))
		return nil, &fetchError{msg: fmt.Sprintf("download %s: HTTP %s", what, resp.Status),
			retry: !stale && retryStatus(resp.StatusCode, hostPlugin), after: parseRetryAfter(resp.Header.Get("Retry-After")), stale: stale}
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("download %s: %d bytes, more than %d", what, resp.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, &fetchError{msg: fmt.Sprintf("download %s: %v", what, err), retry: true}
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("download %s: more than %d bytes", what, limit)
	}
	return b, nil
}

// Package downloads the package of p's goal-state version: the manifest
// from the first of p's locations that answers, then the version's first
// package URL that downloads, all within DownloadBudget.
func (f *Fetcher) Package(ctx context.Context, p extconf.Plugin) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, DownloadBudget)
	defer cancel()
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

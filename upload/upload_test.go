package upload

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/vhdprep/vhdprep/raw"
)

// sleeps records the delays an upload asked for instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func TestUploadMemBlob(t *testing.T) {
	file := makeVHD(t, testSize, sampleWrites(testSize))
	mb := newMemBlob(0)
	mb.exists = false
	sum, err := Upload(context.Background(), Options{File: file, Blob: mb, Verify: true, ContentMD5: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(file)
	if !bytes.Equal(mb.data, want) || !bytes.Equal(mb.md5, fileMD5(t, file)) || !sum.Verified {
		t.Fatalf("the blob differs from the file, or its MD5 %x is not the file's", mb.md5)
	}
	if mb.metadata[metaFingerprint] == "" || mb.metadata[metaSize] != fmt.Sprint(testSize+PageSize) {
		t.Errorf("metadata %v", mb.metadata)
	}
}

// cancelIn is a Blob that cancels the upload, as Ctrl-C would, when the
// named step begins, and fails that step with the context's error.
type cancelIn struct {
	*memBlob
	step   string
	cancel context.CancelFunc
}

func (c *cancelIn) stop(ctx context.Context, step string) error {
	if step != c.step {
		return nil
	}
	c.cancel()
	return ctx.Err()
}

func (c *cancelIn) Properties(ctx context.Context) (*Properties, error) {
	if err := c.stop(ctx, "properties"); err != nil {
		return nil, err
	}
	return c.memBlob.Properties(ctx)
}

func (c *cancelIn) SetContentMD5(ctx context.Context, sum []byte) error {
	if err := c.stop(ctx, "md5"); err != nil {
		return err
	}
	return c.memBlob.SetContentMD5(ctx, sum)
}

func (c *cancelIn) ReadAt(ctx context.Context, p []byte, off int64) error {
	if err := c.stop(ctx, "verify"); err != nil {
		return err
	}
	return c.memBlob.ReadAt(ctx, p, off)
}

// TestInterruptedAtEveryStep: Ctrl-C before, during and after the data
// is ErrInterrupted, which the command turns into how to resume.
func TestInterruptedAtEveryStep(t *testing.T) {
	file := makeVHD(t, testSize, sampleWrites(testSize))
	for _, step := range []string{"properties", "md5", "verify"} {
		ctx, cancel := context.WithCancel(context.Background())
		mb := newMemBlob(0)
		mb.exists = false
		_, err := Upload(ctx, Options{File: file, Blob: &cancelIn{memBlob: mb, step: step, cancel: cancel}, Verify: true, ContentMD5: true}, nil)
		cancel()
		if !errors.Is(err, ErrInterrupted) {
			t.Errorf("cancelled in %s: %v, want ErrInterrupted", step, err)
		}
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	file := makeVHD(t, testSize, []write{{Offset: 0, Length: 4096}})
	mb := newMemBlob(0)
	mb.exists = false
	mb.fail = func(n int) error {
		if n <= 2 {
			return &ResponseError{StatusCode: http.StatusServiceUnavailable, Code: "ServerBusy", RetryAfter: 7 * time.Second}
		}
		return nil
	}
	var s sleeps
	o := Options{File: file, Blob: mb, RetryDelay: time.Millisecond, sleep: s.sleep}
	sum, err := Upload(context.Background(), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.d) != 2 || s.d[0] < 7*time.Second || s.d[1] < 7*time.Second {
		t.Errorf("waited %v between tries, want twice at least the 7 s Retry-After asked for", s.d)
	}
	if sum.Retries != 2 || sum.Throttled != 2 || sum.Requests != 2 { // the data page and the footer
		t.Errorf("summary: %d retries, %d throttled, %d requests", sum.Retries, sum.Throttled, sum.Requests)
	}
}

func TestRetryStops(t *testing.T) {
	file := makeVHD(t, testSize, []write{{Offset: 0, Length: 4096}})
	for name, tc := range map[string]struct {
		err   error
		tries int
	}{
		"forbidden":        {&ResponseError{StatusCode: http.StatusForbidden, Code: "AuthorizationFailure"}, 1},
		"internal error":   {&ResponseError{StatusCode: http.StatusInternalServerError, Code: "InternalError"}, 4},
		"connection reset": {&url.Error{Op: "Put", URL: "http://x", Err: syscall.ECONNRESET}, 4},
		"refused":          {&url.Error{Op: "Put", URL: "http://x", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}, 1},
	} {
		t.Run(name, func(t *testing.T) {
			mb := newMemBlob(0)
			mb.exists = false
			mb.fail = func(int) error { return tc.err }
			var s sleeps
			_, err := Upload(context.Background(), Options{File: file, Blob: mb, Concurrency: 1, MaxAttempts: 4, sleep: s.sleep}, nil)
			if err == nil || mb.puts != tc.tries {
				t.Fatalf("%d tries, error %v; want %d tries and an error", mb.puts, err, tc.tries)
			}
			if tc.tries > 1 && !strings.Contains(err.Error(), "giving up after 4 tries") {
				t.Errorf("error %q does not say it gave up", err)
			}
		})
	}
}

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		err              error
		retry, throttled bool
	}{
		{&ResponseError{StatusCode: 429}, true, true},
		{&ResponseError{StatusCode: 503, Code: "ServerBusy"}, true, true},
		{&ResponseError{StatusCode: 500, Code: "OperationTimedOut"}, true, false},
		{&ResponseError{StatusCode: 408}, true, false},
		{&ResponseError{StatusCode: 502}, true, false},
		{&ResponseError{StatusCode: 400, Code: "Md5Mismatch"}, true, false},
		{&ResponseError{StatusCode: 400, Code: "InvalidPageRange"}, false, false},
		{&ResponseError{StatusCode: 403}, false, false},
		{&ResponseError{StatusCode: 409, Code: "LeaseIdMissing"}, false, false},
		{fmt.Errorf("put: %w", context.DeadlineExceeded), true, false},
		{context.Canceled, false, false},
		{&url.Error{Op: "Put", URL: "u", Err: io.EOF}, true, false},
		{&url.Error{Op: "Put", URL: "u", Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}, true, false},
		{&url.Error{Op: "Put", URL: "htps://a/b", Err: errors.New(`unsupported protocol scheme "htps"`)}, false, false},
		{&url.Error{Op: "Put", URL: "u", Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}}, false, false},
		{&ResponseError{StatusCode: 410}, false, false},
		{&ResponseError{StatusCode: 404}, false, false},
		{&url.Error{Op: "Get", URL: "u", Err: &net.DNSError{Err: "no such host", IsNotFound: true}}, false, false},
		{errors.New("signing in: no credential"), false, false},
		{&url.Error{Op: "Put", URL: "u", Err: &signInError{&url.Error{Op: "Get", URL: "imds", Err: errors.New("EOF")}}}, false, false},
	} {
		retry, throttled, _ := transient(tc.err)
		if retry != tc.retry || throttled != tc.throttled {
			t.Errorf("transient(%v) = %v, %v; want %v, %v", tc.err, retry, throttled, tc.retry, tc.throttled)
		}
	}
}

// A request that can never succeed (here an unknown URL scheme, as the
// real HTTP client reports it) is tried once, not until the retries run out.
func TestPermanentErrorsAreTriedOnce(t *testing.T) {
	o := Options{MaxAttempts: 5, RetryDelay: time.Millisecond, MaxRetryDelay: time.Millisecond, TryTimeout: time.Second,
		sleep: func(context.Context, time.Duration) error { return nil }}
	tries := 0
	err := retry(context.Background(), &o, nil, "put", func(ctx context.Context) error {
		tries++
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, "htps://account.blob.core.windows.net/c/b.vhd", nil)
		if err != nil {
			return err
		}
		_, err = http.DefaultClient.Do(req)
		return err
	})
	if err == nil || tries != 1 {
		t.Fatalf("%d tries, error %v; want one try and an error", tries, err)
	}
}

func TestBackoff(t *testing.T) {
	o := Options{RetryDelay: 100 * time.Millisecond, MaxRetryDelay: time.Second}
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 60: time.Second} {
		for range 20 {
			if d := o.backoff(attempt, 0); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
	if d := o.backoff(1, 30*time.Second); d != 30*time.Second {
		t.Errorf("backoff with Retry-After 30s = %v", d)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		" 10 ":                          10 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Wed, 01 Jan 2025 00:00:20 GMT": 20 * time.Second,
		"Tue, 31 Dec 2024 00:00:00 GMT": 0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestLimiter(t *testing.T) {
	ctx := context.Background()
	l := newLimiter(8)
	var gens []uint64
	for range 8 {
		g, err := l.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		gens = append(gens, g)
	}
	// Two throttled tries from the same round cut once.
	l.release(gens[0], false, true)
	l.release(gens[1], false, true)
	if l.limit != 4 {
		t.Fatalf("limit %d after one round of throttling, want 4", l.limit)
	}
	// Six tries still run: no slot until four are done.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := l.acquire(short); err == nil {
		t.Fatal("a ninth try ran past the lowered limit")
	}
	for _, g := range gens[2:] {
		l.release(g, true, false)
	}
	if l.limit != 5 || l.lowest() != 4 {
		t.Errorf("limit %d (lowest %d) after a round of successes, want 5 (4)", l.limit, l.lowest())
	}
}

func TestPageSpansAndSplit(t *testing.T) {
	got := pageSpans(spans{{1, 10}, {511, 2}, {1024, 1}, {3000, 100}}.ext(), 4096)
	want := spans{{0, 1536}, {2560, 1024}}.ext()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pageSpans = %v, want %v", got, want)
	}
	p := &pipeline{dest: &destination{have: spans{{512, 512}, {2048, 1024}}.ext()}}
	var pieces []string
	for _, r := range [][2]int64{{0, 1024}, {1024, 2560}, {2560, 4096}} {
		p.split(r[0], r[1], func(a, b int64, in bool) error {
			pieces = append(pieces, fmt.Sprintf("%d-%d:%v", a, b, in))
			return nil
		})
	}
	if s := strings.Join(pieces, " "); s != "0-512:false 512-1024:true 1024-2048:false 2048-2560:true 2560-3072:true 3072-4096:false" {
		t.Errorf("split: %s", s)
	}
}

func TestCheckRange(t *testing.T) {
	for _, tc := range []struct {
		off, n int64
		put    bool
		ok     bool
	}{
		{0, 512, true, true},
		{0, MaxPutPage, true, true},
		{0, MaxPutPage + 512, true, false},
		{0, MaxPutPage + 512, false, true},
		{100, 512, true, false},
		{0, 700, true, false},
		{8<<20 - 512, 1024, true, false},
		{0, 0, true, false},
	} {
		if err := checkRange(tc.off, tc.n, 8<<20, tc.put); (err == nil) != tc.ok {
			t.Errorf("checkRange(%d, %d, put %v) = %v", tc.off, tc.n, tc.put, err)
		}
	}
}

// TestPreflightRefuses: what Azure would refuse is refused before anything
// is created, with an error naming the file and the command that fixes it
// (diskimage.AzureVerdict, which info and check report too).
func TestPreflightRefuses(t *testing.T) {
	dir := t.TempDir()
	rawDisk := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(rawDisk, make([]byte, testSize), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, fix string
	}{
		{rawDisk, "vhdprep convert"},
		{makeVHD(t, testSize+PageSize, nil), "vhdprep resize"},
		{makeVHD(t, 16<<20, nil), "vhdprep resize"},
		{filepath.Join(dir, "missing.vhd"), "missing.vhd"},
	} {
		mb := newMemBlob(0)
		mb.exists = false
		_, err := Upload(context.Background(), Options{File: tc.file, Blob: mb}, nil)
		if err == nil || mb.exists {
			t.Errorf("%s: uploaded (%v)", filepath.Base(tc.file), err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.file) || !strings.Contains(msg, tc.fix) {
			t.Errorf("%s: error %q does not name the file and %q", filepath.Base(tc.file), msg, tc.fix)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://a.blob.core.windows.net/c/b?sv=2024&sig=abc%2Bdef&se=x": "https://a.blob.core.windows.net/c/b?sv=2024&sig=REDACTED&se=x",
		`Put "http://h/c/b?SIG=abc": EOF`:                                `Put "http://h/c/b?SIG=REDACTED": EOF`,
		"AccountName=a;AccountKey=k3y==;EndpointSuffix=core":             "AccountName=a;AccountKey=REDACTED;EndpointSuffix=core",
		"BlobEndpoint=x;SharedAccessSignature=sv=1&sig=s&sp=r;":          "BlobEndpoint=x;SharedAccessSignature=REDACTED;",
		"designation=keep": "designation=keep",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	r := newRedactor(Target{BlobURL: "https://h/c/b?sig=c2VjcmV0+c2lnbmF0dXJl"})
	if got := r.string("server said: bad signature c2VjcmV0 c2lnbmF0dXJl / c2VjcmV0+c2lnbmF0dXJl"); strings.Contains(got, "c2VjcmV0+c2lnbmF0dXJl") {
		t.Errorf("a bare secret survived: %s", got)
	}
}

// tokenCredential hands out a fixed token.
type tokenCredential string

func (c tokenCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(c), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// failingCredential fails as the SDK's credentials do: a page of text.
type failingCredential struct{}

func (failingCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, errors.New("FakeCredential: failed.\n\tno identity here\n\t-----\n\tTo troubleshoot, visit https://example.com")
}

// bearerServer is an HTTPS blob endpoint that records the Authorization
// header and knows no blobs.
func bearerServer(t *testing.T) (*httptest.Server, func() string) {
	var mu sync.Mutex
	var auth string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = r.Header.Get("Authorization")
		mu.Unlock()
		w.Header().Set("x-ms-error-code", "BlobNotFound")
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	return srv, func() string {
		mu.Lock()
		defer mu.Unlock()
		return auth
	}
}

func TestPlainURLSignsInWithAzureAD(t *testing.T) {
	t.Run("credential", func(t *testing.T) {
		srv, auth := bearerServer(t)
		b, err := NewAzureBlob(Target{BlobURL: srv.URL + "/vhds/disk.vhd", Credential: tokenCredential("given-token"), HTTPClient: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Properties(context.Background()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("properties: %v", err)
		}
		if got := auth(); got != "Bearer given-token" {
			t.Errorf("Authorization %q", got)
		}
	})
	t.Run("sign-in fails", func(t *testing.T) {
		srv, auth := bearerServer(t)
		b, err := NewAzureBlob(Target{BlobURL: srv.URL + "/vhds/disk.vhd", Credential: failingCredential{}, HTTPClient: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Properties(context.Background())
		if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "no identity here") || !strings.Contains(err.Error(), "az login") {
			t.Errorf("error %q: want one line with the credential's reason and what to do", err)
		}
		if auth() != "" {
			t.Errorf("a request went out without a token: Authorization %q", auth())
		}
	})
	t.Run("DefaultAzureCredential", func(t *testing.T) {
		// DefaultAzureCredential, told to use the Azure CLI, runs `az`: a fake one.
		bin := t.TempDir()
		script := "#!/bin/sh\necho '{\"accessToken\":\"cli-token\",\"expires_on\":4102444800}'\n"
		if err := os.WriteFile(filepath.Join(bin, "az"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		t.Setenv("AZURE_TOKEN_CREDENTIALS", "AzureCLICredential")
		srv, auth := bearerServer(t)
		b, err := NewAzureBlob(Target{BlobURL: srv.URL + "/vhds/disk.vhd", HTTPClient: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Properties(context.Background()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("properties: %v", err)
		}
		if got := auth(); got != "Bearer cli-token" {
			t.Errorf("Authorization %q", got)
		}
	})
}

// spans is a short way to write extents: {offset, length} pairs.
type spans [][2]int64

func (s spans) ext() []raw.Extent {
	out := make([]raw.Extent, len(s))
	for i, e := range s {
		out[i] = raw.Extent{Offset: e[0], Length: e[1]}
	}
	return out
}

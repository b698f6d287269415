package upload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/pageblob"

	"github.com/vhdprep/vhdprep/raw"
)

// ErrTarget is a destination given wrongly.
var ErrTarget = errors.New("no usable destination")

// Target says where to upload and how to sign in: one of a blob URL, a
// connection string with container and blob names, or a managed disk's SAS.
type Target struct {
	// BlobURL is a page blob's URL, with a SAS (…?sv=…&sig=…), or plain:
	// then Credential, or azidentity's DefaultAzureCredential (az login,
	// managed identity, environment, workload identity), signs requests.
	BlobURL string
	// ConnectionString is a storage account's, with an account key or SAS.
	ConnectionString, Container, Blob string
	// ManagedDiskSAS is the write SAS of a managed disk created for upload
	// (az disk create --upload-type Upload; az disk grant-access --access-level Write).
	ManagedDiskSAS string

	Credential azcore.TokenCredential // for a plain BlobURL; nil: DefaultAzureCredential
	HTTPClient *http.Client           // nil: one that keeps a connection per worker
}

// ManagedDisk tells whether the target is a managed disk.
func (t Target) ManagedDisk() bool { return t.ManagedDiskSAS != "" }

// azureBlob is a Blob on Azure Storage (or Azurite) through azblob.
type azureBlob struct {
	c      *pageblob.Client
	name   string // the URL, redacted
	redact redactor
	// container is the blob's container with the same credential; nil
	// for a managed disk, which has none.
	container *container.Client
}

// NewAzureBlob connects to the target's blob. Requests are not retried
// below Upload, which retries them itself and learns from throttling.
func NewAzureBlob(t Target) (Blob, error) {
	red := newRedactor(t)
	hc := t.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 256 // one per worker, at any --concurrency a user would pick
		tr.ResponseHeaderTimeout = DefaultTryTimeout
		hc = &http.Client{Transport: tr}
	}
	opts := &pageblob.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry:     policy.RetryOptions{MaxRetries: -1},
		Transport: hc,
		Telemetry: policy.TelemetryOptions{ApplicationID: "vhdprep"},
	}}
	var (
		c   *pageblob.Client
		cc  *container.Client
		err error
	)
	copts := &container.ClientOptions{ClientOptions: opts.ClientOptions}
	given := 0
	for _, s := range []string{t.BlobURL, t.ConnectionString, t.ManagedDiskSAS} {
		if s != "" {
			given++
		}
	}
	switch {
	case given != 1:
		return nil, fmt.Errorf("%w: give one of a blob URL, a connection string, or a managed disk SAS", ErrTarget)
	case t.ConnectionString != "":
		if t.Container == "" || t.Blob == "" {
			return nil, fmt.Errorf("%w: a connection string needs a container and a blob name", ErrTarget)
		}
		c, err = pageblob.NewClientFromConnectionString(t.ConnectionString, t.Container, t.Blob, opts)
		if err == nil {
			cc, err = container.NewClientFromConnectionString(t.ConnectionString, t.Container, copts)
		}
	case t.ManagedDiskSAS != "":
		if !hasSAS(t.ManagedDiskSAS) {
			return nil, fmt.Errorf("%w: the managed disk URL has no SAS (sig=); get one with az disk grant-access --access-level Write", ErrTarget)
		}
		c, err = pageblob.NewClientWithNoCredential(t.ManagedDiskSAS, opts)
	case hasSAS(t.BlobURL):
		c, err = pageblob.NewClientWithNoCredential(t.BlobURL, opts)
		if err == nil {
			cc, err = container.NewClientWithNoCredential(containerURL(t.BlobURL), copts)
		}
	default:
		cred := t.Credential
		if cred == nil {
			cred, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
				ClientOptions: azcore.ClientOptions{Transport: hc},
			})
			if err != nil {
				return nil, red.error(fmt.Errorf("signing in to Azure: %w", err))
			}
		}
		c, err = pageblob.NewClient(t.BlobURL, signIn{cred}, opts)
		if err == nil {
			cc, err = container.NewClient(containerURL(t.BlobURL), signIn{cred}, copts)
		}
	}
	if err != nil {
		return nil, red.error(fmt.Errorf("%w: %w", ErrTarget, err))
	}
	return &azureBlob{c: c, name: red.string(withoutQuery(c.URL())), redact: red, container: cc}, nil
}

// containerURL is the URL of a blob's container, with the blob's SAS.
func containerURL(blobURL string) string {
	parts, err := blob.ParseURL(blobURL)
	if err != nil {
		return blobURL // the blob client has refused it already
	}
	parts.BlobName, parts.Snapshot, parts.VersionID = "", "", ""
	return parts.String()
}

// signIn marks the credential's errors, which the SDK returns as a page of
// text, so that fail can make them one line that says what to do.
type signIn struct{ azcore.TokenCredential }

func (s signIn) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := s.TokenCredential.GetToken(ctx, o)
	if err != nil {
		err = &signInError{err}
	}
	return tok, err
}

type signInError struct{ err error }

// Error keeps what each credential said, one after another, without the
// SDK's rules and troubleshooting links.
func (e *signInError) Error() string {
	var parts []string
	for line := range strings.Lines(e.err.Error()) {
		line = strings.TrimSpace(line)
		if line != "" && strings.Trim(line, "-") != "" && !strings.HasPrefix(line, "To troubleshoot") {
			parts = append(parts, line)
		}
	}
	return "signing in to Azure AD: " + strings.Join(parts, " ") +
		"; sign in with az login (or a managed or workload identity with Storage Blob Data Contributor), or give a SAS URL"
}

func (e *signInError) Unwrap() error { return e.err }

// withoutQuery names a blob by its URL without the SAS, which is noise
// in messages even with its signature redacted.
func withoutQuery(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return Redact(u)
	}
	parsed.RawQuery, parsed.Fragment = "", ""
	return parsed.String()
}

func hasSAS(u string) bool {
	parsed, err := url.Parse(u)
	return err == nil && parsed.Query().Has("sig")
}

func (b *azureBlob) String() string { return b.name }

// fail turns the SDK's errors into upload's: a ResponseError for a status
// (whose message names no URL), others redacted.
func (b *azureBlob) fail(err error) error {
	if err == nil {
		return nil
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		e := &ResponseError{StatusCode: re.StatusCode, Code: re.ErrorCode}
		if re.RawResponse != nil {
			e.RetryAfter = retryAfter(re.RawResponse.Header.Get("Retry-After"), time.Now())
			if e.Code == "" {
				e.Code = re.RawResponse.Header.Get("x-ms-error-code")
			}
		}
		return e
	}
	return b.redact.error(err)
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func (b *azureBlob) Properties(ctx context.Context) (*Properties, error) {
	resp, err := b.c.GetProperties(ctx, nil)
	if err != nil {
		err = b.fail(err)
		var re *ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound && re.Code != "ContainerNotFound" {
			return nil, ErrNotFound
		}
		return nil, err
	}
	p := &Properties{Metadata: map[string]string{}}
	if resp.ContentLength != nil {
		p.Size = *resp.ContentLength
	}
	for k, v := range resp.Metadata {
		if v != nil {
			p.Metadata[strings.ToLower(k)] = *v
		}
	}
	return p, nil
}

// Container implements ContainerCreator.
func (b *azureBlob) Container() string {
	parts, err := blob.ParseURL(b.c.URL())
	if err != nil {
		return ""
	}
	return parts.ContainerName
}

// CreateContainer implements ContainerCreator; a container another client
// created meanwhile is as good.
func (b *azureBlob) CreateContainer(ctx context.Context) error {
	if b.container == nil {
		return fmt.Errorf("%w: a managed disk has no container", ErrTarget)
	}
	_, err := b.container.Create(ctx, nil)
	var re *ResponseError
	if err = b.fail(err); errors.As(err, &re) && re.Code == "ContainerAlreadyExists" {
		return nil
	}
	return err
}

func (b *azureBlob) Create(ctx context.Context, size int64, metadata map[string]string) error {
	md := make(map[string]*string, len(metadata))
	for k, v := range metadata {
		md[k] = &v
	}
	_, err := b.c.Create(ctx, size, &pageblob.CreateOptions{Metadata: md})
	return b.fail(err)
}

func (b *azureBlob) PageRanges(ctx context.Context) ([]raw.Extent, error) {
	var out []raw.Extent
	pager := b.c.NewGetPageRangesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, b.fail(err)
		}
		for _, r := range page.PageRange {
			if r != nil && r.Start != nil && r.End != nil && *r.End >= *r.Start {
				out = append(out, raw.Extent{Offset: *r.Start, Length: *r.End - *r.Start + 1})
			}
		}
	}
	return out, nil
}

func (b *azureBlob) PutPages(ctx context.Context, off int64, p []byte, md5 []byte) error {
	_, err := b.c.UploadPages(ctx, streaming.NopCloser(bytes.NewReader(p)),
		blob.HTTPRange{Offset: off, Count: int64(len(p))},
		&pageblob.UploadPagesOptions{TransactionalValidation: blob.TransferValidationTypeMD5(md5)})
	return b.fail(err)
}

func (b *azureBlob) ClearPages(ctx context.Context, off, n int64) error {
	_, err := b.c.ClearPages(ctx, blob.HTTPRange{Offset: off, Count: n}, nil)
	return b.fail(err)
}

func (b *azureBlob) SetContentMD5(ctx context.Context, sum []byte) error {
	_, err := b.c.SetHTTPHeaders(ctx, blob.HTTPHeaders{BlobContentMD5: sum}, nil)
	return b.fail(err)
}

func (b *azureBlob) ReadAt(ctx context.Context, p []byte, off int64) error {
	resp, err := b.c.DownloadStream(ctx, &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: off, Count: int64(len(p))}})
	if err != nil {
		return b.fail(err)
	}
	defer resp.Body.Close()
	_, err = io.ReadFull(resp.Body, p)
	return b.fail(err)
}

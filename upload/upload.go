// Package upload writes a fixed VHD to an Azure page blob or managed disk,
// sending only the 512-byte pages that hold data: holes are skipped without
// being read (SEEK_DATA/SEEK_HOLE) and zero pages inside data without being
// sent. Requests run in parallel with transactional MD5s, are retried with
// backoff that honours Retry-After, and run fewer at a time when the service
// throttles. An interrupted upload resumes from the blob's page ranges, and
// the whole file's MD5, computed in the same pass that reads the data, is
// recorded as the blob's Content-MD5.
package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/vhdprep/vhdprep/diskimage"
	"github.com/vhdprep/vhdprep/internal/pause"
	"github.com/vhdprep/vhdprep/progress"
	"github.com/vhdprep/vhdprep/raw"
)

// Azure's rules for Put Page, which vhdprep enforces itself since the local
// emulator is more lenient than the service.
const (
	PageSize   = 512     // every range starts and ends on a page boundary
	MaxPutPage = 4 << 20 // the largest body one Put Page takes
)

// Defaults.
const (
	DefaultConcurrency = 16 // 64 MiB of requests in flight: enough for a 1 Gbit/s link at 40 ms
	DefaultMaxAttempts = 10
	DefaultRetryDelay  = time.Second
	DefaultMaxDelay    = time.Minute
	DefaultTryTimeout  = 3 * time.Minute // one 4 MiB request, at ~25 KiB/s at worst
)

// Errors.
var (
	ErrNotFound    = errors.New("blob not found")
	ErrOtherFile   = errors.New("the blob holds another file")
	ErrDiskSize    = errors.New("the managed disk's size differs from the file's")
	ErrInterrupted = errors.New("upload interrupted")
	ErrMismatch    = errors.New("the blob differs from the file")
)

// Properties is what an upload needs to know about an existing blob.
type Properties struct {
	Size     int64
	Metadata map[string]string // keys in lower case
}

// Blob is the destination: a page blob or a managed disk. Offsets and
// lengths given to it are multiples of PageSize; Upload checks that, and
// MaxPutPage, before calling PutPages.
type Blob interface {
	// String names the blob for messages, without secrets.
	String() string
	// Properties returns the blob's size and metadata, or ErrNotFound.
	Properties(ctx context.Context) (*Properties, error)
	// Create makes an empty page blob of size bytes, replacing any blob of
	// that name.
	Create(ctx context.Context, size int64, metadata map[string]string) error
	// PageRanges lists, in ascending order, the ranges that hold data.
	PageRanges(ctx context.Context) ([]raw.Extent, error)
	// PutPages writes p at off; md5 is p's MD5, for the service to check.
	PutPages(ctx context.Context, off int64, p []byte, md5 []byte) error
	// ClearPages turns n bytes at off back into zeros.
	ClearPages(ctx context.Context, off, n int64) error
	// SetContentMD5 records the MD5 of the whole blob.
	SetContentMD5(ctx context.Context, sum []byte) error
	// ReadAt fills p from the blob at off.
	ReadAt(ctx context.Context, p []byte, off int64) error
}

// ContainerCreator is a Blob whose container may be missing: Upload then
// creates it, as azcopy does, where the credential may.
type ContainerCreator interface {
	// Container names the blob's container.
	Container() string
	// CreateContainer creates it; one that exists already is no error.
	CreateContainer(ctx context.Context) error
}

// Options say what to upload where.
type Options struct {
	File string // a fixed VHD
	Blob Blob

	// ManagedDisk: the destination exists with the file's exact size; it is
	// not created, and has neither metadata nor a Content-MD5.
	ManagedDisk bool
	// Overwrite replaces a blob that holds another file.
	Overwrite bool
	// Verify reads the blob back and compares it with the file.
	Verify bool
	// ContentMD5 records the whole file's MD5 as the blob's Content-MD5 (not
	// on a managed disk, which has none). The service checks each request's
	// own MD5 either way; this one is a record for later downloads, and it
	// costs CPU for every byte of the disk, holes included.
	ContentMD5 bool
	// BootsGen2 tells, for a disk above 2 TiB, whether it boots through
	// UEFI (diskimage.Container); nil when the caller cannot tell.
	BootsGen2 func() (bool, string)

	Concurrency   int           // requests in flight at most; DefaultConcurrency if 0
	MaxAttempts   int           // tries per request; DefaultMaxAttempts if 0
	RetryDelay    time.Duration // first backoff; DefaultRetryDelay if 0
	MaxRetryDelay time.Duration // backoff cap (Retry-After may ask for more); DefaultMaxDelay if 0
	TryTimeout    time.Duration // one request's deadline; DefaultTryTimeout if 0

	// Logf, when set, is told each step, and each retry and throttle with
	// its reason and the wait (vhdprep -v). What it is given names the blob
	// without its query and errors redacted, so it holds no secret.
	Logf func(format string, args ...any)

	// sleep waits between tries; tests replace it to see the delays.
	sleep func(ctx context.Context, d time.Duration) error
}

// Summary says what an upload did. On error it holds what was done so far.
type Summary struct {
	File        string `json:"image"`
	Blob        string `json:"blob"`                      // its URL without the query
	VirtualSize int64  `json:"virtual_size_bytes,string"` // the disk, without the footer
	FileSize    int64  `json:"file_size_bytes,string"`    // what the blob holds: disk and footer

	DataBytes    int64 `json:"data_bytes,string"`    // bytes the file's data extents cover
	ZeroBytes    int64 `json:"zero_bytes,string"`    // zero pages inside those extents, not sent
	PresentBytes int64 `json:"present_bytes,string"` // data already in the blob (resume), not sent
	SentBytes    int64 `json:"sent_bytes,string"`    // request bodies, retries included
	ClearedBytes int64 `json:"cleared_bytes,string"` // destination data cleared where the file is zero

	Requests  int64 `json:"requests"`  // Put Page and Clear Pages requests that succeeded
	Retries   int64 `json:"retries"`   // tries that failed and were repeated
	Throttled int64 `json:"throttled"` // of those, the ones the service refused as too busy

	Concurrency    int `json:"concurrency"`     // at the start
	MinConcurrency int `json:"min_concurrency"` // lowest it went after throttling

	Resumed          bool    `json:"resumed"`
	ContainerCreated bool    `json:"container_created"`     // it was missing, and Upload created it
	ContentMD5       []byte  `json:"content_md5,omitempty"` // with Options.ContentMD5; base64 in JSON, as Azure shows it
	Verified         bool    `json:"verified"`
	Seconds          float64 `json:"elapsed_seconds"`
	Throughput       float64 `json:"data_bytes_per_second"` // data bytes (sent or found present) per second
}

// Upload writes o.File to o.Blob. Progress counts the bytes of the file's
// data extents as they are sent, found present, or found to be zeros.
func Upload(ctx context.Context, o Options, pr progress.Reporter) (*Summary, error) {
	start := time.Now()
	o.defaults()
	sum := &Summary{File: o.File, Blob: o.Blob.String(), Concurrency: o.Concurrency, MinConcurrency: o.Concurrency}
	defer func() {
		sum.Seconds = time.Since(start).Seconds()
		if sum.Seconds > 0 {
			sum.Throughput = float64(sum.DataBytes-sum.ZeroBytes) / sum.Seconds
		}
	}()

	im, err := diskimage.Open(o.File)
	if err != nil {
		return sum, fmt.Errorf("upload: %w", err)
	}
	defer im.Close()
	o.logf("opened %s: format %s, %d bytes", o.File, im.Format, im.FileSize)
	// What Azure would refuse is refused before anything is created, in
	// the words info and check use.
	if err := diskimage.AzureVerdict(im.Container(o.BootsGen2)).Err(); err != nil {
		return sum, fmt.Errorf("upload %s: %w", o.File, err)
	}
	f, size := im.File(), im.FileSize
	st, err := f.Stat()
	if err != nil {
		return sum, fmt.Errorf("upload: %w", err)
	}
	sum.FileSize, sum.VirtualSize = size, im.Footer.CurrentSize
	o.logf("Azure's verdict on %s: valid; uploading to %s", o.File, o.Blob)
	id, err := identify(f, size, st.ModTime())
	if err != nil {
		return sum, fmt.Errorf("upload %s: %w", o.File, err)
	}

	dest, err := prepare(ctx, o, id, sum)
	if err != nil {
		return sum, fmt.Errorf("upload %s to %s: %w", o.File, o.Blob, interrupted(ctx, err))
	}
	// The blob holds the whole file, footer included: extents of all of it.
	if sum.ContainerCreated {
		o.logf("created the container, which did not exist")
	}
	switch {
	case o.ManagedDisk:
		o.logf("managed disk: sending all data, clearing old data where the file is zero")
	case sum.Resumed:
		o.logf("the blob holds this file already: resuming, sending only what it lacks")
	default:
		o.logf("created the page blob, %d bytes", size)
	}
	exts, err := raw.NewFile(f, size).Extents()
	if err != nil {
		return sum, fmt.Errorf("upload: %w", err)
	}
	o.logf("%d data extents; up to %d requests in flight", len(exts), o.Concurrency)
	p := newPipeline(o, f, size, exts, dest, sum, progress.Or(pr))
	if err := sendData(ctx, &o, p, f, size, sum); err != nil {
		return sum, fmt.Errorf("upload %s to %s: %w", o.File, o.Blob, interrupted(ctx, err))
	}
	o.logf("sent %d bytes in %d requests (%d retries, %d throttled)", sum.SentBytes, sum.Requests, sum.Retries, sum.Throttled)
	if o.Verify {
		o.logf("verifying: reading the blob's data back")
		if err := verify(ctx, &o, f, size, exts); err != nil {
			return sum, fmt.Errorf("verify %s against %s: %w", o.File, o.Blob, interrupted(ctx, err))
		}
		sum.Verified = true
	}
	return sum, nil
}

// sendData runs the pipeline and, when asked for, the whole file's MD5
// beside it, which then becomes the blob's Content-MD5.
func sendData(ctx context.Context, o *Options, p *pipeline, f io.ReaderAt, size int64, sum *Summary) error {
	if !o.ContentMD5 || o.ManagedDisk {
		return p.run(ctx)
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		sum []byte
		err error
	}
	hashed := make(chan result, 1)
	go func() {
		s, err := contentMD5(hctx, f, size, p.spans)
		hashed <- result{s, err}
	}()
	if err := p.run(ctx); err != nil {
		cancel()
		<-hashed
		return err
	}
	h := <-hashed
	if h.err != nil {
		return h.err
	}
	sum.ContentMD5 = h.sum
	return retry(ctx, o, &p.stats, "set Content-MD5", func(ctx context.Context) error {
		return o.Blob.SetContentMD5(ctx, h.sum)
	})
}

// interrupted is err, or ErrInterrupted when ctx was cancelled: whatever
// failed then failed because of that.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ErrInterrupted, ctx.Err())
	}
	return err
}

func (o *Options) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	if o.MaxRetryDelay <= 0 {
		o.MaxRetryDelay = DefaultMaxDelay
	}
	if o.TryTimeout <= 0 {
		o.TryTimeout = DefaultTryTimeout
	}
	if o.sleep == nil {
		o.sleep = pause.For
	}
}

// logf tells Options.Logf, if set, a step.
func (o *Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

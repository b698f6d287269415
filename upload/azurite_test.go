package upload

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"

	"github.com/vhdprep/vhdprep/internal/azurite"
	"github.com/vhdprep/vhdprep/internal/testimage"
)

const testSize = 24 << 20

// shared is the Azurite server of this package's tests.
var shared azurite.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Stop()
	os.Exit(code)
}

// roundTrip checks that the blob holds exactly the file, by downloading it.
func roundTrip(t *testing.T, srv *azurite.Server, file, containerName, blobName string) {
	t.Helper()
	azurite.SameFiles(t, file, srv.Download(t, containerName, blobName))
}

func noViolations(t *testing.T, px *azurite.Proxy) {
	t.Helper()
	if v := px.Stats().Violations; len(v) > 0 {
		t.Fatalf("the proxy saw %d requests Azure would refuse: %s", len(v), strings.Join(v, "; "))
	}
}

func TestUploadSendsOnlyData(t *testing.T) {
	srv := shared.Get(t)
	vhds := srv.NewContainer(t)
	px := azurite.NewProxy(t, srv, azurite.Faults{})
	file := makeVHD(t, testSize, sampleWrites(testSize))

	sum, err := Upload(context.Background(), Options{File: file, Blob: connect(t, px.Endpoint, vhds, "disk.vhd"), Verify: true, Concurrency: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	noViolations(t, px)
	roundTrip(t, srv, file, vhds, "disk.vhd")

	want := nonZeroBytes(t, file)
	st := px.Stats()
	if sum.SentBytes != want || st.PutBytes != want {
		t.Errorf("sent %d bytes (proxy saw %d), want the %d bytes of non-zero pages", sum.SentBytes, st.PutBytes, want)
	}
	if int64(st.PutPages) != sum.Requests || sum.Retries != 0 {
		t.Errorf("summary says %d requests, %d retries; the proxy saw %d", sum.Requests, sum.Retries, st.PutPages)
	}
	// The written zeros were read but not sent, and the holes not even read.
	if sum.ZeroBytes < 1<<20-200<<10-4096 || sum.DataBytes >= testSize/2 {
		t.Errorf("data %d bytes, zero pages %d: the zeros inside data were sent or the holes read", sum.DataBytes, sum.ZeroBytes)
	}
	// --verify read back the blob's data ranges, not the whole blob.
	if st.ReadBytes != spanBytes(pageRanges(t, connect(t, srv.Endpoint, vhds, "disk.vhd"))) || st.ReadBytes >= testSize/2 {
		t.Errorf("--verify read %d bytes of a %d-byte blob holding %d bytes of data", st.ReadBytes, testSize, want)
	}
	if !sum.Verified {
		t.Errorf("not verified")
	}
}

// blobMD5 is the Content-MD5 the service holds for a blob.
func blobMD5(t *testing.T, srv *azurite.Server, containerName, blobName string) []byte {
	t.Helper()
	props, err := srv.PageBlob(t, containerName, blobName).GetProperties(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return props.ContentMD5
}

// TestContentMD5OptIn: the whole file's MD5 (holes hashed as zeros) is the
// blob's Content-MD5 only when asked for; each Put Page carries its own
// either way (memBlob and the proxy check those).
func TestContentMD5OptIn(t *testing.T) {
	srv := shared.Get(t)
	vhds := srv.NewContainer(t)
	file := makeVHD(t, testSize, sampleWrites(testSize))

	sum, err := Upload(context.Background(), Options{File: file, Blob: connect(t, srv.Endpoint, vhds, "plain.vhd")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := blobMD5(t, srv, vhds, "plain.vhd"); got != nil || sum.ContentMD5 != nil {
		t.Errorf("without ContentMD5 the blob has Content-MD5 %x (summary %x)", got, sum.ContentMD5)
	}

	sum, err = Upload(context.Background(), Options{File: file, Blob: connect(t, srv.Endpoint, vhds, "md5.vhd"), ContentMD5: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, srv, file, vhds, "md5.vhd")
	want := fileMD5(t, file)
	if got := blobMD5(t, srv, vhds, "md5.vhd"); !bytes.Equal(got, want) || !bytes.Equal(sum.ContentMD5, want) {
		t.Errorf("the blob's Content-MD5 is %x (summary %x), want the file's %x", got, sum.ContentMD5, want)
	}
}

func TestUploadQemuMadeVHD(t *testing.T) {
	file := testimage.Path(t, "upload-debian-fixed")
	srv := shared.Get(t)
	vhds := srv.NewContainer(t)
	px := azurite.NewProxy(t, srv, azurite.Faults{})
	sum, err := Upload(context.Background(), Options{File: file, Blob: connect(t, px.Endpoint, vhds, "debian.vhd")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	noViolations(t, px)
	roundTrip(t, srv, file, vhds, "debian.vhd")
	if want := nonZeroBytes(t, file); sum.SentBytes != want {
		t.Errorf("sent %d bytes, want %d", sum.SentBytes, want)
	}
}

func TestUploadThroughFaults(t *testing.T) {
	srv := shared.Get(t)
	vhds := srv.NewContainer(t)
	px := azurite.NewProxy(t, srv, azurite.Faults{
		Status500Every: 3, Status503Every: 5, DropEvery: 7, SlowEvery: 4,
	})
	file := makeVHD(t, testSize, sampleWrites(testSize))
	o := fastRetries(Options{File: file, Blob: connect(t, px.Endpoint, vhds, "disk.vhd"), Concurrency: 4})
	sum, err := Upload(context.Background(), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	noViolations(t, px)
	roundTrip(t, srv, file, vhds, "disk.vhd")
	st := px.Stats()
	if sum.Retries < int64(st.Faults) || sum.Throttled == 0 {
		t.Errorf("%d retries (%d throttled) for %d injected faults", sum.Retries, sum.Throttled, st.Faults)
	}
	if sum.MinConcurrency >= sum.Concurrency {
		t.Errorf("concurrency stayed at %d through ServerBusy", sum.MinConcurrency)
	}
	if st.PutBytes != nonZeroBytes(t, file) {
		t.Errorf("the blob received %d bytes, want %d", st.PutBytes, nonZeroBytes(t, file))
	}
}

func TestUploadSAS(t *testing.T) {
	srv := shared.Get(t)
	vhds := srv.NewContainer(t)
	px := azurite.NewProxy(t, srv, azurite.Faults{})
	file := makeVHD(t, testSize, sampleWrites(testSize))
	sasURL := srv.SASURL(t, px.Endpoint, vhds, "disk.vhd")
	b, err := NewAzureBlob(Target{BlobURL: sasURL})
	if err != nil {
		t.Fatal(err)
	}
	sig := mustQuery(t, sasURL).Get("sig")
	if strings.Contains(b.String(), sig) || strings.Contains(b.String(), url.QueryEscape(sig)) {
		t.Errorf("the blob's name shows the SAS signature: %s", b.String())
	}
	sum, err := Upload(context.Background(), Options{File: file, Blob: b, Verify: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	noViolations(t, px)
	roundTrip(t, srv, file, vhds, "disk.vhd")
	if strings.Contains(sum.Blob, sig) {
		t.Errorf("the summary shows the SAS signature: %s", sum.Blob)
	}
}

// TestSecretsRedacted makes requests fail in ways whose messages would
// carry the URL or connection string, and looks for the secrets.
func TestSecretsRedacted(t *testing.T) {
	srv := shared.Get(t)
	vhds := srv.NewContainer(t)
	file := makeVHD(t, testSize, sampleWrites(testSize))
	sasURL := srv.SASURL(t, srv.Endpoint, vhds, "disk.vhd")
	sig := mustQuery(t, sasURL).Get("sig")
	// Nothing listens at port 9 of the loopback: connection refused, with the URL in the message.
	deadSAS := strings.Replace(sasURL, srv.Addr, "127.0.0.1:9", 1)
	wrongSig := strings.Replace(sasURL, url.QueryEscape(sig), url.QueryEscape("AAAA"+sig[4:]), 1)
	for name, tc := range map[string]struct {
		target  Target
		secrets []string
	}{
		"sas refused":         {Target{BlobURL: wrongSig}, []string{"AAAA" + sig[4:]}},
		"sas unreachable":     {Target{BlobURL: deadSAS}, []string{sig}},
		"key unreachable":     {Target{ConnectionString: azurite.ConnectionString("http://127.0.0.1:9/" + azurite.Account), Container: vhds, Blob: "x"}, []string{azurite.Key}},
		"key, bad container":  {Target{ConnectionString: azurite.ConnectionString(srv.Endpoint), Container: "Not_A_Name", Blob: "x"}, []string{azurite.Key}},
		"managed disk absent": {Target{ManagedDiskSAS: sasURL}, []string{sig}},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := NewAzureBlob(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			o := fastRetries(Options{File: file, Blob: b, ManagedDisk: tc.target.ManagedDisk(), MaxAttempts: 2})
			sum, err := Upload(context.Background(), o, nil)
			if err == nil {
				t.Fatal("upload succeeded")
			}
			for _, s := range tc.secrets {
				for _, form := range []string{s, url.QueryEscape(s)} {
					if strings.Contains(err.Error(), form) || strings.Contains(sum.Blob, form) {
						t.Errorf("secret in the output: %v (blob %s)", err, sum.Blob)
					}
				}
			}
			t.Log(err)
		})
	}
}

func mustQuery(t *testing.T, u string) url.Values {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return parsed.Query()
}

// stopAfter is a Blob that cancels the upload after n successful puts, as
// Ctrl-C would.
type stopAfter struct {
	Blob
	n      int64
	puts   atomic.Int64
	cancel context.CancelFunc
}

func (s *stopAfter) PutPages(ctx context.Context, off int64, p []byte, md5 []byte) error {
	err := s.Blob.PutPages(ctx, off, p, md5)
	if err == nil && s.puts.Add(1) == s.n {
		s.cancel()
	}
	return err
}

func TestUploadResumes(t *testing.T) {
	srv := shared.Get(t)
	vhds := srv.NewContainer(t)
	px := azurite.NewProxy(t, srv, azurite.Faults{})
	file := makeVHD(t, testSize, sampleWrites(testSize))

	ctx, cancel := context.WithCancel(context.Background())
	stop := &stopAfter{Blob: connect(t, px.Endpoint, vhds, "disk.vhd"), n: 3, cancel: cancel}
	sum1, err := Upload(ctx, Options{File: file, Blob: stop, Concurrency: 1}, nil)
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v, want an interruption", err)
	}
	first := px.Stats()
	if first.PutPages < 3 || first.PutBytes >= nonZeroBytes(t, file) {
		t.Fatalf("first run sent %d requests, %d bytes: not a partial upload", first.PutPages, first.PutBytes)
	}

	px.ResetStats()
	sum2, err := Upload(context.Background(), Options{File: file, Blob: connect(t, px.Endpoint, vhds, "disk.vhd"), Verify: true, ContentMD5: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	noViolations(t, px)
	roundTrip(t, srv, file, vhds, "disk.vhd")
	second := px.Stats()
	if !sum2.Resumed || second.PutBytes+first.PutBytes != nonZeroBytes(t, file) || sum2.PresentBytes != first.PutBytes {
		t.Errorf("resumed %v: second run sent %d bytes and found %d present after the first sent %d; the file has %d",
			sum2.Resumed, second.PutBytes, sum2.PresentBytes, first.PutBytes, nonZeroBytes(t, file))
	}
	// The Content-MD5 is the whole file's, though this run read only part.
	if got := blobMD5(t, srv, vhds, "disk.vhd"); !bytes.Equal(got, fileMD5(t, file)) {
		t.Errorf("after resuming, the blob's Content-MD5 is %x, want %x", got, fileMD5(t, file))
	}
	if sum1.SentBytes != first.PutBytes {
		t.Errorf("the interrupted run's summary says %d bytes sent, the proxy saw %d", sum1.SentBytes, first.PutBytes)
	}
}

func TestUploadRefusesAnotherFile(t *testing.T) {
	srv := shared.Get(t)
	vhds := srv.NewContainer(t)
	a := makeVHD(t, testSize, sampleWrites(testSize))
	b := makeVHD(t, testSize, []write{{Offset: 5 << 20, Length: 1 << 20}}) // another unique ID too
	dest := connect(t, srv.Endpoint, vhds, "disk.vhd")
	if _, err := Upload(context.Background(), Options{File: a, Blob: dest}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := Upload(context.Background(), Options{File: b, Blob: dest}, nil)
	if !errors.Is(err, ErrOtherFile) || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("uploading another file over it: %v, want ErrOtherFile naming --overwrite", err)
	}
	sum, err := Upload(context.Background(), Options{File: b, Blob: dest, Overwrite: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, srv, b, vhds, "disk.vhd")
	if sum.Resumed || sum.SentBytes != nonZeroBytes(t, b) {
		t.Errorf("overwrite: resumed %v, sent %d bytes, want a fresh upload of %d", sum.Resumed, sum.SentBytes, nonZeroBytes(t, b))
	}

	// A page blob vhdprep did not write is another file too.
	foreign := srv.PageBlob(t, vhds, "foreign.vhd")
	if _, err := foreign.Create(context.Background(), testSize+PageSize, nil); err != nil {
		t.Fatal(err)
	}
	_, err = Upload(context.Background(), Options{File: b, Blob: connect(t, srv.Endpoint, vhds, "foreign.vhd")}, nil)
	if !errors.Is(err, ErrOtherFile) {
		t.Fatalf("uploading over a foreign blob: %v, want ErrOtherFile", err)
	}
}

func TestUploadManagedDisk(t *testing.T) {
	srv := shared.Get(t)
	disks := srv.NewContainer(t)
	px := azurite.NewProxy(t, srv, azurite.Faults{})
	file := makeVHD(t, testSize, sampleWrites(testSize))
	ctx := context.Background()

	// A disk as Azure makes it for upload: the exact size, here with old
	// data where the file has data, zeros and holes.
	disk := srv.PageBlob(t, disks, "md")
	if _, err := disk.Create(ctx, testSize+PageSize, nil); err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte{0xEE}, 1<<20)
	for _, off := range []int64{0, 3 << 20, 20 << 20} {
		if _, err := disk.UploadPages(ctx, streaming.NopCloser(bytes.NewReader(junk)), blob.HTTPRange{Offset: off, Count: int64(len(junk))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	target := Target{ManagedDiskSAS: srv.SASURL(t, px.Endpoint, disks, "md")}
	b, err := NewAzureBlob(target)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Upload(ctx, Options{File: file, Blob: b, ManagedDisk: target.ManagedDisk(), Verify: true, ContentMD5: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	noViolations(t, px)
	roundTrip(t, srv, file, disks, "md")
	if sum.ClearedBytes == 0 || px.Stats().Clears == 0 {
		t.Errorf("cleared %d bytes of old data where the file is zero", sum.ClearedBytes)
	}
	props, err := disk.GetProperties(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(props.Metadata) != 0 || props.ContentMD5 != nil {
		t.Errorf("a managed disk got metadata %v or a Content-MD5 %x", props.Metadata, props.ContentMD5)
	}

	// The wrong size, and no disk at all, are refused before any write.
	small := srv.PageBlob(t, disks, "small")
	if _, err := small.Create(ctx, testSize, nil); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]error{"small": ErrDiskSize, "absent": ErrNotFound} {
		b, err := NewAzureBlob(Target{ManagedDiskSAS: srv.SASURL(t, srv.Endpoint, disks, name)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Upload(ctx, Options{File: file, Blob: b, ManagedDisk: true}, nil); !errors.Is(err, want) {
			t.Errorf("managed disk %s: %v, want %v", name, err, want)
		}
	}
}

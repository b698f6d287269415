package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	azblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/pageblob"

	"github.com/vhdprep/vhdprep/internal/azurite"
	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/upload"
	"github.com/vhdprep/vhdprep/vhd"
)

// chunkyVHD writes a fixed VHD of size bytes holding n chunks of 64 KiB of
// random data, one every size/n bytes, holes between: n Put Page requests.
func chunkyVHD(t *testing.T, size int64, n int) (path string, data int64) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "disk.vhd")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		for j := range chunk {
			chunk[j] = byte(rng.Uint32()) | 1
		}
		if _, err := f.WriteAt(chunk, int64(i)*(size/int64(n))); err != nil {
			t.Fatal(err)
		}
	}
	footer, err := vhd.NewFixedFooter(size, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	b, err := footer.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, size); err != nil {
		t.Fatal(err)
	}
	return path, int64(n)*int64(len(chunk)) + int64(len(b))
}

func TestUploadCommand(t *testing.T) {
	srv := azurite.Start(t)
	srv.CreateContainer(t, "vhds")
	file, data := chunkyVHD(t, 32<<20, 8)
	t.Setenv(upload.EnvConnectionString, azurite.ConnectionString(srv.Endpoint))

	code, out, errOut := runCLI(t, "upload", file, "--container", "vhds", "--verify", "--content-md5", "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var sum upload.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("--output json: %v\n%s", err, out)
	}
	var fields map[string]any
	json.Unmarshal([]byte(out), &fields)
	for _, k := range []string{"schema_version", "image", "virtual_size_bytes", "data_bytes", "sent_bytes", "requests", "retries", "elapsed_seconds", "data_bytes_per_second", "content_md5", "verified"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("--output json has no %q: %s", k, out)
		}
	}
	if sum.SentBytes != data || !sum.Verified || sum.VirtualSize != 32<<20 {
		t.Errorf("summary %+v: want %d bytes sent, verified", sum, data)
	}
	azurite.SameFiles(t, file, srv.Download(t, "vhds", "disk.vhd")) // --blob defaults to the file's name
	whole, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	props, err := srv.PageBlob(t, "vhds", "disk.vhd").GetProperties(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := md5.Sum(whole); !bytes.Equal(props.ContentMD5, want[:]) || !bytes.Equal(sum.ContentMD5, want[:]) {
		t.Errorf("--content-md5: the blob's Content-MD5 is %x (summary %x), want %x", props.ContentMD5, sum.ContentMD5, want)
	}

	// Again: nothing to send, and the text summary says so.
	code, out, errOut = runCLI(t, "upload", file, "--container", "vhds")
	if code != exitOK || !strings.Contains(out, "resumed") || !strings.Contains(out, "0 bytes in 0 requests") {
		t.Errorf("second upload: exit %d\n%s%s", code, out, errOut)
	}
}

func TestUploadCommandUsage(t *testing.T) {
	file, _ := chunkyVHD(t, 32<<20, 1)
	raw := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(raw, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(upload.EnvConnectionString, "")
	t.Setenv(upload.EnvBlobURL, "")
	t.Setenv(upload.EnvManagedDiskSAS, "")
	sas := "http://127.0.0.1:9/devstoreaccount1/vhds/disk.vhd?sv=2024-01-01&sig=c2VjcmV0c2VjcmV0"
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"upload", file}, exitUsage, "give --blob-url"},
		{[]string{"upload", file, "--blob-url", sas, "--managed-disk-sas", sas}, exitUsage, "only one"},
		{[]string{"upload", file, "--blob-url", sas, "--container", "x"}, exitUsage, "--container and --blob go with"},
		{[]string{"upload", file, "--connection-string", "AccountName=a;AccountKey=a2V5a2V5a2V5"}, exitUsage, "needs --container"},
		{[]string{"upload", file, "--blob-url", sas, "--concurrency", "0"}, exitUsage, "--concurrency"},
		{[]string{"upload", file, "--managed-disk-sas", sas, "--content-md5"}, exitUsage, "--content-md5"},
		{[]string{"upload", file, "--blob-url", "@/nonexistent"}, exitUsage, "--blob-url"},
		{[]string{"upload", raw, "--blob-url", sas}, exitFailed, "convert"},
		{[]string{"upload", file, "--blob-url", sas}, exitFailed, "sig=REDACTED"},
	} {
		code, out := runBin(t, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("vhdprep %v: exit %d, %q; want exit %d and %q", tc.args, code, out, tc.code, tc.want)
		}
		if strings.Contains(out, "c2VjcmV0c2VjcmV0") || strings.Contains(out, "a2V5a2V5a2V5") {
			t.Errorf("vhdprep %v printed a secret: %s", tc.args, out)
		}
	}
}

// TestUploadInterruptAndResume stops the real binary with Ctrl-C, then
// kills it, then lets it finish: each run sends only what the blob lacks.
func TestUploadInterruptAndResume(t *testing.T) {
	srv := azurite.Start(t)
	srv.CreateContainer(t, "vhds")
	px := azurite.NewProxy(t, srv, azurite.Faults{Delay: 40 * time.Millisecond})
	const chunks = 48
	file, data := chunkyVHD(t, 48<<20, chunks)
	sasURL := srv.SASURL(t, px.Endpoint, "vhds", "disk.vhd")
	sasFile := filepath.Join(t.TempDir(), "sas")
	if err := os.WriteFile(sasFile, []byte(sasURL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"upload", file, "--blob-url", "@" + sasFile, "--concurrency", "2"}

	// stopAt starts an upload and sends sig once the proxy has passed n
	// more Put Page requests.
	stopAt := func(n int, sig syscall.Signal) (int, string) {
		px.ResetStats()
		cmd := exec.Command(vhdprepBin, args...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for px.Stats().PutPages < n {
			time.Sleep(5 * time.Millisecond)
		}
		cmd.Process.Signal(sig)
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), out.String()
		}
		return 0, out.String()
	}
	present := func() int64 {
		var n int64
		blob, err := upload.NewAzureBlob(upload.Target{BlobURL: srv.SASURL(t, srv.Endpoint, "vhds", "disk.vhd")})
		if err != nil {
			t.Fatal(err)
		}
		ranges, err := blob.PageRanges(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range ranges {
			n += r.Length
		}
		return n
	}

	code, out := stopAt(8, syscall.SIGINT)
	resume := vhdprepBin + " " + strings.Join(args, " ")
	if code != exitInterrupted || !strings.Contains(out, "interrupted") || !strings.Contains(out, "to resume (the blob keeps what arrived), run: "+resume+"\n") {
		t.Fatalf("Ctrl-C: exit %d, %q; want exit 130 and the command that resumes: %s", code, out, resume)
	}
	afterInterrupt := present()

	code, out = stopAt(8, syscall.SIGKILL)
	if code != -1 {
		t.Fatalf("SIGKILL: exit %d, %s", code, out)
	}
	time.Sleep(100 * time.Millisecond) // let requests in flight land or fail
	afterKill := present()
	if afterInterrupt == 0 || afterKill < afterInterrupt+8*64<<10 || afterKill >= data {
		t.Fatalf("blob holds %d bytes after Ctrl-C, %d after SIGKILL, of %d", afterInterrupt, afterKill, data)
	}

	px.ResetStats()
	code, out = runBin(t, append(args, "--verify", "-o", "json")...)
	if code != exitOK {
		t.Fatalf("resume: exit %d: %s", code, out)
	}
	if got := px.Stats().PutBytes; got != data-afterKill {
		t.Errorf("resume sent %d bytes; the blob lacked %d", got, data-afterKill)
	}
	if v := px.Stats().Violations; len(v) > 0 {
		t.Errorf("requests Azure would refuse: %v", v)
	}
	azurite.SameFiles(t, file, srv.Download(t, "vhds", "disk.vhd"))
}

// TestUploadCheckRefusesErrors: --check runs the whole check gate first and
// refuses an image with errors, printing them, before any request is sent.
// The image is a test image made a VHD by vhdprep convert.
func TestUploadCheckRefusesErrors(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.vhd")
	if code, out := runBin(t, "convert", testimage.Path(t, "disk-debian-mbr"), img); code != exitOK { // a disk with no agent, no sshd
		t.Fatalf("convert: exit %d\n%s", code, out)
	}
	srv := azurite.Start(t)
	srv.CreateContainer(t, "vhds")
	px := azurite.NewProxy(t, srv, azurite.Faults{})
	t.Setenv(upload.EnvConnectionString, "")
	t.Setenv(upload.EnvManagedDiskSAS, "")
	t.Setenv(upload.EnvBlobURL, srv.SASURL(t, px.Endpoint, "vhds", "disk.vhd"))

	code, out := runBin(t, "upload", img, "--check")
	for _, want := range []string{"error   AGT001", "error   SSH001", "check found errors"} {
		if code != exitGate || !strings.Contains(out, want) {
			t.Errorf("upload --check: exit %d, want exit 1 and %q in\n%s", code, want, out)
		}
	}
	if n := px.Stats().Requests; n != 0 {
		t.Errorf("upload --check sent %d requests after check found errors", n)
	}

	// Without --check the same image uploads: the refusal was the gate's.
	if code, out := runBin(t, "upload", img, "--verify"); code != exitOK || !strings.Contains(out, "verified") {
		t.Fatalf("upload without --check: exit %d\n%s", code, out)
	}
	azurite.SameFiles(t, img, srv.Download(t, "vhds", "disk.vhd"))
}

// BenchmarkUpload compares, in one run, vhdprep upload at the default
// concurrency with AzCopy (--blob-type PageBlob --from-to LocalBlob, the
// npm package make bench installs) uploading fixed VHDs of 4 and 16 GiB
// holding 1 GiB of data (random, in 64 MiB runs, sparse between them) to
// Azurite on the loopback, each upload to an Azurite of its own, started
// for it (one that already holds the blob would let an upload skip the
// work): wall time and its ratio (goals: 0.9 at 4 GiB, 0.6 at 16), CPU
// time and peak memory of each (vhdprep's goal: under 150 MiB), and
// vhdprep's bytes sent against data bytes (goal: at most 1 % more) and
// requests. Then, at 4 GiB only, the naive way: every 4 MiB of the file put
// as it is, with as many requests in flight, so the saving shows.
func BenchmarkUpload(b *testing.B) {
	testimage.RequireTools(b, gnuTime)
	azcopy := requireAzCopy(b)
	shrink := benchShrink(b)
	const mib = 1 << 20
	for i, size := range []int64{4 << 30, 16 << 30} {
		size, data := size/shrink, int64(1<<30)/shrink
		b.Run(sizeName(size), func(b *testing.B) {
			dir := b.TempDir()
			file := filepath.Join(dir, "disk.vhd")
			makeHalfSparse(b, file, size, data, false)
			footer, err := vhd.NewFixedFooter(size, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			fb, _ := footer.MarshalBinary()
			f, err := os.OpenFile(file, os.O_WRONLY, 0)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.WriteAt(fb, size); err != nil {
				b.Fatal(err)
			}
			f.Close()
			dataBytes := data + vhd.FooterSize // what the file holds that is not zero

			for range b.N {
				srv, stop := freshAzurite(b)
				srv.CreateContainer(b, "vhds")
				ours, js := measure(b, nil, vhdprepBin, "upload", file, "--connection-string", azurite.ConnectionString(srv.Endpoint),
					"--container", "vhds", "--blob", "disk.vhd", "-o", "json")
				stop()
				var sum upload.Summary
				if err := json.Unmarshal([]byte(js), &sum); err != nil {
					b.Fatalf("summary: %v\n%s", err, js)
				}

				srv, stop = freshAzurite(b)
				srv.CreateContainer(b, "vhds")
				logs := b.TempDir()
				theirs, out := measure(b, []string{"AZCOPY_LOG_LOCATION=" + logs, "AZCOPY_JOB_PLAN_LOCATION=" + logs},
					azcopy, "copy", file, srv.SASURL(b, srv.Endpoint, "vhds", "disk.vhd"), "--blob-type", "PageBlob", "--from-to", "LocalBlob")
				stop()
				if !strings.Contains(out, "Final Job Status: Completed") {
					b.Fatalf("azcopy did not complete the upload:\n%s", out)
				}

				reportRuns(b, ours, contender{"azcopy", theirs})
				b.ReportMetric(float64(dataBytes)/mib, "file-data-MiB")
				b.ReportMetric(float64(dataBytes)/mib/ours.wall.Seconds(), "vhdprep-data-MiB/s")
				b.ReportMetric(float64(sum.SentBytes)/mib, "vhdprep-sent-MiB")
				b.ReportMetric(100*float64(sum.SentBytes-dataBytes)/float64(dataBytes), "vhdprep-sent-above-data-%")
				b.ReportMetric(float64(sum.Requests), "vhdprep-requests")

				if i == 0 {
					srv, stop = freshAzurite(b)
					srv.CreateContainer(b, "vhds")
					elapsed, sent, requests := naiveUpload(b, srv, file, "naive.vhd", upload.DefaultConcurrency)
					stop()
					b.ReportMetric(elapsed.Seconds(), "naive-s")
					b.ReportMetric(float64(dataBytes)/mib/elapsed.Seconds(), "naive-data-MiB/s")
					b.ReportMetric(float64(sent)/mib, "naive-sent-MiB")
					b.ReportMetric(float64(requests), "naive-requests")
				}
			}
		})
	}
}

// freshAzurite starts an Azurite for one upload and returns it and what
// stops it. Without Azurite the benchmark fails under
// VHDPREP_REQUIRE_TOOLS=1, as make bench sets, and is skipped otherwise.
func freshAzurite(b *testing.B) (*azurite.Server, func()) {
	b.Helper()
	srv, stop, err := azurite.Launch(testimage.CacheDir(b, "azurite"))
	if err != nil {
		if errors.Is(err, azurite.ErrNotInstalled) && os.Getenv("VHDPREP_REQUIRE_TOOLS") != "1" {
			b.Skip(err)
		}
		b.Fatal(err)
	}
	return srv, stop
}

// requireAzCopy returns the AzCopy binary that scripts/test-deps.sh
// installs from npm into the tests' cache for make bench (BENCH=1), once it
// has run it. Without one that runs the benchmark fails under
// VHDPREP_REQUIRE_TOOLS=1, as make bench sets, and is skipped otherwise.
func requireAzCopy(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(testimage.CacheDir(b, "azcopy"), "node_modules", "@azure-tools", "azcopy-linux", "dist", "bin", "azcopy_linux_amd64")
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err == nil && strings.HasPrefix(string(out), "azcopy version ") {
		return bin
	}
	why := fmt.Sprint(err)
	if o := strings.TrimSpace(string(out)); o != "" {
		why += ": " + o
	}
	msg := fmt.Sprintf("AzCopy, the anchor of the upload benchmark, does not run from the tests' cache (%s); make bench installs it (BENCH=1 scripts/test-deps.sh)", why)
	if os.Getenv("VHDPREP_REQUIRE_TOOLS") == "1" {
		b.Fatal(msg)
	}
	b.Skip(msg)
	return ""
}

// naiveUpload puts every 4 MiB of file into a new page blob, n requests in
// flight, each with its MD5 as vhdprep sends them, and returns the time it
// took, the bytes sent and the requests made.
func naiveUpload(b *testing.B, srv *azurite.Server, file, name string, n int) (time.Duration, int64, int64) {
	f, err := os.Open(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	blob := srv.PageBlob(b, "vhds", name)
	if _, err := blob.Create(ctx, st.Size(), nil); err != nil {
		b.Fatal(err)
	}
	offsets := make(chan int64)
	var sent, requests atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			buf := make([]byte, upload.MaxPutPage)
			for off := range offsets {
				p := buf[:min(int64(len(buf)), st.Size()-off)]
				if _, err := f.ReadAt(p, off); err != nil {
					b.Error(err)
					continue
				}
				sum := md5.Sum(p)
				_, err := blob.UploadPages(ctx, streaming.NopCloser(bytes.NewReader(p)), azblob.HTTPRange{Offset: off, Count: int64(len(p))},
					&pageblob.UploadPagesOptions{TransactionalValidation: azblob.TransferValidationTypeMD5(sum[:])})
				if err != nil {
					b.Error(err)
					continue
				}
				sent.Add(int64(len(p)))
				requests.Add(1)
			}
		})
	}
	for off := int64(0); off < st.Size(); off += upload.MaxPutPage {
		offsets <- off
	}
	close(offsets)
	wg.Wait()
	return time.Since(start), sent.Load(), requests.Load()
}

// TestResumeCommand: the command Ctrl-C prints runs again as typed, quoted
// for a shell, with a secret on the command line redacted.
func TestResumeCommand(t *testing.T) {
	defer func(args []string) { os.Args = args }(os.Args)
	os.Args = []string{"vhdprep", "upload", "my disk.vhd", "--blob-url", "https://a.blob.core.windows.net/c/b?sv=1&sig=c2VjcmV0", "--concurrency", "4"}
	got := resumeCommand()
	want := "vhdprep upload 'my disk.vhd' --blob-url 'https://a.blob.core.windows.net/c/b?sv=1&sig=REDACTED' --concurrency 4 (with the secret where it says REDACTED"
	if !strings.HasPrefix(got, want) || strings.Contains(got, "c2VjcmV0") {
		t.Errorf("resumeCommand() = %q, want it to start %q", got, want)
	}
}

// An account without the container: upload creates it where the credential
// may (an account key here), says so, and where it may not (a SAS for the
// blob alone) says what to do, exit 3, without creating anything.
func TestUploadCreatesAMissingContainer(t *testing.T) {
	srv := azurite.Start(t)
	file, _ := chunkyVHD(t, 32<<20, 4)
	t.Setenv(upload.EnvBlobURL, "")
	t.Setenv(upload.EnvManagedDiskSAS, "")
	t.Setenv(upload.EnvConnectionString, azurite.ConnectionString(srv.Endpoint))

	code, out := runBin(t, "upload", file, "--container", "fresh")
	if code != exitOK || !strings.Contains(out, "container     created: it did not exist") {
		t.Fatalf("upload to a missing container: exit %d\n%s", code, out)
	}
	azurite.SameFiles(t, file, srv.Download(t, "fresh", "disk.vhd"))
	code, out = runBin(t, "upload", file, "--container", "fresh", "-o", "json")
	if code != exitOK || !strings.Contains(out, `"container_created": false`) {
		t.Errorf("upload again: exit %d\n%s", code, out)
	}

	t.Setenv(upload.EnvConnectionString, "")
	code, out = runBin(t, "upload", file, "--blob-url", srv.SASURL(t, srv.Endpoint, "absent", "disk.vhd"))
	want := "container absent does not exist, and this credential may not create it (HTTP 403 "
	if code != exitFailed || !strings.Contains(out, want) || !strings.Contains(out, "az storage container create --name absent") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("upload with a blob SAS to a missing container: exit %d, want 3 and one line with %q\n%s", code, want, out)
	}
	if strings.Contains(out, "sig=") && !strings.Contains(out, "sig=REDACTED") {
		t.Errorf("the SAS leaked: %s", out)
	}
}

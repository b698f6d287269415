package upload

import (
	"bytes"
	"context"
	"crypto/md5"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/azurite"
	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/vhd"
)

// write is data a test VHD holds: Length bytes at Offset, random unless
// Zero (then written zeros: allocated, unlike a hole).
type write struct {
	Offset, Length int64
	Zero           bool
}

// sampleWrites is a sparse disk with what an upload must get right: data
// at the start, data not on page boundaries, a written run of zeros inside
// data, a run longer than 4 MiB crossing a 4 MiB boundary, and data in the
// last page before the footer.
func sampleWrites(size int64) []write {
	return []write{
		{Offset: 0, Length: 64 << 10},
		{Offset: 1<<20 + 100, Length: 3000},
		{Offset: 3 << 20, Length: 1 << 20, Zero: true},
		{Offset: 3<<20 + 200<<10, Length: 4096},
		{Offset: 6<<20 - 512, Length: 9<<20 + 1024},
		{Offset: size - 700, Length: 700},
	}
}

// makeVHD writes a fixed VHD of a size-byte disk holding writes, sparse
// elsewhere, as any VHD writer would: the data, then the footer.
func makeVHD(t testing.TB, size int64, writes []write) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.vhd")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(uint64(size), 1))
	for _, w := range writes {
		b := make([]byte, w.Length)
		if !w.Zero {
			for i := range b {
				b[i] = byte(rng.Uint32()) | 1 // never a zero page
			}
		}
		if _, err := f.WriteAt(b, w.Offset); err != nil {
			t.Fatal(err)
		}
	}
	footer, err := vhd.NewFixedFooter(size, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	fb, err := footer.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(fb, size); err != nil {
		t.Fatal(err)
	}
	return path
}

// nonZeroBytes counts the bytes of the file's non-zero 512-byte pages.
func nonZeroBytes(t testing.TB, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	zero := make([]byte, PageSize)
	for i := 0; i < len(b); i += PageSize {
		if !bytes.Equal(b[i:i+PageSize], zero) {
			n += PageSize
		}
	}
	return n
}

func fileMD5(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(b)
	return sum[:]
}

// fastRetries keep tests quick; Retry-After still applies.
func fastRetries(o Options) Options {
	o.RetryDelay, o.MaxRetryDelay = time.Millisecond, 20*time.Millisecond
	return o
}

// azureBlob connects to a blob through endpoint with the account key.
func connect(t testing.TB, endpoint, containerName, blobName string) Blob {
	t.Helper()
	b, err := NewAzureBlob(Target{ConnectionString: azurite.ConnectionString(endpoint), Container: containerName, Blob: blobName})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pageRanges lists the blob's data ranges as the service reports them.
func pageRanges(t testing.TB, b Blob) []raw.Extent {
	t.Helper()
	r, err := b.PageRanges(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// spanBytes is how many bytes the ranges cover.
func spanBytes(ranges []raw.Extent) int64 {
	var n int64
	for _, r := range ranges {
		n += r.Length
	}
	return n
}

package wire

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/vhdprep/vhdprep/internal/azurite"
)

// TestUploadStatusToAzurite writes status documents to Azure Storage's
// emulator through a SAS URL, as to a real status blob, and reads them
// back: a block blob, and a page blob written again with a shorter
// document, which must leave no trace of the longer one but zero padding.
func TestUploadStatusToAzurite(t *testing.T) {
	az := azurite.Start(t)
	container := az.NewContainer(t)
	// No HostGAPlugin: a failed direct upload fails the test.
	c := New("127.0.0.1:1", Options{Retry: Retry{Initial: 1, Max: 1, Attempts: 1}, HostPluginPort: 1})
	ctx := context.Background()
	read := func(name string) []byte {
		b, err := os.ReadFile(az.Download(t, container, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	block := []byte(`{"version":"1.1","timestampUTC":"2026-11-23T05:00:00Z"}`)
	if err := c.UploadStatus(ctx, az.SASURL(t, az.Endpoint, container, "vm.block.status"), BlockBlob, block); err != nil {
		t.Fatal(err)
	}
	if got := read("vm.block.status"); !bytes.Equal(got, block) {
		t.Errorf("block blob holds %q", got)
	}

	url := az.SASURL(t, az.Endpoint, container, "vm.page.status")
	long := bytes.Repeat([]byte("L"), 1500)
	if err := c.UploadStatus(ctx, url, PageBlob, long); err != nil {
		t.Fatal(err)
	}
	short := []byte(`{"short":true}`)
	if err := c.UploadStatus(ctx, url, PageBlob, short); err != nil {
		t.Fatal(err)
	}
	got := read("vm.page.status")
	want := append(append([]byte(nil), short...), make([]byte, 512-len(short))...)
	if !bytes.Equal(got, want) {
		t.Errorf("page blob holds %d bytes %q..., want the short document zero-padded to 512", len(got), got[:min(len(got), 40)])
	}
}

package upload

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDestinationTarget(t *testing.T) {
	for _, v := range []string{EnvBlobURL, EnvConnectionString, EnvManagedDiskSAS} {
		t.Setenv(v, "")
	}
	secret := filepath.Join(t.TempDir(), "cs")
	os.WriteFile(secret, []byte("AccountName=a;AccountKey=k\n"), 0o600)
	got, err := Destination{ConnectionString: "@" + secret, Container: "vhds"}.Target("/images/disk.vhd")
	if err != nil || got.ConnectionString != "AccountName=a;AccountKey=k" || got.Blob != "disk.vhd" {
		t.Fatalf("@FILE and the default blob name: %+v %v", got, err)
	}
	t.Setenv(EnvBlobURL, "https://a.blob.core.windows.net/vhds/disk.vhd")
	if got, err := (Destination{}).Target("disk.vhd"); err != nil || got.BlobURL == "" {
		t.Fatalf("from the environment: %+v %v", got, err)
	}
	for d, want := range map[Destination]string{
		{BlobURL: "u", ManagedDiskSAS: "s"}: "only one of",
		{BlobURL: "u", Container: "c"}:      "go with --connection-string",
		{ConnectionString: "cs"}:            "needs --container",
		{BlobURL: "@/nonexistent"}:          "--blob-url",
	} {
		if _, err := d.Target("disk.vhd"); !errors.Is(err, ErrTarget) || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want ErrTarget saying %q", d, err, want)
		}
	}
}

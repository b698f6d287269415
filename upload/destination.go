package upload

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Environment variables that may hold a destination, so that secrets need
// not be on the command line (where ps and shell histories show them).
const (
	EnvBlobURL          = "VHDPREP_BLOB_URL"
	EnvConnectionString = "AZURE_STORAGE_CONNECTION_STRING"
	EnvManagedDiskSAS   = "VHDPREP_MANAGED_DISK_SAS"
)

// Destination is where to upload as vhdprep upload's flags give it: one of
// BlobURL, ConnectionString (with Container, and Blob) and ManagedDiskSAS.
// Each of the three may be @PATH, read from the file PATH.
type Destination struct {
	BlobURL, ConnectionString, ManagedDiskSAS string
	Container, Blob                           string
}

// Target is the target d names for uploading file: the environment's
// destination when d gives none, a secret read from its file, the blob of
// a connection string named after file unless given. A destination given
// wrongly is ErrTarget, with the flags to give instead.
func (d Destination) Target(file string) (Target, error) {
	if d.BlobURL == "" && d.ConnectionString == "" && d.ManagedDiskSAS == "" {
		d.BlobURL, d.ConnectionString, d.ManagedDiskSAS = os.Getenv(EnvBlobURL), os.Getenv(EnvConnectionString), os.Getenv(EnvManagedDiskSAS)
	}
	t := Target{Container: d.Container, Blob: d.Blob}
	for _, v := range []struct {
		flag string
		val  string
		dst  *string
	}{
		{"--blob-url", d.BlobURL, &t.BlobURL},
		{"--connection-string", d.ConnectionString, &t.ConnectionString},
		{"--managed-disk-sas", d.ManagedDiskSAS, &t.ManagedDiskSAS},
	} {
		s, err := readSecret(v.val)
		if err != nil {
			return t, destinationError{fmt.Errorf("%s: %w", v.flag, err)}
		}
		*v.dst = s
	}
	given := 0
	for _, s := range []string{t.BlobURL, t.ConnectionString, t.ManagedDiskSAS} {
		if s != "" {
			given++
		}
	}
	switch {
	case given == 0:
		return t, destinationError{fmt.Errorf("give --blob-url, --connection-string or --managed-disk-sas (or set %s, %s or %s)", EnvBlobURL, EnvConnectionString, EnvManagedDiskSAS)}
	case given > 1:
		return t, destinationError{errors.New("give only one of --blob-url, --connection-string and --managed-disk-sas")}
	case t.ConnectionString == "" && (d.Container != "" || d.Blob != ""):
		return t, destinationError{errors.New("--container and --blob go with --connection-string; a URL names the blob itself")}
	case t.ConnectionString != "" && d.Container == "":
		return t, destinationError{errors.New("--connection-string needs --container")}
	case t.ConnectionString != "" && d.Blob == "":
		t.Blob = filepath.Base(file)
	}
	return t, nil
}

// MaxConcurrency is the most requests Options.Concurrency may keep in
// flight.
const MaxConcurrency = 256

// Options resolves d for uploading file and holds o to what it names, so
// that every mistake in what was given is found before anything is read
// or sent (ErrTarget, saying what to give instead). The options returned
// carry the file, the blob and whether it is a managed disk.
func (d Destination) Options(file string, o Options) (Options, error) {
	t, err := d.Target(file)
	if err != nil {
		return o, err
	}
	switch {
	case o.Concurrency < 1 || o.Concurrency > MaxConcurrency:
		return o, destinationError{fmt.Errorf("--concurrency must be 1 to %d, not %d", MaxConcurrency, o.Concurrency)}
	case o.ContentMD5 && t.ManagedDisk():
		return o, destinationError{errors.New("--content-md5 is for a page blob; a managed disk has no Content-MD5")}
	}
	blob, err := NewAzureBlob(t)
	if err != nil {
		return o, err
	}
	o.File, o.Blob, o.ManagedDisk = file, blob, t.ManagedDisk()
	return o, nil
}

// destinationError is ErrTarget, saying what was given wrongly.
type destinationError struct{ err error }

func (e destinationError) Error() string   { return e.err.Error() }
func (e destinationError) Unwrap() []error { return []error{ErrTarget, e.err} }

// readSecret is v, or with @PATH the content of the file PATH.
func readSecret(v string) (string, error) {
	path, ok := strings.CutPrefix(v, "@")
	if !ok {
		return strings.TrimSpace(v), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

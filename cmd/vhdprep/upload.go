package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vhdprep/vhdprep/guest"
	"github.com/vhdprep/vhdprep/internal/shell"
	"github.com/vhdprep/vhdprep/lint"
	"github.com/vhdprep/vhdprep/upload"
)

func newUploadCmd(a *app) *cobra.Command {
	var dest upload.Destination
	var check bool
	opts := upload.Options{}
	cmd := &cobra.Command{
		Use:   "upload VHD (--blob-url URL | --connection-string CS --container C [--blob B] | --managed-disk-sas URL)",
		Short: "Upload a fixed VHD to an Azure page blob or managed disk, sending only data",
		Long: `Upload writes a fixed VHD to a page blob (created with the file's length) or to a
managed disk created for upload. Only 512-byte pages holding data are sent: holes are
skipped without being read, zero pages inside data without being sent. Requests run in
parallel, each with an MD5 the service checks, and are retried with backoff (honouring
Retry-After), fewer at a time when Azure throttles. --content-md5 also records the whole
file's MD5 as the blob's Content-MD5 (as AzCopy's --put-md5; off by default: it hashes
every byte of the disk, holes included, beside the upload); --verify reads the blob's
data back and compares. --check runs vhdprep check first and refuses to upload an image
with errors.

An interrupted upload resumes: run the same command again (Ctrl-C prints it) and only
what is missing is sent (the blob's metadata records the file's size, modification time and a fingerprint
of its footer, first and last MiB). A blob holding another file is refused without
--overwrite. A managed disk (--managed-disk-sas) must exist with the file's exact size;
its old data is cleared where the file is zero.

A plain --blob-url signs in with Azure AD (az login, managed identity, environment,
workload identity). Secrets can come from the environment instead of the command line:
` + upload.EnvBlobURL + `, ` + upload.EnvConnectionString + `, ` + upload.EnvManagedDiskSAS + `, or from a
file with @PATH as the flag's value. SAS signatures and account keys never appear in
vhdprep's output.`,
		Example: `  vhdprep upload disk.vhd --blob-url https://ACCOUNT.blob.core.windows.net/vhds/disk.vhd
  VHDPREP_BLOB_URL="$SAS_URL" vhdprep upload disk.vhd
  vhdprep upload disk.vhd --blob-url @sas-url.txt --verify --content-md5
  vhdprep upload disk.vhd --connection-string "$CONN" --container vhds --blob disk.vhd
  vhdprep upload disk.vhd --managed-disk-sas "$DISK_SAS"
  vhdprep upload disk.vhd --blob-url "$SAS_URL" --concurrency 32 --check`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := dest.Options(args[0], opts)
			if errors.Is(err, upload.ErrTarget) {
				return usageError{err}
			} else if err != nil {
				return err
			}
			var checked *lint.Report
			if check {
				rep, err := checkGate(a, args[0])
				if err != nil {
					if rep != nil && a.jsonOutput() {
						// The check's verdict is the result: upload's
						// document, with nothing uploaded.
						if perr := a.printJSON(uploadJSON{&upload.Summary{File: args[0], Blob: opts.Blob.String()}, rep}); perr != nil {
							return perr
						}
					}
					return err
				}
				checked = rep
			}
			opts.BootsGen2 = guest.BootsGen2(args[0])
			opts.Logf = a.logf
			sum, err := upload.Upload(cmd.Context(), opts, a.progress())
			if errors.Is(err, upload.ErrInterrupted) {
				again := "to resume (the blob keeps what arrived), run"
				if opts.ManagedDisk {
					again = "to upload again (a managed disk's upload starts over), run"
				}
				return fmt.Errorf("%w; %s of %s of data done; %s: %s", err,
					humanBytes(sum.SentBytes+sum.PresentBytes+sum.ZeroBytes), humanBytes(sum.DataBytes), again, resumeCommand())
			}
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return a.printJSON(uploadJSON{sum, checked})
			}
			printUploadSummary(a, sum)
			return nil
		},
	}
	addUploadFlags(cmd.Flags(), &dest, &opts)
	cmd.Flags().BoolVar(&check, "check", false, "run vhdprep check first and refuse to upload on errors")
	return cmd
}

// addUploadFlags adds the flags that say where and how to upload, for
// upload and prepare --upload.
func addUploadFlags(f *pflag.FlagSet, dest *upload.Destination, opts *upload.Options) {
	f.StringVar(&dest.BlobURL, "blob-url", "", "page blob URL, with a SAS or plain (Azure AD); @FILE reads it from FILE (env "+upload.EnvBlobURL+")")
	f.StringVar(&dest.ConnectionString, "connection-string", "", "storage account connection string; @FILE reads it from FILE (env "+upload.EnvConnectionString+")")
	f.StringVar(&dest.Container, "container", "", "container, with --connection-string")
	f.StringVar(&dest.Blob, "blob", "", "blob name, with --connection-string (default: the VHD's file name)")
	f.StringVar(&dest.ManagedDiskSAS, "managed-disk-sas", "", "write SAS of a managed disk created for upload; @FILE reads it from FILE (env "+upload.EnvManagedDiskSAS+")")
	f.IntVar(&opts.Concurrency, "concurrency", upload.DefaultConcurrency, "requests in flight at most (each up to 4 MiB)")
	f.BoolVar(&opts.Overwrite, "overwrite", false, "replace a blob that holds another file")
	f.BoolVar(&opts.Verify, "verify", false, "read the blob back and compare it with the file")
	f.BoolVar(&opts.ContentMD5, "content-md5", false, "record the whole file's MD5 as the blob's Content-MD5 (costs CPU for every byte of the disk)")
}

// resumeCommand is the command line that was run, quoted for a shell, with
// any secret in it redacted (secrets from @FILE or the environment are
// found there again).
func resumeCommand() string {
	words := make([]string, len(os.Args))
	redacted := false
	for i, arg := range os.Args {
		if r := upload.Redact(arg); r != arg {
			arg, redacted = r, true
		}
		words[i] = shell.Quote(arg)
	}
	line := strings.Join(words, " ")
	if redacted {
		line += fmt.Sprintf(" (with the secret where it says %s, or given through %s, %s or %s)", upload.Redacted, upload.EnvBlobURL, upload.EnvConnectionString, upload.EnvManagedDiskSAS)
	}
	return line
}

// uploadJSON is upload's --output json: the summary, and with --check the
// check's report under "check".
type uploadJSON struct {
	*upload.Summary
	Check *lint.Report `json:"check,omitempty"`
}

// checkGate runs check with its default rules and refuses on errors,
// showing the findings on stderr (in JSON, the report is the result's).
func checkGate(a *app, image string) (*lint.Report, error) {
	t, err := lint.OpenImage(image)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	defer t.Close()
	a.logTarget(t, false)
	rep := lint.Run(t, lint.Catalog(), &lint.Config{})
	a.logReport("check", rep)
	if !rep.Fails(lint.Error) {
		a.logf("check: no errors")
		return rep, nil
	}
	if !a.jsonOutput() {
		if err := lint.WriteText(a.io.ErrOut, rep, false); err != nil {
			return nil, err
		}
	}
	return rep, gateError{fmt.Errorf("upload %s: check found errors; fix them (vhdprep fix) or upload without --check", image)}
}

func printUploadSummary(a *app, s *upload.Summary) {
	w := a.io.Out
	fmt.Fprintf(w, "uploaded %s to %s\n", s.File, s.Blob)
	if s.ContainerCreated {
		fmt.Fprintln(w, "  container     created: it did not exist")
	}
	if s.Resumed {
		fmt.Fprintf(w, "  resumed       %s were already in the blob\n", humanBytes(s.PresentBytes))
	}
	fmt.Fprintf(w, "  virtual size  %s\n", humanBytes(s.VirtualSize))
	fmt.Fprintf(w, "  data          %s, of which %s zero pages not sent\n", humanBytes(s.DataBytes), humanBytes(s.ZeroBytes))
	fmt.Fprintf(w, "  sent          %s in %d requests (%d retries, %d throttled)\n", humanBytes(s.SentBytes), s.Requests, s.Retries, s.Throttled)
	if s.ClearedBytes > 0 {
		fmt.Fprintf(w, "  cleared       %s of old data where the file is zero\n", humanBytes(s.ClearedBytes))
	}
	if s.MinConcurrency < s.Concurrency {
		fmt.Fprintf(w, "  concurrency   %d, lowered to %d by throttling\n", s.Concurrency, s.MinConcurrency)
	}
	elapsed := time.Duration(s.Seconds * float64(time.Second)).Round(time.Millisecond)
	fmt.Fprintf(w, "  elapsed       %s, %s/s of data\n", elapsed, humanBytes(int64(s.Throughput)))
	if s.ContentMD5 != nil {
		fmt.Fprintf(w, "  Content-MD5   %s\n", base64.StdEncoding.EncodeToString(s.ContentMD5))
	}
	if s.Verified {
		fmt.Fprintln(w, "  verified      the blob reads back as the file")
	}
}

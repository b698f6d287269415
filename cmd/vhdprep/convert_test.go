package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func sparseFile(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(size)
	f.WriteAt([]byte("data at the start"), 0)
}

// The main job, through the real binary: convert, then info says valid.
func TestConvertThenInfo(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "disk.raw"), filepath.Join(dir, "disk.vhd")
	sparseFile(t, in, 20<<20+5)
	if code, text := runBin(t, "convert", in, out); code != 0 {
		t.Fatalf("convert: exit %d: %s", code, text)
	}
	code, text := runBin(t, "info", "--output", "json", out)
	if code != 0 {
		t.Fatalf("info: exit %d: %s", code, text)
	}
	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual_size_bytes,string"`
		Valid       bool   `json:"valid_for_azure"`
		Footer      struct {
			DiskType    string `json:"disk_type"`
			CurrentSize int64  `json:"current_size_bytes,string"`
		} `json:"footer"`
	}
	if err := json.Unmarshal([]byte(text), &info); err != nil {
		t.Fatalf("info JSON: %v\n%s", err, text)
	}
	if info.Format != "vhd-fixed" || info.VirtualSize != 21<<20 || !info.Valid || info.Footer.CurrentSize != 21<<20 {
		t.Fatalf("info = %+v", info)
	}
	code, text = runBin(t, "info", in)
	if code != 0 || !strings.Contains(text, "not accepted") || !strings.Contains(text, "vhdprep convert") {
		t.Fatalf("info on raw: exit %d\n%s", code, text)
	}
}

func TestConvertErrorsAreOneLineWithExitThree(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "disk.raw")
	sparseFile(t, in, 1<<20)
	os.WriteFile(filepath.Join(dir, "taken.vhd"), nil, 0o644)
	for _, args := range [][]string{
		{"convert", in, filepath.Join(dir, "taken.vhd")},
		{"convert", filepath.Join(dir, "missing.raw"), filepath.Join(dir, "x.vhd")},
		{"convert", dir, filepath.Join(dir, "y.vhd")},
		{"info", filepath.Join(dir, "missing.raw")},
		{"resize", in, "--size", "1M", "--shrink"}, // already 1 MiB: nothing to do, exit 0
	} {
		code, text := runBin(t, args...)
		if args[0] == "resize" {
			if code != 0 {
				t.Errorf("%v: exit %d: %s", args, code, text)
			}
			continue
		}
		if code != exitFailed || strings.Count(strings.TrimSpace(text), "\n") != 0 || !strings.HasPrefix(text, "vhdprep: ") {
			t.Errorf("%v: exit %d, output %q; want exit 3 and one line", args, code, text)
		}
	}
}

func TestConvertUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"convert", "only-input"},
		{"convert", "--in-place", "a", "b"},
		{"convert", "a", "b", "--to", "vmdk"},
		{"convert", "a", "b", "--size", "lots"},
		{"resize", "a"},
		{"resize", "a", "--size", "1G", "--align"},
	} {
		if code, text := runBin(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d (%s), want %d", args, code, text, exitUsage)
		}
	}
}

// A FIFO given as the image is refused at once by every command that reads
// one (info used to wait for a writer forever).
func TestFIFOInputIsRefusedAtOnce(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "disk.raw")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"info", fifo},
		{"check", fifo},
		{"inspect", fifo},
		{"convert", fifo, filepath.Join(dir, "out.vhd")},
		{"convert", "--in-place", fifo},
		{"resize", fifo, "--size", "30M"},
		{"upload", fifo, "--blob-url", "https://account.blob.core.windows.net/vhds/disk.vhd"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, vhdprepBin, args...).CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Errorf("%v hangs on a FIFO", args)
			continue
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitFailed || !strings.Contains(string(out), "FIFO") || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
			t.Errorf("%v: %v, output %q; want exit 3 and one line naming the FIFO", args, err, out)
		}
	}
}

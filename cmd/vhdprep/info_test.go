package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/disktest"
)

// info, check and upload's pre-flight give one verdict in the same words:
// diskimage.AzureVerdict's. info used to call 10 MiB and 5 TiB VHDs valid
// while check and upload refused them, and to accept a truncated VHD.
func TestOneVerdictForInfoCheckAndUpload(t *testing.T) {
	dir := t.TempDir()
	small, big, cut := filepath.Join(dir, "small.vhd"), filepath.Join(dir, "big.vhd"), filepath.Join(dir, "cut.vhd")
	sparseFile(t, filepath.Join(dir, "small.raw"), 10<<20)
	if code, out := runBin(t, "convert", filepath.Join(dir, "small.raw"), small); code != 0 {
		t.Fatal(out)
	}
	code, out := runBin(t, "convert", filepath.Join(dir, "small.raw"), big, "--size", "5T")
	if code != 0 || !strings.Contains(out, "warning: ") || !strings.Contains(out, "above Azure's maximum of 4095 GiB") {
		t.Fatalf("convert --size 5T: exit %d, %q; want a warning", code, out)
	}
	sparseFile(t, filepath.Join(dir, "cut.raw"), 20<<20)
	if code, out := runBin(t, "convert", filepath.Join(dir, "cut.raw"), cut); code != 0 {
		t.Fatal(out)
	}
	cutShort(t, cut, 5<<20)

	for _, c := range []struct {
		path, rule, words string
	}{
		{small, "VHD005", "below Azure's minimum of 20 MiB"},
		{big, "VHD005", "above Azure's maximum of 4095 GiB"},
		{cut, "VHD003", "truncated fixed VHD: the footer says 20971520 bytes but the file holds 5242880 bytes"},
	} {
		name := filepath.Base(c.path)
		code, out := runBin(t, "info", "--output", "json", c.path)
		var info struct {
			Valid    bool     `json:"valid_for_azure"`
			Problems []string `json:"problems"`
		}
		if err := json.Unmarshal([]byte(out), &info); err != nil || code != 0 {
			t.Fatalf("info %s: exit %d, %v\n%s", name, code, err, out)
		}
		if info.Valid || len(info.Problems) != 1 || !strings.Contains(info.Problems[0], c.words) {
			t.Errorf("info %s: %+v; want not valid, because %q", name, info, c.words)
			continue
		}
		said := info.Problems[0]

		_, out = runBin(t, "check", "--output", "json", c.path)
		if got := checkSays(t, out, c.rule); got != said {
			t.Errorf("check %s %s says %q; info says %q", name, c.rule, got, said)
		}
		code, out = runBin(t, "upload", c.path, "--blob-url", "https://account.blob.core.windows.net/vhds/disk.vhd")
		if code != exitFailed || !strings.Contains(out, said) {
			t.Errorf("upload %s: exit %d, %q; want the refusal info gives: %q", name, code, out, said)
		}
	}
}

// checkSays is what check's JSON report says for rule's first finding, in
// the form info prints: message; fix: fix.
func checkSays(t *testing.T, report, rule string) string {
	t.Helper()
	var rep struct {
		Rules []struct {
			ID       string `json:"id"`
			Findings []struct {
				Message string `json:"message"`
				Fix     string `json:"fix"`
			} `json:"findings"`
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(report), &rep); err != nil {
		t.Fatalf("check JSON: %v\n%s", err, report)
	}
	for _, r := range rep.Rules {
		if r.ID == rule && len(r.Findings) > 0 {
			return r.Findings[0].Message + "; fix: " + r.Findings[0].Fix
		}
	}
	return ""
}

// cutShort keeps the first keep bytes of a fixed VHD's data and its footer.
func cutShort(t *testing.T, path string, keep int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	footer := b[len(b)-512:]
	if err := os.WriteFile(path, append(b[:keep:keep], footer...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A truncated VHD is refused by convert, naming both sizes, and copied
// with --accept-data-loss, which says what was lost.
func TestConvertTruncatedVHD(t *testing.T) {
	dir := t.TempDir()
	cut, out := filepath.Join(dir, "cut.vhd"), filepath.Join(dir, "out.vhd")
	sparseFile(t, filepath.Join(dir, "d.raw"), 20<<20)
	if code, text := runBin(t, "convert", filepath.Join(dir, "d.raw"), cut); code != 0 {
		t.Fatal(text)
	}
	cutShort(t, cut, 5<<20)
	code, text := runBin(t, "convert", cut, out)
	if code != exitFailed || !strings.Contains(text, "20971520") || !strings.Contains(text, "5242880") || strings.Count(strings.TrimSpace(text), "\n") != 0 {
		t.Fatalf("convert of a truncated VHD: exit %d, %q", code, text)
	}
	code, text = runBin(t, "convert", cut, out, "--accept-data-loss")
	if code != 0 || !strings.Contains(text, "warning: "+cut+": truncated fixed VHD") || !strings.Contains(text, "15728640 bytes are missing; they were written as zeros") {
		t.Fatalf("convert --accept-data-loss: exit %d, %q", code, text)
	}
}

// info shows an OVA's disks, which one it reads, and that disk's VMDK
// header, as vSphere exports it.
func TestInfoShowsOVADisks(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 2<<20)
	copy(data[4096:], "data")
	stream := disktest.VMDK(data, 128, 512, true)
	path := filepath.Join(dir, "vm.ova")
	os.WriteFile(path, disktest.Tar(t, "vm.ovf", disktest.OVF("disk1.vmdk", "disk2.vmdk"), "disk1.vmdk", stream, "disk2.vmdk", stream), 0o644)
	code, out := runBin(t, "info", path)
	for _, want := range []string{"ova", "disk 2:", "disk1.vmdk, the first disk", "streamOptimized", "deflated grains, markers, directory in the footer", "fix: vhdprep convert " + path} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("info: exit %d, no %q in\n%s", code, want, out)
		}
	}
}

package main

import (
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

func TestCheckGateExitCodesAndReports(t *testing.T) {
	dir := t.TempDir()
	rawImg, vhdImg := filepath.Join(dir, "d.raw"), filepath.Join(dir, "d.vhd")
	sparseFile(t, rawImg, 30<<20)
	if code, out := runBin(t, "convert", rawImg, vhdImg); code != 0 {
		t.Fatal(out)
	}

	code, out := runBin(t, "check", rawImg)
	if code != exitGate || !strings.Contains(out, "VHD001") || !strings.Contains(out, "vhdprep convert") {
		t.Fatalf("check on a raw file: exit %d\n%s", code, out)
	}
	junit, sarif := filepath.Join(dir, "r.xml"), filepath.Join(dir, "r.sarif")
	code, out = runBin(t, "check", vhdImg, "--junit", junit, "--sarif", sarif)
	if code != exitOK {
		t.Fatalf("check on a good VHD: exit %d\n%s", code, out)
	}
	var suites struct {
		Suites []struct {
			Tests int `xml:"tests,attr"`
		} `xml:"testsuite"`
	}
	b, _ := os.ReadFile(junit)
	if err := xml.Unmarshal(b, &suites); err != nil || suites.Suites[0].Tests < 50 {
		t.Fatalf("JUnit file: %v\n%s", err, b)
	}
	var sarifLog struct {
		Version string `json:"version"`
	}
	b, _ = os.ReadFile(sarif)
	if err := json.Unmarshal(b, &sarifLog); err != nil || sarifLog.Version != "2.1.0" {
		t.Fatalf("SARIF file: %v\n%s", err, b)
	}

	// Disabling the failing rules passes the gate.
	if code, out = runBin(t, "check", rawImg, "--disable", "VHD001,VHD004"); code != exitOK {
		t.Fatalf("check with the failing rules disabled: exit %d\n%s", code, out)
	}
}

func TestCheckUsageAndListRules(t *testing.T) {
	for _, args := range [][]string{
		{"check"},
		{"check", "a.vhd", "--root", "/"},
		{"check", "a.vhd", "--disable", "XYZ123"},
		{"check", "a.vhd", "--fail-on", "fatal"},
	} {
		if code, out := runBin(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, out)
		}
	}
	code, out, _ := runCLI(t, "check", "--list-rules", "--output", "json")
	var list struct {
		Rules []struct {
			ID          string `json:"id"`
			Implemented bool   `json:"implemented"`
			Reason      string `json:"not_implemented_reason"`
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 || len(list.Rules) < 50 {
		t.Fatalf("--list-rules: exit %d, %v", code, err)
	}
	for _, r := range list.Rules {
		if !r.Implemented && r.Reason == "" {
			t.Errorf("%s is not implemented and says not why", r.ID)
		}
	}
}

// A GPT whose entry array is larger than vhdprep reads (sgdisk makes one
// of 100 000 entries on request, in minutes, so the test writes the count
// into sgdisk's headers) does not abort check: DSK001 fails saying why and
// how to shrink it, the container rules still judge the file, and the rules
// that need the guest are skipped pointing at DSK001.
func TestCheckJudgesAnUnreadablePartitionTable(t *testing.T) {
	testimage.RequireTools(t, "sgdisk")
	img := filepath.Join(t.TempDir(), "huge-gpt.raw")
	sparseFile(t, img, 200<<20)
	if out, err := exec.Command("sgdisk", "-o", "-n", "1:0:+10M", img).CombinedOutput(); err != nil {
		t.Fatalf("sgdisk: %v %s", err, out)
	}
	setGPTEntryCount(t, img, 100000)
	code, out := runBin(t, "check", "--output", "json", img)
	if code != exitGate {
		t.Fatalf("check: exit %d, want %d\n%s", code, exitGate, out)
	}
	if got := checkSays(t, out, "DSK001"); !strings.Contains(got, "100000 entries, more than the 4096") || !strings.Contains(got, "sgdisk --resize-table=128") {
		t.Errorf("DSK001 says %q; want the entry count, the limit and the sgdisk command", got)
	}
	if got := checkSays(t, out, "VHD001"); !strings.Contains(got, "vhdprep convert") {
		t.Errorf("VHD001 says %q; want the raw file judged as a container", got)
	}
	var rep struct {
		Rules []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Reason string `json:"reason"`
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	pointing := 0
	for _, r := range rep.Rules {
		if r.Status == "skip" && strings.Contains(r.Reason, "see DSK001") {
			pointing++
		}
	}
	if pointing < 20 {
		t.Errorf("%d rules skipped pointing at DSK001; want every rule that reads the guest", pointing)
	}
}

// setGPTEntryCount writes n as the entry count of both GPT headers of a
// 512-byte-sector disk and seals each with its CRC.
func setGPTEntryCount(t *testing.T, img string, n uint32) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{512, fi.Size() - 512} {
		h := make([]byte, 92)
		if _, err := f.ReadAt(h, off); err != nil {
			t.Fatal(err)
		}
		binary.LittleEndian.PutUint32(h[80:], n)
		binary.LittleEndian.PutUint32(h[16:], 0)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h))
		if _, err := f.WriteAt(h, off); err != nil {
			t.Fatal(err)
		}
	}
}

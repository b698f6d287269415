package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckGateExitCodesAndReports(t *testing.T) {
	dir := t.TempDir()
	rawImg, vhdImg := filepath.Join(dir, "d.raw"), filepath.Join(dir, "d.vhd")
	sparseFile(t, rawImg, 30<<20)
	if code, out := runBin(t, "convert", rawImg, vhdImg); code != 0 {
		t.Fatal(out)
	}

	code, out := runBin(t, "check", rawImg)
	if code != exitFailed || !strings.Contains(out, "VHD001") || !strings.Contains(out, "vhdprep convert") {
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
	var rules []struct {
		ID          string `json:"id"`
		Implemented bool   `json:"implemented"`
		Reason      string `json:"not_implemented_reason"`
	}
	if err := json.Unmarshal([]byte(out), &rules); err != nil || code != 0 || len(rules) < 50 {
		t.Fatalf("--list-rules: exit %d, %v", code, err)
	}
	for _, r := range rules {
		if !r.Implemented && r.Reason == "" {
			t.Errorf("%s is not implemented and says not why", r.ID)
		}
	}
}

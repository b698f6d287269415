package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/azurite"
	"github.com/vhdprep/vhdprep/internal/testimage"
)

// demoConfig is make demo's configuration, as a user would pass it.
func demoConfig(t *testing.T) string {
	return filepath.Join(testimage.RepoRoot(t), "scripts", "demo.vhdprep.yaml")
}

// TestPrepareCommand runs the real binary as a pipeline would: a gate that
// passes exits 0 with a report of every step, in text and JSON, and a
// JUnit file with a test case per step and the gate's rules; a gate that
// fails exits 1 and writes no output.
func TestPrepareCommand(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck")
	in := testimage.Path(t, "disk-debian-mbr-qcow2")
	dir := t.TempDir()
	out := filepath.Join(dir, "disk.vhd")

	code, text := runBin(t, "prepare", in, out, "--config", demoConfig(t))
	if code != exitOK {
		t.Fatalf("prepare: exit %d\n%s", code, text)
	}
	for _, want := range []string{"  convert      done", "  agent        done     vhdprep's agent", "KRN001 KRN002", "  gate         done     0 errors", "  upload       skipped", "remaining (fail-on error):"} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}

	junitFile := filepath.Join(dir, "prepare.xml")
	code, js := runBin(t, "prepare", in, out, "--config", demoConfig(t), "--force", "-o", "json", "--junit", junitFile)
	if code != exitOK {
		t.Fatalf("prepare -o json: exit %d\n%s", code, js)
	}
	var rep struct {
		Image   string `json:"image"`
		Output  string `json:"output"`
		Written bool   `json:"written"`
		Steps   []struct {
			Name   string   `json:"name"`
			Status string   `json:"status"`
			Files  []string `json:"files"`
		} `json:"steps"`
		Before struct {
			Errors int `json:"errors"`
		} `json:"check_before"`
		Check struct {
			Summary struct {
				Errors int `json:"errors"`
			} `json:"summary"`
		} `json:"check"`
	}
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if rep.Image != in || rep.Output != out || !rep.Written || len(rep.Steps) != 8 || rep.Before.Errors == 0 || rep.Check.Summary.Errors != 0 {
		t.Errorf("JSON report = %+v", rep)
	}
	if s := rep.Steps[3]; s.Name != "fix" || s.Status != "done" || len(s.Files) == 0 {
		t.Errorf("fix step = %+v", s)
	}
	b, err := os.ReadFile(junitFile)
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Suites []struct {
			Name    string `xml:"name,attr"`
			Tests   int    `xml:"tests,attr"`
			Skipped int    `xml:"skipped,attr"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &suites); err != nil {
		t.Fatal(err)
	}
	if len(suites.Suites) != 2 || suites.Suites[0].Tests != 8 || suites.Suites[0].Skipped != 1 || !strings.HasPrefix(suites.Suites[1].Name, "vhdprep check") {
		t.Errorf("JUnit = %+v\n%s", suites, b)
	}

	// The default rules keep the sample's errors: exit 1, no output.
	failed := filepath.Join(dir, "failed.vhd")
	code, text = runBin(t, "prepare", in, failed)
	if code != exitGate || !strings.Contains(text, "error   SSH001") || !strings.Contains(text, failed+" was not written") {
		t.Errorf("failing gate: exit %d\n%s", code, text)
	}
	if _, err := os.Stat(failed); err == nil {
		t.Error("the output was written though the gate failed")
	}
}

// TestPrepareUsage: every mistake in the flags, the upload destination's
// included, is exit 2 before any work; an input that is not there, 3.
func TestPrepareUsage(t *testing.T) {
	in := testimage.Path(t, "disk-debian-mbr")
	out := filepath.Join(t.TempDir(), "disk.vhd")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"prepare", in}, exitUsage, "accepts 2 arg"},
		{[]string{"prepare", in, out, "--agent", "bogus"}, exitUsage, "--agent must be one of auto, inject, replace, keep"},
		{[]string{"prepare", in, out, "--agent-binary", filepath.Join(t.TempDir(), "none")}, exitUsage, "--agent-binary: open"},
		{[]string{"prepare", in, out, "--container", "vhds"}, exitUsage, "--upload: "},
		{[]string{"prepare", in, out, "--blob-url", "https://a.blob.core.windows.net/c/b.vhd", "--managed-disk-sas", "https://x/y?sig=c2VjcmV0"}, exitUsage, "give only one of"},
		{[]string{"prepare", in, out, "--fail-on", "loud"}, exitUsage, "--fail-on"},
		{[]string{"prepare", filepath.Join(t.TempDir(), "absent.qcow2"), out}, exitFailed, "absent.qcow2"},
	} {
		code, text := runBin(t, c.args...)
		if code != c.code || !strings.Contains(text, c.want) || strings.Contains(text, "c2VjcmV0") {
			t.Errorf("%v: exit %d, %q; want exit %d saying %q", c.args[1:], code, text, c.code, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%v wrote the output", c.args[1:])
		}
	}
}

// TestPrepareUploads: with a destination, the output goes to the page
// blob once the gate passed; Azurite holds it, byte for byte.
func TestPrepareUploads(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck")
	srv := azurite.Start(t)
	srv.CreateContainer(t, "vhds")
	out := filepath.Join(t.TempDir(), "disk.vhd")
	code, text := runBin(t, "prepare", testimage.Path(t, "disk-debian-mbr"), out, "--config", demoConfig(t),
		"--connection-string", azurite.ConnectionString(srv.Endpoint), "--container", "vhds", "--blob", "prepared.vhd")
	if code != exitOK || !strings.Contains(text, "  upload       done") {
		t.Fatalf("prepare --upload: exit %d\n%s", code, text)
	}
	azurite.SameFiles(t, srv.Download(t, "vhds", "prepared.vhd"), out)
}

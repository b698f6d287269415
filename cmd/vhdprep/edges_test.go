package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// The small things a new user meets first (issue 18, point 7), run as the
// real binary.

func TestVersionFlag(t *testing.T) {
	_, want := runBin(t, "version")
	if code, out := runBin(t, "--version"); code != exitOK || out != want || !strings.HasPrefix(out, "vhdprep ") {
		t.Fatalf("--version: exit %d, %q; vhdprep version says %q", code, out, want)
	}
}

func TestOutputFormatIgnoresCaseAndHintsAFileName(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	sparseFile(t, raw, 30<<20)
	code, out := runBin(t, "info", raw, "-o", "JSON")
	if code != exitOK || !json.Valid([]byte(out)) {
		t.Fatalf("info -o JSON: exit %d\n%s", code, out)
	}
	for _, c := range []struct {
		args []string
		hint string
	}{
		{[]string{"convert", raw, "-o", "Disk.vhd"}, "; the output file is the second argument: vhdprep convert " + raw + " Disk.vhd"},
		{[]string{"info", raw, "-o", "info.json"}, "; -o names the format: vhdprep info " + raw + " -o json > info.json"},
		{[]string{"check", raw, "-o", "report.json"}, "vhdprep check " + raw + " -o json > report.json (--junit FILE and --sarif FILE"},
	} {
		code, out := runBin(t, c.args...)
		if code != exitUsage || !strings.Contains(out, c.hint) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("%v: exit %d, want 2 and one line with %q:\n%s", c.args, code, c.hint, out)
		}
	}
}

func TestRuleIDsIgnoreCase(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	sparseFile(t, raw, 30<<20)
	config := filepath.Join(dir, "vhdprep.yaml")
	os.WriteFile(config, []byte("severity:\n  dsk001: info\n"), 0o644)
	code, out := runBin(t, "check", raw, "--disable", "vhd001,Vhd004", "--config", config, "-o", "json")
	var rep struct {
		Rules []struct{ ID, Status, Severity string } `json:"rules"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code == exitUsage {
		t.Fatalf("check: exit %d, %v\n%s", code, err, out)
	}
	for _, r := range rep.Rules {
		if (r.ID == "VHD001" || r.ID == "VHD004") && r.Status != "disabled" || r.ID == "DSK001" && r.Severity != "info" {
			t.Errorf("%+v", r)
		}
	}
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	img := testimage.Copy(t, "disk-debian-mbr")
	if code, out := runBin(t, "fix", img, "--dry-run", "--only", "krn001"); code != exitOK || !strings.Contains(out, "KRN001: [") {
		t.Errorf("fix --only krn001: exit %d\n%s", code, out)
	}
}

// A typo in the config file names its line and the key that was meant.
func TestConfigTypoNamesTheLine(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	sparseFile(t, raw, 30<<20)
	config := filepath.Join(dir, ".vhdprep.yaml")
	os.WriteFile(config, []byte("fail-on: warning\ndisabel: [KRN003]\n"), 0o644)
	code, out := runBin(t, "check", raw, "--config", config)
	want := config + `:2: unknown key "disabel" (did you mean "disable"?)`
	if code != exitUsage || !strings.Contains(out, want) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("exit %d, want 2 and one line with %q:\n%s", code, want, out)
	}
}

// convert --in-place on a file already in the format asked for changes
// nothing and succeeds, so a script may run it twice.
func TestConvertInPlaceNothingToDo(t *testing.T) {
	dir := t.TempDir()
	raw, vhd := filepath.Join(dir, "disk.raw"), filepath.Join(dir, "disk.vhd")
	sparseFile(t, raw, 30<<20)
	if code, out := runBin(t, "convert", raw, vhd); code != exitOK {
		t.Fatal(out)
	}
	for _, c := range [][]string{{"convert", "--in-place", vhd}, {"convert", "--in-place", "--to", "raw", raw}} {
		file := c[len(c)-1]
		sum := fileSum(t, file)
		code, out := runBin(t, c...)
		if code != exitOK || !strings.Contains(out, "nothing to do") || fileSum(t, file) != sum {
			t.Errorf("%v: exit %d\n%s", c, code, out)
		}
	}
	if code, out := runBin(t, "convert", "--in-place", vhd, "--size", "40M"); code != exitFailed || !strings.Contains(out, "vhdprep resize "+vhd+" --size 41943040") {
		t.Errorf("--in-place --size on a fixed VHD: exit %d\n%s", code, out)
	}
}

// ls prints as ls -l does (a link as lrwxrwxrwx, name -> target, names
// left-aligned) and takes .. as a shell's cd does.
func TestLsLikeLsL(t *testing.T) {
	img := testimage.Path(t, "disk-debian-mbr")
	code, root := runBin(t, "ls", img, "/")
	if code != exitOK || !strings.Contains(root, "lrwxrwxrwx ") || !strings.Contains(root, " bin -> usr/bin\n") || !strings.Contains(root, "drwxr-xr-x") || !strings.Contains(root, " etc\n") {
		t.Fatalf("ls /: exit %d\n%s", code, root)
	}
	for _, p := range []string{"/etc/..", "..", "/usr/../.."} {
		if code, out := runBin(t, "ls", img, p); code != exitOK || out != root {
			t.Errorf("ls %s: exit %d\n%s", p, code, out)
		}
	}
}

package lint

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// placeholderWord is IMAGE or FIXED as a word: the catalog's own
// placeholders, which no user-facing text without an image may show.
var placeholderWord = regexp.MustCompile(`\b(IMAGE|FIXED)\b`)

// Without an image (check --list-rules, SARIF's rule help) a command names
// the image <image> and the VHD to make <fixed.vhd>, marked for the user
// to substitute; every rule a vhdprep command repairs names it.
func TestCatalogCommandsMarkWhatToSubstitute(t *testing.T) {
	want := map[string]string{
		"VHD001": "vhdprep convert <image> <fixed.vhd>",
		"VHD003": "vhdprep convert --accept-data-loss <image> <fixed.vhd>",
		"VHD004": "vhdprep resize <image> --align",
		"KRN001": "vhdprep fix <image> --only KRN001",
		"AGT001": "vhdprep agent inject <image>",
		"SEC001": "vhdprep deprovision <image> --remove-users",
		"SEC002": "vhdprep deprovision <image>",
		"DSK002": "",
	}
	for _, r := range Catalog() {
		fix, cmd := r.CatalogFix(), r.CatalogCommand()
		if placeholderWord.MatchString(fix) || placeholderWord.MatchString(cmd) {
			t.Errorf("%s: %q, %q name a placeholder as a file", r.ID, fix, cmd)
		}
		if w, ok := want[r.ID]; ok && cmd != w {
			t.Errorf("%s: command %q, want %q", r.ID, cmd, w)
		}
		if r.Fixable && r.Check != nil && cmd == "" {
			t.Errorf("%s is fixable, but the catalog names no command", r.ID)
		}
		if cmd != "" && !strings.HasPrefix(cmd, "vhdprep ") || strings.Contains(cmd, " (") {
			t.Errorf("%s: command %q is not a command alone", r.ID, cmd)
		}
	}
	var sarif bytes.Buffer
	if err := WriteSARIF(&sarif, &Report{Target: "disk.vhd", Outcomes: outcomesOf(Catalog())}, "test"); err != nil {
		t.Fatal(err)
	}
	if m := placeholderWord.FindString(sarif.String()); m != "" {
		t.Errorf("SARIF's rule help names %s", m)
	}
}

func outcomesOf(rules []*Rule) []Outcome {
	var out []Outcome
	for _, r := range rules {
		out = append(out, Outcome{Rule: r, ID: r.ID, Severity: r.Severity, Status: Passed, Findings: []Finding{}})
	}
	return out
}

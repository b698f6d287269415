package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// check --list-rules has no image: its commands name it <image> (and the
// fixed VHD to make <fixed.vhd>), marked for the user to substitute, and a
// line says so; never IMAGE or FIXED, which read as file names.
func TestListRulesMarksThePlaceholders(t *testing.T) {
	placeholder := regexp.MustCompile(`\b(IMAGE|FIXED)\b`)
	code, text := runBin(t, "check", "--list-rules")
	if code != exitOK || placeholder.MatchString(text) {
		t.Fatalf("--list-rules: exit %d, names IMAGE or FIXED:\n%s", code, text)
	}
	for _, row := range []string{
		`(?m)^ID +SEVERITY +RULE +SOURCE +REPAIRED BY$`,
		`(?m)^VHD001 +error +the file is a fixed VHD +AZ-GEN +vhdprep convert <image> <fixed\.vhd>$`,
		`(?m)^KRN001 +error +.* +vhdprep fix <image> --only KRN001$`,
		`(?m)^SEC001 +error +.* +vhdprep deprovision <image> --remove-users$`,
		`(?m)^DSK002 +error +.* +-$`,
		`(?m)^<image> stands for your image file`,
	} {
		if !regexp.MustCompile(row).MatchString(text) {
			t.Errorf("--list-rules lacks a line matching %s", row)
		}
	}
	code, out := runBin(t, "check", "--list-rules", "-o", "json")
	var list struct {
		Rules []struct{ ID, Fix, Command string }
	}
	if err := json.Unmarshal([]byte(out), &list); code != exitOK || err != nil || placeholder.MatchString(out) {
		t.Fatalf("--list-rules -o json: exit %d, %v\n%s", code, err, out)
	}
	for _, r := range list.Rules {
		if r.ID == "AGT001" && (r.Command != "vhdprep agent inject <image>" || r.Fix != r.Command) {
			t.Errorf("AGT001: fix %q, command %q", r.Fix, r.Command)
		}
		if strings.HasPrefix(r.Fix, "vhdprep ") && r.Command == "" {
			t.Errorf("%s: fix %q, but no command", r.ID, r.Fix)
		}
	}
}

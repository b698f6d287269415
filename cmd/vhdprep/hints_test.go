package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// Every command check names as the repair of a finding can be pasted as
// it stands (with --dry-run added) and plans a change for that rule; and
// every rule fix --dry-run plans a change for is one check named fix for.
func TestCheckCommandsCanBePasted(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	img := testimage.Copy(t, "disk-debian-mbr")
	_, out := runBin(t, "check", img, "--output", "json")
	var rep struct {
		Rules []struct {
			ID       string `json:"id"`
			Findings []struct {
				Fix     string `json:"fix"`
				Fixable bool   `json:"fixable"`
				Command string `json:"command"`
			} `json:"findings"`
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	byFix := map[string]bool{}
	commands := map[string]string{}
	for _, r := range rep.Rules {
		for _, f := range r.Findings {
			if strings.Contains(f.Fix, "IMAGE") || f.Fixable != (f.Command != "") {
				t.Errorf("%s: fix %q, fixable %v, command %q", r.ID, f.Fix, f.Fixable, f.Command)
			}
			if f.Command != "" {
				commands[r.ID] = f.Command
			}
		}
	}
	if len(commands) < 4 {
		t.Fatalf("check names only %v", commands)
	}
	for id, command := range commands {
		args := strings.Fields(command)
		if args[0] != "vhdprep" {
			t.Errorf("%s: %q", id, command)
			continue
		}
		code, out := runBin(t, append(args[1:], "--dry-run")...)
		want := id + ": ["
		if args[1] == "agent" {
			want = "write  /usr/sbin/vhdprep-agent"
		}
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("%s: %s --dry-run: exit %d, no %q:\n%s", id, command, code, want, out)
		}
		byFix[id] = args[1] == "fix"
	}
	_, out = runBin(t, "fix", img, "--dry-run")
	for _, line := range strings.Split(out, "\n") {
		if id, _, ok := strings.Cut(line, ": ["); ok && len(id) == 6 && !byFix[id] {
			t.Errorf("fix --dry-run plans %s, which check did not name fix for", line)
		}
	}
}

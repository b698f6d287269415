//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// configCopies writes files (names under dir; @D@ in their text stands
// for the directory they are in) twice: into the image's tree at inside,
// for the guest's own tools in a chroot, and under dir of a fresh guest
// tree for vhdprep, which it returns.
func configCopies(t *testing.T, root, inside, dir string, files map[string]string, mode os.FileMode) string {
	t.Helper()
	os.RemoveAll(root + inside)
	guest := t.TempDir()
	for _, to := range []struct{ base, d string }{{root + inside, inside}, {filepath.Join(guest, dir), dir}} {
		for name, text := range files {
			p := filepath.Join(to.base, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(strings.ReplaceAll(text, "@D@", to.d)), mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	return guest
}

// ruleOutcome is what vhdprep check says of one rule on a guest tree: its
// status and its findings' messages.
func ruleOutcome(t *testing.T, vhdprep, guest, id string) (status string, messages []string) {
	t.Helper()
	report, _ := exec.Command(vhdprep, "check", "--root", guest, "-o", "json", "-q").Output()
	var rep struct {
		Rules []struct {
			ID       string `json:"id"`
			Status   string `json:"status"`
			Findings []struct {
				Message string `json:"message"`
			} `json:"findings"`
		} `json:"rules"`
	}
	if err := json.Unmarshal(report, &rep); err != nil {
		t.Fatalf("check's report: %v\n%s", err, report)
	}
	for _, r := range rep.Rules {
		if r.ID == id {
			for _, f := range r.Findings {
				messages = append(messages, f.Message)
			}
			return r.Status, messages
		}
	}
	t.Fatalf("check's report has no %s", id)
	return "", nil
}

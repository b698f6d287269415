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

// configCase is a configuration as images carry it: files (names under
// the directory the program reads; @D@ in their text stands for the
// directory they are in, so the guest's own program can read a copy
// elsewhere).
type configCase struct {
	name  string
	files map[string]string
}

// guestProgram is a program of the image's that reads its configuration
// from dir (in files of mode) and that a rule's verdict is held to.
type guestProgram struct {
	path   string // in the image's tree, without a leading slash
	dir    string // its configuration directory: /etc/ssh
	mode   os.FileMode
	inside string // where the image's tree gets each case, for a chroot
}

// eachCase runs agrees in a subtest per case, the image skipped where it
// has no such program. The case's files are copied twice: into the
// image's tree at g.inside, and under g.dir of a fresh guest tree for
// vhdprep (which holds the program too, as the rules look for it), whose
// path agrees gets.
func (g guestProgram) eachCase(t *testing.T, root string, cases []configCase, agrees func(t *testing.T, guest string)) {
	if _, err := os.Stat(filepath.Join(root, g.path)); err != nil {
		t.Skipf("the image has no /%s", g.path)
	}
	t.Cleanup(func() { os.RemoveAll(root + g.inside) })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			os.RemoveAll(root + g.inside)
			guest := t.TempDir()
			for _, to := range []struct{ base, d string }{{root + g.inside, g.inside}, {filepath.Join(guest, g.dir), g.dir}} {
				for name, text := range c.files {
					p := filepath.Join(to.base, name)
					os.MkdirAll(filepath.Dir(p), 0o755)
					if err := os.WriteFile(p, []byte(strings.ReplaceAll(text, "@D@", to.d)), g.mode); err != nil {
						t.Fatal(err)
					}
				}
			}
			os.MkdirAll(filepath.Join(guest, filepath.Dir(g.path)), 0o755)
			os.WriteFile(filepath.Join(guest, g.path), nil, 0o755)
			agrees(t, guest)
		})
	}
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

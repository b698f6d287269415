package lint

import (
	"archive/zip"
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// Microsoft's CustomScript handler (../shared/fixtures/customscript) runs
// the guest's openssl to decrypt its protected settings: the reason AGT007
// asks for openssl whatever the agent.
func TestCustomScriptRunsOpenSSL(t *testing.T) {
	z, err := zip.OpenReader(filepath.Join(testimage.SharedDir(testimage.RepoRoot(t)), "fixtures", "customscript", "custom-script-extension.zip"))
	if err != nil {
		t.Skipf("CustomScript fixture not found beside the repository: %v", err)
	}
	defer z.Close()
	f, err := z.Open("bin/custom-script-extension")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"openssl", "cms", "smime", "-decrypt"} {
		if !bytes.Contains(b, []byte(s)) {
			t.Errorf("the CustomScript handler does not mention %q", s)
		}
	}
}

func TestExtensionPrerequisites(t *testing.T) {
	waagent := map[string]string{"usr/sbin/waagent": ""}
	vhdprep := map[string]string{"usr/sbin/vhdprep-agent": "", "etc/vhdprep-agent.conf": "Extensions.Enabled=y\n"}
	openssl := map[string]string{"usr/bin/openssl": ""}
	python3 := map[string]string{"usr/bin/python3": ""}
	for _, c := range []struct {
		name, rule string
		files      map[string]string
		want       []string // the findings' messages contain these, in order; none: pass
	}{
		{"vhdprep agent, bare", "AGT007", vhdprep, []string{"no openssl: the CustomScript, Run Command extensions fail", "no /usr/bin/python or /usr/bin/python3: the VMAccess, Log Analytics (OMS), Azure Disk Encryption, Linux Diagnostics extensions fail"}},
		{"vhdprep agent with both", "AGT007", with(with(vhdprep, openssl), python3), nil},
		{"WALinuxAgent, python but no openssl", "AGT007", with(waagent, python3), []string{"no openssl"}},
		{"WALinuxAgent, openssl in /bin", "AGT007", with(with(waagent, map[string]string{"bin/openssl": ""}), python3), nil},
		{"extensions off", "AGT007", with(waagent, map[string]string{"etc/waagent.conf": "Extensions.Enabled=n\n"}), nil},
		// Each agent's own reading of its switch: WALinuxAgent takes y or
		// n in any case and ends a value at #; "no" is not its word, so
		// its default (on) holds. The vhdprep agent takes "no".
		{"extensions off as WALinuxAgent reads it", "AGT007", with(waagent, map[string]string{"etc/waagent.conf": "Extensions.Enabled=N # none here\n"}), nil},
		{"WALinuxAgent does not read no", "AGT007", with(with(waagent, python3), map[string]string{"etc/waagent.conf": "Extensions.Enabled=no\n"}), []string{"no openssl"}},
		{"vhdprep agent reads no", "AGT007", map[string]string{"usr/sbin/vhdprep-agent": "", "etc/vhdprep-agent.conf": "Extensions.Enabled=no\n"}, nil},
		{"cloud-init alone runs no extension", "AGT007", map[string]string{"usr/bin/cloud-init": ""}, nil},
		{"no agent yet: the one AGT001 asks for runs extensions", "AGT007", map[string]string{"etc/hostname": "x"}, []string{"no openssl", "no /usr/bin/python"}},

		// AGT003 applies with the vhdprep agent too, and leaves no
		// Python at all to AGT007.
		{"vhdprep agent, python3 only", "AGT003", with(vhdprep, python3), []string{"/usr/bin/python is missing"}},
		{"vhdprep agent, extensions off", "AGT003", with(python3, map[string]string{"usr/sbin/vhdprep-agent": "", "etc/vhdprep-agent.conf": "Extensions.Enabled=n\n"}), nil},
		{"vhdprep agent, no python", "AGT003", vhdprep, nil},
		{"WALinuxAgent, no python", "AGT003", waagent, []string{"WALinuxAgent is installed but no Python interpreter is"}},
	} {
		o := outcome(t, tree(t, c.files), c.rule)
		if len(c.want) == 0 {
			if o.Status != Passed {
				t.Errorf("%s: %s %s: %s (%+v), want pass", c.rule, c.name, o.Status, o.Reason, o.Findings)
			}
			continue
		}
		if o.Status != Failed || len(o.Findings) != len(c.want) {
			t.Errorf("%s: %s: %s %+v, want %d findings", c.rule, c.name, o.Status, o.Findings, len(c.want))
			continue
		}
		for i, w := range c.want {
			if !strings.Contains(o.Findings[i].Message, w) {
				t.Errorf("%s: %s: finding %q lacks %q", c.rule, c.name, o.Findings[i].Message, w)
			}
			if strings.Contains(o.Findings[i].Fix, "inject") {
				t.Errorf("%s: %s: the fix %q says inject avoids it", c.rule, c.name, o.Findings[i].Fix)
			}
		}
	}
	if fix := ruleByID("AGT003").Fix; strings.Contains(fix, "inject") {
		t.Errorf("AGT003's advice %q says inject avoids it", fix)
	}
}

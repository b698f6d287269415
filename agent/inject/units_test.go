package inject

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/agent/layout"
	"github.com/vhdprep/vhdprep/internal/testimage"
)

// systemd itself reads the units: any unknown key, bad value or section is
// a finding. The agent binary is not on the test machine, which is the one
// thing it may say.
func TestUnitsPassSystemdAnalyzeVerify(t *testing.T) {
	testimage.RequireTools(t, "systemd-analyze")
	dir := t.TempDir()
	var units []string
	for name, text := range map[string]string{layout.ProvisionUnit: provisionUnitText, layout.DaemonUnit: daemonUnitText} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
	}
	out, _ := exec.Command("systemd-analyze", append([]string{"verify"}, units...)...).CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" && !strings.Contains(line, "Command "+layout.Binary+" is not executable") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}

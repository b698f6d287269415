package main

import (
	"os/exec"
	"strings"
	"testing"
)

// vhdprep installs the guest agent but never runs it: of the agent's
// packages it links only the installer and the agent's layout in a guest,
// not its runtime (wire server, extensions, provisioning, certificates).
func TestNoAgentRuntimeInVhdprep(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{
		"github.com/vhdprep/vhdprep/agent/inject": true,
		"github.com/vhdprep/vhdprep/agent/layout": true,
	}
	for _, p := range strings.Fields(string(out)) {
		if (p == "github.com/vhdprep/vhdprep/agent" || strings.HasPrefix(p, "github.com/vhdprep/vhdprep/agent/")) && !allowed[p] {
			t.Errorf("vhdprep links %s, a package of the agent's runtime", p)
		}
	}
}

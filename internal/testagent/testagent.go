// Package testagent builds the real vhdprep agent for tests that install
// it: a fresh clone has no agent built into vhdprep (make build embeds
// it), and tests must not depend on a make target having run.
package testagent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	once sync.Once
	bin  []byte
	err  error
)

// Binary returns the agent, static, built once per test process for the
// host's architecture.
func Binary(tb testing.TB) []byte {
	tb.Helper()
	once.Do(func() { bin, err = build() })
	if err != nil {
		tb.Fatalf("building vhdprep-agent: %v", err)
	}
	return bin
}

func build() ([]byte, error) {
	dir, err := os.MkdirTemp("", "vhdprep-agent-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "vhdprep-agent")
	cmd := exec.Command("go", "build", "-o", out, "github.com/vhdprep/vhdprep/cmd/vhdprep-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%v\n%s", err, msg)
	}
	return os.ReadFile(out)
}

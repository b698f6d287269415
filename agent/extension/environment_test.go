package extension

import (
	"archive/zip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/agent/internal/fixtures"
)

// Microsoft's CustomScript shim reads HandlerEnvironment.json as text,
// matching `"logFolder": "` up to `",` as WALinuxAgent's json.dumps
// spacing writes it: the real shim must find the log folder the agent
// made, not a directory named after the JSON.
func TestCustomScriptShimFindsItsLogFolder(t *testing.T) {
	zr, err := zip.OpenReader(fixtures.CustomScript(t))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	root := t.TempDir()
	h := Dirs{Lib: filepath.Join(root, "lib"), Log: filepath.Join(root, "log")}.handler("Microsoft.Azure.Extensions.CustomScript", "2.1.19")
	if err := os.MkdirAll(filepath.Join(h.dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	shim := filepath.Join(h.dir, "bin", "custom-script-shim")
	f, err := zr.Open("bin/custom-script-shim")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if err := os.WriteFile(shim, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := h.initialize(); err != nil {
		t.Fatal(err)
	}
	// Without a command the shim prints where it would log, then stops.
	out, _ := exec.Command("bash", shim).CombinedOutput()
	if want := "Placing logs in directory " + h.logDir + "\n"; !strings.Contains(string(out), want) {
		t.Errorf("the real shim read HandlerEnvironment.json as:\n%s\nwant %q", out, want)
	}
}

func TestPythonSpacing(t *testing.T) {
	in := `[{"a":"x:y, \"q\":z","b":[1,2],"c":{"d":1.5}}]`
	want := `[{"a": "x:y, \"q\":z", "b": [1, 2], "c": {"d": 1.5}}]`
	if got := string(pythonSpacing([]byte(in))); got != want {
		t.Errorf("pythonSpacing:\n got %s\nwant %s", got, want)
	}
}

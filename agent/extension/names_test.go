package extension

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/agent/extconf"
	"github.com/vhdprep/vhdprep/agent/extension/extensiontest"
)

// A goal state whose handler names or versions climb out
// of /var/lib/waagent writes nothing outside the agent's directories: the
// handler is reported invalid, and a well-named handler beside it runs.
// Each hostile handler has a manifest and a package the agent can fetch, so
// only the name stands between it and a write outside.
func TestGoalStateNamesCannotLeaveTheAgentsDirectories(t *testing.T) {
	settings := map[string]any{"publicSettings": map[string]string{"commandToExecute": "echo x > marker"}}
	for name, p := range map[string]extensiontest.Plugin{
		"handler name": {Name: "../../escaped", Version: "1.0"},
		"dot-dot name": {Name: "..", Version: "1.0"},
		"version":      {Name: "Vhdprep.Test.Other", Version: "1.0/../../../escaped"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.serve(testHandlerName, "1.0", testHandlerZip(t, "1.0", ""))
			h.serve("hostile", p.Version, extensiontest.CustomScript(t, p.Name, multiConfigManifest))
			p.State, p.HandlerSettings, p.ManifestURL = "enabled", settings, h.sim.URL()+"/manifests/hostile.xml"
			good := extensiontest.Plugin{Name: testHandlerName, Version: "1.0", State: "enabled", HandlerSettings: settings,
				ManifestURL: h.sim.URL() + "/manifests/" + testHandlerName + ".xml"}
			cfg, err := extconf.Parse([]byte(extensiontest.ExtensionsConfig(h.sim.StatusBlobURL(), extconf.BlockBlob, good, p)))
			if !errors.Is(err, extconf.ErrInvalidPlugin) || !strings.Contains(err.Error(), "cannot be") {
				t.Errorf("Parse = %v; want the name refused", err)
			}
			h.proc.Process(context.Background(), cfg)
			root := filepath.Dir(filepath.Dir(filepath.Dir(h.dirs.Lib)))
			allowed := map[string]bool{root: true, filepath.Dir(filepath.Dir(h.dirs.Lib)): true, filepath.Dir(h.dirs.Lib): true, filepath.Dir(h.dirs.Log): true}
			filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
				if !allowed[path] && !strings.HasPrefix(path, h.dirs.Lib) && !strings.HasPrefix(path, h.dirs.Log) {
					t.Errorf("%s was made outside the agent's directories", path)
				}
				return nil
			})
			s := h.upload(cfg)
			if status, _, _ := s.handler(t, testHandlerName); status != "Ready" {
				t.Errorf("the well-named handler beside it: %s", status)
			}
		})
	}
}

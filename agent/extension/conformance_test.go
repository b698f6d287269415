package extension

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/agent/extconf"
	"github.com/vhdprep/vhdprep/agent/extension/extensiontest"
	"github.com/vhdprep/vhdprep/agent/internal/fixtures"
)

// conformanceHandler is a shell-only handler for the fixtures' handlers:
// it logs "<op> <Name>-<Version> <ext>.<seq> <disable codes>" to calls.log beside the
// handler directories and, on enable, checks that its settings file is
// there and reports success naming it. Multi-config when mc.
func conformanceHandler(t *testing.T, mc bool) []byte {
	manifest := `[{"version":1.0,"handlerManifest":{"installCommand":"./h.sh install","uninstallCommand":"./h.sh uninstall","updateCommand":"./h.sh update","enableCommand":"./h.sh enable","disableCommand":"./h.sh disable"` +
		fmt.Sprintf(`,"supportsMultipleExtensions":%t}}]`, mc)
	script := `#!/bin/sh
f=${ConfigExtensionName:+$ConfigExtensionName.}$ConfigSequenceNumber
echo "$1 ${AZURE_GUEST_AGENT_EXTENSION_PATH##*/} $f $AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODES_MULTIPLE_EXTENSIONS" >> ../calls.log
[ "$1" = enable ] || exit 0
[ -f config/$f.settings ] || exit 3
printf '[{"version":"1.0","timestampUTC":"2026-01-01T00:00:00Z","status":{"name":"x","operation":"Enable","status":"success","code":0,"formattedMessage":{"lang":"en-US","message":"enabled %s"}}}]' "$f" > status/$f.status
`
	return extensiontest.Zip(t, extensiontest.Entry{Name: "HandlerManifest.json", Body: manifest},
		extensiontest.Entry{Name: "h.sh", Body: script, Mode: 0o755})
}

// TestConformanceMultiConfig runs WALinuxAgent's multi-config goal states
// through the processor, in the orders WALinuxAgent's tests apply them,
// with the handlers served locally: every enabled extension is enabled
// with its own settings and reported under its name, every deleted one
// is not reported and leaves no settings.
func TestConformanceMultiConfig(t *testing.T) {
	dir := fixtures.Require(t)
	sequences := [][]string{
		{"ext_conf_with_multi_config.xml", "ext_conf_with_disabled_multi_config.xml"},
		{"ext_conf_multi_config_no_dependencies.xml", "ext_conf_mc_disabled_extensions.xml", "ext_conf_mc_update_extensions.xml"},
		{"ext_conf_with_multi_config_dependencies.xml"},
	}
	all, _ := filepath.Glob(filepath.Join(dir, "wire/multi-config/*.xml"))
	for _, f := range all {
		if !slices.ContainsFunc(sequences, func(s []string) bool { return slices.Contains(s, filepath.Base(f)) }) {
			t.Errorf("fixture %s is in no sequence", f)
		}
	}
	for _, seq := range sequences {
		t.Run(seq[0], func(t *testing.T) {
			h := newHarness(t)
			for _, f := range seq {
				cfg, err := extconf.Parse(fixtures.Read(t, dir, "wire/multi-config/"+f))
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				for i, pl := range cfg.Plugins {
					if h.versions[pl.Name][pl.Version] == "" {
						h.serve(pl.Name, pl.Version, conformanceHandler(t, pl.IsMultiConfig))
					}
					cfg.Plugins[i].Locations = []string{h.sim.URL() + "/manifests/" + pl.Name + ".xml"}
				}
				cfg.StatusUploadBlob = h.sim.StatusBlobURL()
				before := len(h.calls())
				if err := h.proc.Process(context.Background(), cfg); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				checkConformance(t, f, h, cfg, h.upload(cfg))
				checkEnableOrder(t, f, cfg, h.calls()[before:])
			}
			if slices.Contains(seq, "ext_conf_mc_update_extensions.xml") {
				// The update to 1.1.0 disabled 1.0.0's enabled extensions
				// and told the new version their exit codes.
				c := h.calls()
				i := slices.IndexFunc(c, func(s string) bool { return strings.HasPrefix(s, "update ") })
				if i < 0 || !strings.Contains(c[i], `{"extensionName":"thirdExtension","exitCode":"0"}`) ||
					!strings.Contains(c[i], `{"extensionName":"fourthExtension","exitCode":"0"}`) {
					t.Errorf("update call:\n%s", strings.Join(c, "\n"))
				}
			}
		})
	}
}

func checkConformance(t *testing.T, file string, h *harness, cfg *extconf.Config, s statusDoc) {
	t.Helper()
	for _, pl := range cfg.Plugins {
		if !pl.IsMultiConfig {
			if st, ext, seq := s.handler(t, pl.Name); st != "Ready" || ext.Status != StatusSuccess || seq != pl.Extensions[0].SeqNo {
				t.Errorf("%s: %s: %s %+v seq %d", file, pl.Name, st, ext, seq)
			}
			continue
		}
		reported := s.extensions(t, pl.Name)
		for _, e := range pl.Extensions {
			st, ok := reported[e.Name]
			if e.State == extconf.StateDisabled {
				settings, _ := filepath.Glob(filepath.Join(h.dirs.Lib, pl.Name+"-"+pl.Version, "config", e.Name+".*.settings"))
				if ok || len(settings) > 0 {
					t.Errorf("%s: deleted %s.%s: reported %v, settings %v", file, pl.Name, e.Name, ok, settings)
				}
				continue
			}
			want := fmt.Sprintf("enabled %s.%d", e.Name, e.SeqNo)
			if st.Status != StatusSuccess || st.FormattedMessage == nil || st.FormattedMessage.Message != want {
				t.Errorf("%s: %s.%s: %+v, want success %q", file, pl.Name, e.Name, st, want)
			}
		}
	}
}

// TestConformanceInvalidConfig runs WALinuxAgent's invalid_config goal
// states through the processor: the invalid handler is reported NotReady
// with why, nothing of it runs, and a handler that depends on it waits,
// as in WALinuxAgent.
func TestConformanceInvalidConfig(t *testing.T) {
	dir := fixtures.Require(t)
	all, _ := filepath.Glob(filepath.Join(dir, "wire/invalid_config/*.xml"))
	if len(all) == 0 {
		t.Fatal("no invalid_config fixtures")
	}
	for _, f := range all {
		t.Run(filepath.Base(f), func(t *testing.T) {
			h := newHarness(t)
			cfg, err := extconf.Parse(fixtures.Read(t, dir, "wire/invalid_config/"+filepath.Base(f)))
			if cfg == nil || !errors.Is(err, extconf.ErrInvalidPlugin) {
				t.Fatalf("Parse: %v", err)
			}
			for i, pl := range cfg.Plugins {
				h.serve(pl.Name, pl.Version, conformanceHandler(t, false))
				cfg.Plugins[i].Locations = []string{h.sim.URL() + "/manifests/" + pl.Name + ".xml"}
			}
			cfg.StatusUploadBlob = h.sim.StatusBlobURL()
			if err := h.proc.Process(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			s := h.upload(cfg)
			for _, pl := range cfg.Plugins {
				var hs *handlerEntry
				for i := range s.AggregateStatus.Handlers {
					if s.AggregateStatus.Handlers[i].HandlerName == pl.Name {
						hs = &s.AggregateStatus.Handlers[i]
					}
				}
				want := "invalid plugin"
				if pl.Err == nil {
					want = "an extension it depends on failed"
				}
				if hs == nil || hs.Status != "NotReady" || hs.FormattedMessage == nil || !strings.Contains(hs.FormattedMessage.Message, want) {
					t.Errorf("%s: %+v, want NotReady saying %q", pl.Name, hs, want)
				}
			}
			if c, err := os.ReadFile(filepath.Join(h.dirs.Lib, "calls.log")); err == nil {
				t.Errorf("handler commands ran:\n%s", c)
			}
		})
	}
}

// checkEnableOrder checks that calls enabled the goal state's extensions
// by ascending DependsOn level, across handlers.
func checkEnableOrder(t *testing.T, file string, cfg *extconf.Config, calls []string) {
	t.Helper()
	levels := map[string]int{}
	for _, pl := range cfg.Plugins {
		for _, e := range pl.Extensions {
			f := fmt.Sprint(e.SeqNo)
			if e.Name != "" {
				f = e.Name + "." + f
			}
			levels[pl.Name+"-"+pl.Version+" "+f] = e.DependsOnLevel
		}
	}
	last, n := -1, 0
	for _, c := range calls {
		fields := strings.Fields(c)
		if len(fields) < 3 || fields[0] != "enable" {
			continue
		}
		level, ok := levels[fields[1]+" "+fields[2]]
		if !ok {
			t.Errorf("%s: enable of %s %s, which the goal state does not list", file, fields[1], fields[2])
		}
		if level < last {
			t.Errorf("%s: enable order breaks DependsOn levels:\n%s", file, strings.Join(calls, "\n"))
		}
		last, n = level, n+1
	}
	if n == 0 {
		t.Errorf("%s: nothing enabled", file)
	}
}

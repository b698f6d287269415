package extension

import (
	"path/filepath"
	"testing"

	"github.com/vhdprep/vhdprep/agent/internal/fixtures"
)

// TestHandlerManifestFixtures reads WALinuxAgent's handler_manifest
// fixtures to the values its HandlerManifest class gives them.
func TestHandlerManifestFixtures(t *testing.T) {
	dir := fixtures.Require(t)
	for name, want := range map[string]HandlerManifest{
		"valid_manifest.json":                  {ReportHeartbeat: true, ContinueOnUpdateFailure: true, SupportsMultipleExtensions: true},
		"manifest_boolean_fields_strings.json": {ReportHeartbeat: true, ContinueOnUpdateFailure: true, SupportsMultipleExtensions: true},
		"manifest_boolean_fields_false.json":   {},
		"manifest_boolean_fields_invalid.json": {},
		"manifest_no_optional_fields.json":     {},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := ParseHandlerManifest(fixtures.Read(t, dir, filepath.Join("ext", "handler_manifest", name)))
			if err != nil {
				t.Fatal(err)
			}
			want.Install, want.Uninstall, want.Update, want.Enable, want.Disable = "install_cmd", "uninstall_cmd", "update_cmd", "enable_cmd", "disable_cmd"
			if *m != want {
				t.Errorf("got %+v\nwant %+v", *m, want)
			}
			if !m.updateWithInstall() {
				t.Error("no updateMode must mean UpdateWithInstall")
			}
		})
	}
}

func TestHandlerManifestRefusals(t *testing.T) {
	for name, doc := range map[string]string{
		"not a list":     `{"handlerManifest":{"enableCommand":"x"}}`,
		"empty list":     `[]`,
		"no manifest":    `[{"name":"x"}]`,
		"no enable":      `[{"handlerManifest":{"installCommand":"x"}}]`,
		"command number": `[{"handlerManifest":{"enableCommand":1}}]`,
		"truncated":      `[{"handlerManifest":{"enableCommand":"x"`,
	} {
		if m, err := ParseHandlerManifest([]byte(doc)); err == nil {
			t.Errorf("%s: parsed to %+v, want an error", name, m)
		}
	}
	m, err := ParseHandlerManifest([]byte(`[{"handlerManifest":{"enableCommand":"e","updateMode":"UpdateWithoutInstall"}}]`))
	if err != nil || m.updateWithInstall() {
		t.Errorf("UpdateWithoutInstall: %+v %v", m, err)
	}
}

func FuzzParseHandlerManifest(f *testing.F) {
	if dir := fixtures.Dir(); dir != "" {
		for _, n := range []string{"valid_manifest.json", "manifest_boolean_fields_invalid.json"} {
			f.Add(fixtures.Read(f, dir, filepath.Join("ext", "handler_manifest", n)))
		}
	}
	f.Add([]byte(`[{"handlerManifest":{"enableCommand":"e","reportHeartbeat":"TRUE"}}]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		m, err := ParseHandlerManifest(doc)
		if err == nil && m.Enable == "" {
			t.Fatal("accepted a manifest without enableCommand")
		}
	})
}

package extconf

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// doc wraps plugins and settings in an ExtensionsConfig.
func doc(plugins, settings, extra string) []byte {
	return []byte(`<?xml version="1.0" encoding="utf-8"?><Extensions version="1.0.0.0" goalStateIncarnation="2">` +
		`<Plugins>` + plugins + `</Plugins><PluginSettings>` + settings + `</PluginSettings>` + extra + `</Extensions>`)
}

const csPlugin = `<Plugin name="Vhdprep.Test.CustomScript" version="1.2" location="http://m/1.xml" failoverlocation="http://m/2.xml" state="enabled" />`

func TestParseSingleConfig(t *testing.T) {
	c, err := Parse(doc(csPlugin,
		`<Plugin name="vhdprep.test.customscript" version="1.2"><DependsOn dependencyLevel="3"/>`+
			`<RuntimeSettings seqNo="7">{"runtimeSettings":[{"handlerSettings":{"publicSettings":{"commandToExecute":"true"},"protectedSettings":"QUJD","protectedSettingsCertThumbprint":"AB"}}]}</RuntimeSettings></Plugin>`,
		`<StatusUploadBlob statusBlobType="PageBlob">https://b/s?sig=x</StatusUploadBlob>`))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Plugins[0]
	if p.Name != "Vhdprep.Test.CustomScript" || p.Version != "1.2" || p.State != StateEnabled || p.IsMultiConfig || len(p.Locations) != 2 {
		t.Fatalf("plugin %+v", p)
	}
	e := p.Extensions[0]
	if e.Name != "" || e.SeqNo != 7 || e.DependsOnLevel != 3 || string(e.PublicSettings) != `{"commandToExecute":"true"}` || e.ProtectedSettings != "QUJD" || e.ProtectedSettingsCertThumbprint != "AB" {
		t.Errorf("extension %+v", e)
	}
	if c.StatusBlobType != PageBlob || c.StatusUploadBlob != "https://b/s?sig=x" {
		t.Errorf("status blob %s %q", c.StatusBlobType, c.StatusUploadBlob)
	}
}

func TestParseMultiConfig(t *testing.T) {
	c, err := Parse(doc(`<Plugin name="H" version="1" location="http://m" state="enabled"/>`,
		`<Plugin name="H" version="1"><DependsOn dependencyLevel="2" name="b"/>`+
			`<ExtensionRuntimeSettings seqNo="1" name="a" state="Disabled">{"runtimeSettings":[{"handlerSettings":{}}]}</ExtensionRuntimeSettings>`+
			`<ExtensionRuntimeSettings seqNo="4" name="b">{"runtimeSettings":[{"handlerSettings":{"publicSettings":null}}]}</ExtensionRuntimeSettings></Plugin>`, ""))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Plugins[0]
	if !p.IsMultiConfig || len(p.Extensions) != 2 {
		t.Fatalf("plugin %+v", p)
	}
	a, b := p.Extensions[0], p.Extensions[1]
	if a.Name != "a" || a.State != StateDisabled || a.DependsOnLevel != 0 || a.SeqNo != 1 {
		t.Errorf("a: %+v", a)
	}
	if b.Name != "b" || b.State != StateEnabled || b.DependsOnLevel != 2 || b.SeqNo != 4 || b.PublicSettings != nil {
		t.Errorf("b: %+v", b)
	}
}

func TestParseLenient(t *testing.T) {
	// As WALinuxAgent: settings that are not JSON keep the seqNo; a
	// dependencyLevel that is not a number is 0; an unknown blob type is
	// BlockBlob; no PluginSettings means no extensions.
	c, err := Parse(doc(csPlugin+`<Plugin name="Other" version="1" state="disabled"/>`,
		`<Plugin name="Vhdprep.Test.CustomScript" version="1.2"><DependsOn dependencyLevel="x"/><RuntimeSettings seqNo="3">not json</RuntimeSettings></Plugin>`,
		`<StatusUploadBlob statusBlobType="Tape">https://b</StatusUploadBlob>`))
	if err != nil {
		t.Fatal(err)
	}
	if e := c.Plugins[0].Extensions; len(e) != 1 || e[0].SeqNo != 3 || e[0].DependsOnLevel != 0 || e[0].PublicSettings != nil {
		t.Errorf("extensions %+v", e)
	}
	if c.Plugins[1].Extensions != nil || c.Plugins[1].State != StateDisabled {
		t.Errorf("other %+v", c.Plugins[1])
	}
	if c.StatusBlobType != BlockBlob {
		t.Errorf("blob type %s", c.StatusBlobType)
	}
}

func TestParseInvalidPlugins(t *testing.T) {
	for name, tc := range map[string]struct{ plugin, settings, want string }{
		"no state":          {`<Plugin name="P" version="1"/>`, "", "no state"},
		"no name":           {`<Plugin version="1" state="enabled"/>`, "", "no name"},
		"no seqNo":          {`<Plugin name="P" version="1" state="enabled"/>`, `<Plugin name="P" version="1"><RuntimeSettings>{}</RuntimeSettings></Plugin>`, "no seqNo"},
		"bad seqNo":         {`<Plugin name="P" version="1" state="enabled"/>`, `<Plugin name="P" version="1"><RuntimeSettings seqNo="-1">{}</RuntimeSettings></Plugin>`, "not a sequence number"},
		"no runtimeSetting": {`<Plugin name="P" version="1" state="enabled"/>`, `<Plugin name="P" version="1"><RuntimeSettings seqNo="1">{}</RuntimeSettings></Plugin>`, "no runtimeSettings"},
		"no handlerSetting": {`<Plugin name="P" version="1" state="enabled"/>`, `<Plugin name="P" version="1"><RuntimeSettings seqNo="1">{"runtimeSettings":[{}]}</RuntimeSettings></Plugin>`, "no handlerSettings"},
		"unnamed mc":        {`<Plugin name="P" version="1" state="enabled"/>`, `<Plugin name="P" version="1"><ExtensionRuntimeSettings seqNo="1">{}</ExtensionRuntimeSettings></Plugin>`, "has no name"},
		"unnamed dependsOn": {`<Plugin name="P" version="1" state="enabled"/>`, `<Plugin name="P" version="1"><DependsOn dependencyLevel="1"/><ExtensionRuntimeSettings seqNo="1" name="a">{}</ExtensionRuntimeSettings></Plugin>`, "names no extension"},
	} {
		c, err := Parse(doc(tc.plugin+csPlugin, tc.settings, ""))
		if !errors.Is(err, ErrInvalidPlugin) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", name, err, tc.want)
			continue
		}
		if c == nil || len(c.Plugins) != 2 || c.Plugins[0].Err == nil || c.Plugins[1].Err != nil {
			t.Errorf("%s: the valid plugin must survive: %+v", name, c)
		}
	}
}

func TestParseInvalidDocument(t *testing.T) {
	for name, d := range map[string]string{
		"not XML":       "{}",
		"other root":    "<Goal/>",
		"truncated":     string(doc(csPlugin, "", ""))[:60],
		"utf-16":        `<?xml version="1.0" encoding="utf-16"?><Extensions/>`,
		"over the size": "<Extensions>" + strings.Repeat(" ", MaxDocumentSize) + "</Extensions>",
	} {
		if c, err := Parse([]byte(d)); !errors.Is(err, ErrInvalid) || c != nil {
			t.Errorf("%s: %v, %v", name, c, err)
		}
	}
}

const seedManifest = `<?xml version="1.0" encoding="utf-8"?>
<PluginVersionManifest><Plugins>
<Plugin><Version>1.0</Version><Uris><Uri>http://p/a_1.0.zip</Uri><Uri>http://q/a_1.0.zip</Uri></Uris></Plugin>
<Plugin><Version>2.0</Version><Uris><Uri>http://p/a_2.0.zip</Uri></Uris><DisallowMajorVersionUpgrade>true</DisallowMajorVersionUpgrade></Plugin>
</Plugins><InternalPlugins><Plugin><Version>1.5</Version><Uris><Uri>http://p/a_1.5.zip</Uri></Uris></Plugin></InternalPlugins></PluginVersionManifest>`

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest([]byte(seedManifest))
	if err != nil {
		t.Fatal(err)
	}
	v := m.Versions
	if len(v) != 3 || v[0].Version != "1.0" || len(v[0].URIs) != 2 || !v[1].DisallowMajorVersionUpgrade || !v[2].IsInternal || v[1].IsInternal {
		t.Errorf("versions %+v", v)
	}
	for name, d := range map[string]string{
		"no version": `<PluginVersionManifest><Plugins><Plugin><Uris><Uri>http://x</Uri></Uris></Plugin></Plugins></PluginVersionManifest>`,
		"no uri":     `<PluginVersionManifest><Plugins><Plugin><Version>1</Version></Plugin></Plugins></PluginVersionManifest>`,
		"other root": `<Extensions/>`,
		"not XML":    `nope`,
	} {
		if _, err := ParseManifest([]byte(d)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(doc(csPlugin, `<Plugin name="Vhdprep.Test.CustomScript" version="1.2"><RuntimeSettings seqNo="0">{"runtimeSettings":[{"handlerSettings":{"publicSettings":{}}}]}</RuntimeSettings></Plugin>`,
		`<RequiredFeatures><RequiredFeature><Name>MultipleExtensionsPerHandler</Name></RequiredFeature></RequiredFeatures><StatusUploadBlob statusBlobType="BlockBlob">https://b</StatusUploadBlob>`))
	f.Add(doc(`<Plugin name="H" version="1" state="enabled"><additionalLocations><additionalLocation>http://a</additionalLocation></additionalLocations></Plugin>`,
		`<Plugin name="H" version="1"><DependsOn dependencyLevel="1" name="a"/><ExtensionRuntimeSettings seqNo="1" name="a" state="enabled">{"runtimeSettings":[{"handlerSettings":{}}]}</ExtensionRuntimeSettings></Plugin>`, ""))
	f.Add([]byte("<Extensions/>"))
	f.Fuzz(func(t *testing.T, d []byte) {
		c, err := Parse(d)
		if c == nil {
			if err == nil {
				t.Fatal("nil config without an error")
			}
			return
		}
		for _, p := range c.Plugins {
			if p.Err != nil && (p.Extensions != nil || !errors.Is(err, ErrInvalidPlugin)) {
				t.Fatalf("invalid plugin %q kept extensions or went unreported", p.Name)
			}
		}
		if c.StatusBlobType != BlockBlob && c.StatusBlobType != PageBlob {
			t.Fatalf("blob type %q", c.StatusBlobType)
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(seedManifest))
	f.Add([]byte(`<PluginVersionManifest/>`))
	f.Fuzz(func(t *testing.T, d []byte) {
		m, err := ParseManifest(d)
		if err != nil {
			return
		}
		for _, v := range m.Versions {
			if v.Version == "" || len(v.URIs) == 0 {
				t.Fatalf("version %+v accepted", v)
			}
		}
	})
}

func TestParseArtifactsProfile(t *testing.T) {
	for d, want := range map[string]bool{`{"onHold":true}`: true, `{"onHold":"True"}`: true, `{"onHold":false}`: false, `{}`: false, `{"onHold":"FALSE"}`: false} {
		if got, err := ParseArtifactsProfile([]byte(d)); err != nil || got != want {
			t.Errorf("%s: %v, %v", d, got, err)
		}
	}
	for _, d := range []string{`{"onHold":1}`, `{"onHold":"maybe"}`, `[`} {
		if _, err := ParseArtifactsProfile([]byte(d)); err == nil {
			t.Errorf("%s: no error", d)
		}
	}
}

// FuzzParseArtifactsProfile: a profile is read only from valid JSON, and
// onHold as read, written back as JSON, reads the same.
func FuzzParseArtifactsProfile(f *testing.F) {
	f.Add([]byte(`{"onHold":false}`))
	f.Add([]byte(`{"onHold":"True","inVMMetadata":{"subscriptionId":"8f6b2a4e-0d1c-4e2f-9a3b-5c6d7e8f9a0b","resourceGroupName":"rg","vmName":"vm","location":"westeurope","vmId":"0a1b2c3d","vmSize":"Standard_D2s_v3","osType":"Linux"},"certificateThumbprint":"A1B2C3"}`))
	f.Add([]byte(`{"onHold":null,"onHold":1}`))
	f.Fuzz(func(t *testing.T, d []byte) {
		onHold, err := ParseArtifactsProfile(d)
		if err != nil {
			return
		}
		if !json.Valid(d) {
			t.Fatalf("%q is not JSON, read as onHold %v", d, onHold)
		}
		again, err := ParseArtifactsProfile(fmt.Appendf(nil, `{"onHold":%v}`, onHold))
		if err != nil || again != onHold {
			t.Fatalf("onHold %v written and read as %v, %v", onHold, again, err)
		}
	})
}

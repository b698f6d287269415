package extconf

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/agent/internal/fixtures"
)

// summary is one line per plugin: name, version, state, "mc" for
// multi-config, the number of manifest locations, "ERR" for an invalid
// plugin, then each extension as name:seqNo:state:dependsOnLevel.
func summary(p Plugin) string {
	s := fmt.Sprintf("%s %s %s", p.Name, p.Version, p.State)
	if p.IsMultiConfig {
		s += " mc"
	}
	s += fmt.Sprintf(" locs=%d", len(p.Locations))
	if p.Err != nil {
		s += " ERR"
	}
	for _, e := range p.Extensions {
		s += fmt.Sprintf(" | %s:%d:%s:%d", e.Name, e.SeqNo, e.State, e.DependsOnLevel)
	}
	return s
}

// conformance is what each WALinuxAgent ExtensionsConfig fixture holds.
type conformanceCase struct {
	file     string
	blobType string
	invalid  bool // some plugin is invalid (WALinuxAgent fails that handler)
	plugins  []string
}

var conformance = []conformanceCase{
	{"ext_conf-no_encoded_signature.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf-no_gs_metadata.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf-vm_access_with_invalid_signature.xml", "BlockBlob", false, []string{
		"Microsoft.OSTCExtensions.Edp.VMAccessForLinux 1.7.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf-vm_access_with_signature.xml", "BlockBlob", false, []string{
		"Microsoft.OSTCExtensions.Edp.VMAccessForLinux 1.7.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_additional_locations.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=4 | :0::0",
	}},
	{"ext_conf_aks_extension.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
		"Microsoft.AKS.Compute.AKS.Linux.AKSNode 1.0.0 enabled locs=2 | :0::0",
		"Microsoft.AKS.Compute.AKS-Engine.Linux.Billing 1.0.0 enabled locs=2 | :0::0",
		"Microsoft.AKS.Compute.AKS.Linux.Billing 1.0.0 enabled locs=2",
	}},
	{"ext_conf_autoupgrade.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_autoupgrade_internalversion.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.3.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_dependencies_with_empty_settings.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::1",
		"OSTCExtensions.OtherExampleHandlerLinux 1.0.0 enabled locs=2",
	}},
	{"ext_conf_downgrade_rsm_version.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_in_vm_artifacts_profile.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_in_vm_empty_artifacts_profile.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_in_vm_metadata.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_internalversion.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.3.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_invalid_and_valid_handlers.xml", "BlockBlob", true, []string{
		"OSTCExtensions.InvalidExampleHandlerLinux 1.0.0 enabled locs=2 ERR",
		"OSTCExtensions.ValidExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_invalid_vm_metadata.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_missing_family.xml", "BlockBlob", false, []string{}},
	{"ext_conf_multiple_extensions.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
		"Microsoft.Powershell.ExampleExtension 1.0.0 enabled locs=2 | :0::0",
		"Microsoft.EnterpriseCloud.Monitoring.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
		"Microsoft.CPlat.Core.ExampleExtensionLinux 1.0.0 enabled locs=2 | :0::0",
		"Microsoft.OSTCExtensions.Edp.ExampleExtensionLinuxInTest 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_no_extensions-block_blob.xml", "BlockBlob", false, []string{}},
	{"ext_conf_no_extensions-no_status_blob.xml", "BlockBlob", false, []string{}},
	{"ext_conf_no_extensions-page_blob.xml", "PageBlob", false, []string{}},
	{"ext_conf_no_public.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_no_settings.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0 enabled locs=2",
	}},
	{"ext_conf_redact.xml", "PageBlob", false, []string{
		"Microsoft.Azure.Extensions.CustomScript 2.1.10 enabled locs=3 | :1::0",
		"Microsoft.Azure.AzureDefenderForServers.MDE.Linux 1.0.4.7 enabled locs=3 | :12::0",
		"Microsoft.CPlat.Core.RunCommandLinux 1.0.5 enabled locs=3 | :13::0",
	}},
	{"ext_conf_required_features.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinuxWithRequiredFeatures 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_rsm_version.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_sequencing.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::2",
		"OSTCExtensions.OtherExampleHandlerLinux 1.0.0 enabled locs=2 | :0::1",
	}},
	{"ext_conf_settings_case_mismatch.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
		"Microsoft.Powershell.ExampleExtension 1.0.0 enabled locs=2 | :0::0",
		"Microsoft.EnterpriseCloud.Monitoring.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
		"Microsoft.CPlat.Core.ExampleExtensionLinux 1.0.0 enabled locs=2 | :0::0",
		"Microsoft.OSTCExtensions.Edp.ExampleExtensionLinuxInTest 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_upgradeguid.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_version_missing_in_agent_family.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_version_missing_in_manifest.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_version_not_from_rsm.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
	}},
	{"ext_conf_vm_not_enabled_for_rsm_upgrades.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 | :0::0",
	}},
	{"multi-config/ext_conf_mc_disabled_extensions.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled mc locs=2 | firstExtension:1:disabled:0 | secondExtension:2:disabled:0 | thirdExtension:99:enabled:0 | fourthExtension:101:enabled:0",
		"Microsoft.Powershell.ExampleExtension 1.0.0 enabled locs=2 | :10::0",
	}},
	{"multi-config/ext_conf_mc_update_extensions.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.1.0 enabled mc locs=2 | firstExtension:1:disabled:0 | secondExtension:2:disabled:0 | thirdExtension:99:enabled:0",
		"Microsoft.Powershell.ExampleExtension 1.1.0 enabled locs=2 | :10::0",
	}},
	{"multi-config/ext_conf_multi_config_no_dependencies.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled mc locs=2 | firstExtension:1:enabled:0 | secondExtension:2:enabled:0 | thirdExtension:3:enabled:0",
		"Microsoft.Powershell.ExampleExtension 1.0.0 enabled locs=2 | :9::0",
	}},
	{"multi-config/ext_conf_with_disabled_multi_config.xml", "PageBlob", false, []string{
		"Microsoft.CPlat.Core.RunCommandHandlerWindows 2.3.0 enabled mc locs=2 | firstRunCommand:3:enabled:0 | secondRunCommand:3:enabled:1 | thirdRunCommand:1:disabled:4",
		"Microsoft.Azure.Security.AntimalwareSignature.AntimalwareConfiguration 2.0.53.0 enabled locs=2 | :1::0",
		"Microsoft.Azure.Geneva.GenevaMonitoring 2.20.0.1 enabled locs=2 | :2::0",
		"Microsoft.Compute.CustomScriptExtension 1.10.9 enabled locs=2 | :3::1",
		"Microsoft.Compute.VMAccessAgent 2.4.7 enabled locs=2 | :2::2",
	}},
	{"multi-config/ext_conf_with_multi_config.xml", "PageBlob", false, []string{
		"Microsoft.CPlat.Core.RunCommandHandlerWindows 2.3.0 enabled mc locs=2 | firstRunCommand:2:enabled:0 | secondRunCommand:2:enabled:3 | thirdRunCommand:1:enabled:4",
		"Microsoft.Azure.Security.AntimalwareSignature.AntimalwareConfiguration 2.0.53.0 enabled locs=2 | :1::0",
		"Microsoft.Azure.Geneva.GenevaMonitoring 2.20.0.1 enabled locs=2 | :1::0",
		"Microsoft.Compute.CustomScriptExtension 1.10.9 enabled locs=2 | :2::1",
		"Microsoft.Compute.VMAccessAgent 2.4.7 enabled locs=2 | :1::2",
	}},
	{"multi-config/ext_conf_with_multi_config_dependencies.xml", "BlockBlob", false, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled mc locs=2 | firstExtension:2:enabled:0 | secondExtension:2:enabled:2 | thirdExtension:1:enabled:3",
		"Microsoft.Powershell.ExampleExtension 1.0.0 enabled locs=2 | :2::1",
		"Microsoft.Azure.Geneva.GenevaMonitoring 1.1.0 enabled locs=2 | :1::0",
	}},
	{"invalid_config/ext_conf_multiple_depends_on_for_single_handler.xml", "BlockBlob", true, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 ERR",
		"OSTCExtensions.OtherExampleHandlerLinux 1.0.0 enabled locs=2 | :0::1",
	}},
	{"invalid_config/ext_conf_multiple_runtime_settings_same_plugin.xml", "BlockBlob", true, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 ERR",
	}},
	{"invalid_config/ext_conf_multiple_settings_for_same_handler.xml", "BlockBlob", true, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 ERR",
	}},
	{"invalid_config/ext_conf_plugin_settings_version_mismatch.xml", "BlockBlob", true, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 ERR",
	}},
	{"invalid_config/ext_conf_single_and_multi_config_settings_same_plugin.xml", "BlockBlob", true, []string{
		"OSTCExtensions.ExampleHandlerLinux 1.0.0 enabled locs=2 ERR",
	}},
}

func TestConformanceExtensionsConfig(t *testing.T) {
	dir := fixtures.Require(t)
	var all []string
	for _, g := range []string{"ext_conf*.xml", "multi-config/*.xml", "invalid_config/*.xml"} {
		m, _ := filepath.Glob(filepath.Join(dir, "wire", g))
		for _, f := range m {
			all = append(all, strings.TrimPrefix(f, filepath.Join(dir, "wire")+"/"))
		}
	}
	for _, f := range all {
		if !slices.ContainsFunc(conformance, func(c conformanceCase) bool { return c.file == f }) {
			t.Errorf("fixture %s has no row in the conformance table", f)
		}
	}
	for _, tc := range conformance {
		t.Run(tc.file, func(t *testing.T) {
			c, err := Parse(fixtures.Read(t, dir, "wire/"+tc.file))
			if strings.HasPrefix(tc.file, "invalid_config/") && err == nil {
				t.Fatal("an invalid_config fixture parsed without an error")
			}
			if (err != nil) != tc.invalid {
				t.Fatalf("error %v, want one: %v", err, tc.invalid)
			}
			if err != nil && !errors.Is(err, ErrInvalidPlugin) {
				t.Fatalf("error %v is not ErrInvalidPlugin", err)
			}
			if c.StatusBlobType != tc.blobType {
				t.Errorf("status blob type %s, want %s", c.StatusBlobType, tc.blobType)
			}
			var got []string
			for _, p := range c.Plugins {
				got = append(got, summary(p))
			}
			if !slices.Equal(got, tc.plugins) {
				t.Errorf("plugins:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.plugins, "\n"))
			}
		})
	}
}

func TestConformanceSettingsAndBlobs(t *testing.T) {
	dir := fixtures.Require(t)
	parse := func(name string) *Config {
		c, err := Parse(fixtures.Read(t, dir, "wire/"+name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return c
	}
	c := parse("ext_conf.xml")
	e := c.Plugins[0].Extensions[0]
	if string(e.PublicSettings) != `{"foo":"bar"}` || e.ProtectedSettings != "MIICWgYJK" || e.ProtectedSettingsCertThumbprint != "F6ABAA61098A301EBB8A571C3C7CF77F355F7FA9" {
		t.Errorf("ext_conf.xml settings: %s %q %q", e.PublicSettings, e.ProtectedSettings, e.ProtectedSettingsCertThumbprint)
	}
	if !strings.HasPrefix(c.StatusUploadBlob, "https://test.blob.core.windows.net/vhds/test-cs12.test-cs12.test-cs12.status?sr=b&sp=rw") {
		t.Errorf("status blob %q", c.StatusUploadBlob)
	}
	if l := c.Plugins[0].Locations; !strings.Contains(l[0], "rdfepirv2hknprdstr03") || !strings.Contains(l[1], "rdfepirv2hknprdstr04") {
		t.Errorf("locations %q: location then failoverlocation", l)
	}
	if l := parse("ext_conf_additional_locations.xml").Plugins[0].Locations; len(l) != 4 || l[2] != "http://mock-goal-state/additionalLocation/3/manifest.xml" || l[3] != "http://mock-goal-state/additionalLocation/4/manifest.xml" {
		t.Errorf("additional locations %q", l)
	}
	if c := parse("ext_conf_no_extensions-no_status_blob.xml"); c.StatusUploadBlob != "" {
		t.Errorf("status blob %q, want none", c.StatusUploadBlob)
	}
	if c := parse("ext_conf_in_vm_artifacts_profile.xml"); !strings.Contains(c.InVMArtifactsProfileBlob, ".vmSettings?") {
		t.Errorf("artifacts profile %q", c.InVMArtifactsProfileBlob)
	}
	if c := parse("ext_conf_in_vm_empty_artifacts_profile.xml"); c.InVMArtifactsProfileBlob != "" {
		t.Errorf("blank artifacts profile %q", c.InVMArtifactsProfileBlob)
	}
	want := []Feature{{"TestRequiredFeature1", ""}, {"TestRequiredFeature2", ""}, {"TestRequiredFeature3", "3.0"}}
	if got := parse("ext_conf_required_features.xml").RequiredFeatures; !slices.Equal(got, want) {
		t.Errorf("required features %v, want %v", got, want)
	}
}

func TestConformanceManifest(t *testing.T) {
	dir := fixtures.Require(t)
	m, err := ParseManifest(fixtures.Read(t, dir, "wire/manifest.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var public, internal []string
	for _, v := range m.Versions {
		if v.IsInternal {
			internal = append(internal, v.Version)
		} else {
			public = append(public, v.Version)
		}
	}
	wantPublic := []string{"1.0.0", "1.1.0", "1.1.1", "1.2.0", "2.0.0", "2.1.0", "2.1.1", "2.2.0", "3.0", "3.1", "4.0.0.0", "4.0.0.1", "4.1.0.0"}
	if !slices.Equal(public, wantPublic) || !slices.Equal(internal, []string{"1.3.0", "2.3.0", "2.4.0"}) {
		t.Errorf("versions %v internal %v", public, internal)
	}
	if m.Versions[0].URIs[0] != "http://mock-goal-state/foo.bar/zar/OSTCExtensions.ExampleHandlerLinux__1.0.0" {
		t.Errorf("first URI %q", m.Versions[0].URIs[0])
	}
	if !m.Versions[5].DisallowMajorVersionUpgrade || m.Versions[4].DisallowMajorVersionUpgrade {
		t.Error("DisallowMajorVersionUpgrade not read")
	}
	for _, name := range []string{"wire/manifest_deletion.xml", "wire/manifest_vm_access.xml"} {
		if _, err := ParseManifest(fixtures.Read(t, dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestConformanceArtifactsProfile(t *testing.T) {
	dir := fixtures.Require(t)
	onHold, err := ParseArtifactsProfile(fixtures.Read(t, dir, "wire/in_vm_artifacts_profile.json"))
	if err != nil || !onHold {
		t.Errorf("onHold %v, %v; the fixture holds true", onHold, err)
	}
}

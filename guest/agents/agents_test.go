package agents

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vhdprep/vhdprep/rootfs"
)

// tree is a guest root holding files.
func tree(t *testing.T, files map[string]string) rootfs.FS {
	t.Helper()
	d := t.TempDir()
	for name, text := range files {
		p := filepath.Join(d, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return rootfs.Dir(d)
}

// Each agent's configuration read as that agent reads it, and each with
// its own defaults: unset, WALinuxAgent leaves the resource disk alone and
// the vhdprep agent formats it.
func TestDiskIntentsReadAsEachAgent(t *testing.T) {
	for _, c := range []struct {
		name, file, text string
		format, swap     bool
		mount            string
	}{
		{"WALinuxAgent, unset", WAAgentConf, "Provisioning.Agent=auto\n", false, false, ""},
		{"WALinuxAgent, comments and quotes", WAAgentConf, "ResourceDisk.Format=Y # yes\nResourceDisk.EnableSwap=\"y\"\nResourceDisk.MountPoint=/mnt/resource  # there\n", true, true, "/mnt/resource"},
		{"WALinuxAgent, not its word", WAAgentConf, "ResourceDisk.Format=yes\n", false, false, ""},
		{"vhdprep agent, unset", VhdprepConf, "Logs.Level=debug\n", true, false, ""},
		{"vhdprep agent, its words", VhdprepConf, "ResourceDisk.Format=no\nResourceDisk.EnableSwap=TRUE\n", false, true, ""},
	} {
		intents, err := DiskIntents(tree(t, map[string]string{c.file: c.text}))
		if err != nil || len(intents) != 1 {
			t.Fatalf("%s: %v, %+v", c.name, err, intents)
		}
		d := intents[0]
		if d.Format != c.format || d.Swap != c.swap || d.Mount != c.mount {
			t.Errorf("%s: format %v, swap %v, mount %q; want %v, %v, %q", c.name, d.Format, d.Swap, d.Mount, c.format, c.swap, c.mount)
		}
	}
}

// What agent inject carries over from the agents it replaces: the
// resource disk from the first that asks something of it, WALinuxAgent's
// switches from its file alone, and each file named.
func TestReplacedSettings(t *testing.T) {
	cloudInitSwap := map[string]string{
		"etc/cloud/cloud.cfg":               "datasource_list: [ Azure ]\n",
		"etc/cloud/cloud.cfg.d/99-swap.cfg": "mounts:\n  - [\"ephemeral0.1\", \"/mnt/resource\"]\n",
	}
	for _, c := range []struct {
		name   string
		files  map[string]string
		agents []string
		want   map[string]string
		from   []string
	}{
		{"nothing asked", map[string]string{WAAgentConf: "Provisioning.Agent=auto\n"}, []string{WAAgent}, nil, nil},
		{"WALinuxAgent's switches, cloud-init's disk",
			with(cloudInitSwap, WAAgentConf, "Extensions.Enabled=n\nProvisioning.MonitorHostName=Y\nProvisioning.Agent=cloud-init\n"),
			[]string{WAAgent, CloudInit},
			map[string]string{KeyExtensions: "n", KeyMonitorHostName: "y", KeyFormat: "y", KeyMountPoint: "/mnt/resource"},
			[]string{"/" + WAAgentConf, CloudInitConfDir}},
		{"WALinuxAgent's disk first", with(cloudInitSwap, WAAgentConf, "ResourceDisk.Format=n\n"), []string{WAAgent, CloudInit},
			map[string]string{KeyFormat: "n"}, []string{"/" + WAAgentConf}},
		{"an agent not replaced is not read", with(cloudInitSwap, WAAgentConf, "Extensions.Enabled=n\n"), []string{CloudInit},
			map[string]string{KeyFormat: "y", KeyMountPoint: "/mnt/resource"}, []string{CloudInitConfDir}},
	} {
		got, from, err := ReplacedSettings(tree(t, c.files), c.agents)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !maps.Equal(got, c.want) || !slices.Equal(from, c.from) {
			t.Errorf("%s: %v from %q, want %v from %q", c.name, got, from, c.want, c.from)
		}
	}
}

// with is files and one more.
func with(files map[string]string, name, text string) map[string]string {
	out := maps.Clone(files)
	out[name] = text
	return out
}

// cloud-init's swap size, as its cc_mounts module reads it.
func TestCloudInitSwapMB(t *testing.T) {
	for in, want := range map[string]string{"size: 2G": "2048", "size: 2147483648": "2048", "size: 512M": "512", "size: 1.5G": "1536", "size: auto": "", "filename: /swap.img": "", "size: 0": ""} {
		cfg := map[string]any{}
		if err := yaml.Unmarshal([]byte("swap:\n  "+in+"\n"), &cfg); err != nil {
			t.Fatal(err)
		}
		if got := cloudInitSwapMB(cfg); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}

// cloud-init merges its files key by key into nested mappings: a drop-in
// that sets swap's filename keeps cloud.cfg's size.
func TestCloudConfigMergesAsCloudInit(t *testing.T) {
	cfg, err := CloudConfig(tree(t, map[string]string{
		"etc/cloud/cloud.cfg":                   "datasource_list: [ NoCloud, Azure ]\nswap:\n  size: 2G\ndatasource:\n  Azure:\n    apply_network_config: false\n",
		"etc/cloud/cloud.cfg.d/90-azure.cfg":    "datasource_list: [ Azure ]\ndatasource:\n  Azure:\n    data_dir: /var/lib/waagent\n",
		"etc/cloud/cloud.cfg.d/99-swapfile.cfg": "swap:\n  filename: /mnt/swapfile\n",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cloudInitSwapMB(cfg); got != "2048" {
		t.Errorf("swap size %q, want cloud.cfg's 2048 MiB kept", got)
	}
	azure, _ := cfg["datasource"].(map[string]any)["Azure"].(map[string]any)
	if azure["apply_network_config"] != false || azure["data_dir"] != "/var/lib/waagent" {
		t.Errorf("datasource.Azure merged as %v", azure)
	}
	if list, _ := cfg["datasource_list"].([]any); len(list) != 1 {
		t.Errorf("datasource_list %v: a list is replaced whole", list)
	}
}

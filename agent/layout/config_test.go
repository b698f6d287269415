package layout

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// The resource disk keys are WALinuxAgent's, with its shipped waagent.conf's
// defaults: formatted and mounted at /mnt/resource, no swap.
func TestResourceDiskConfig(t *testing.T) {
	c, problems := ParseConfig([]byte(DefaultConfigText))
	want := ResourceDisk{Format: true, Filesystem: "ext4", MountPoint: "/mnt/resource"}
	if len(problems) != 0 || c.ResourceDisk() != want {
		t.Fatalf("defaults: %+v %v", c.ResourceDisk(), problems)
	}
	c, problems = ParseConfig([]byte("ResourceDisk.Format=y\nResourceDisk.Filesystem=xfs\nResourceDisk.MountPoint=/mnt\n" +
		"ResourceDisk.MountOptions=noatime,nodev\nResourceDisk.EnableSwap=y\nResourceDisk.SwapSizeMB=2048\n"))
	want = ResourceDisk{Format: true, Filesystem: "xfs", MountPoint: "/mnt", MountOptions: "noatime,nodev", EnableSwap: true, SwapSizeMB: 2048}
	if len(problems) != 0 || c.ResourceDisk() != want {
		t.Fatalf("set: %+v %v", c.ResourceDisk(), problems)
	}
	if c, _ := ParseConfig([]byte("ResourceDisk.Format=n\n")); c.ResourceDisk().Format {
		t.Error("ResourceDisk.Format=n does not turn formatting off")
	}
	c, problems = ParseConfig([]byte("ResourceDisk.EnableSwap=maybe\nResourceDisk.MountOptions=a b\n"))
	if len(problems) != 2 || c.ResourceDisk().EnableSwap || c.ResourceDisk().MountOptions != "" || !strings.Contains(problems[0].Error(), "ResourceDisk.EnableSwap") {
		t.Fatalf("bad values: %+v %v", c.ResourceDisk(), problems)
	}
}

func TestConfig(t *testing.T) {
	c, problems := ParseConfig([]byte(DefaultConfigText))
	if len(problems) != 0 || c != DefaultConfig() {
		t.Errorf("the documented file does not parse to the defaults: %+v %v", c, problems)
	}
	c, problems = ParseConfig([]byte("Provisioning.Enabled=n\nResourceDisk.Format = y\nResourceDisk.SwapSizeMB=2048\nLogs.Level=debug\n" +
		"ResourceDisk.MountPoint=relative\nResourceDisk.SwapSizeMB=-1\nNoSuch.Key=1\ngarbage\n" +
		"Extensions.EnableTimeout=20\nExtensions.EnableTimeout=0\nFirewall.Enabled=n\nProvisioning.MonitorHostName=n\n"))
	if !DefaultConfig().FirewallEnabled {
		t.Error("Firewall.Enabled is off by default; WALinuxAgent's OS.EnableFirewall is on")
	}
	want := DefaultConfig()
	want.ProvisioningEnabled, want.ResourceDiskFormat, want.ResourceDiskSwapMB, want.LogLevel = false, true, 2048, slog.LevelDebug
	want.ExtensionsEnableTimeout = 20 * time.Second
	want.FirewallEnabled, want.MonitorHostName = false, false
	if c != want {
		t.Errorf("config %+v, want %+v", c, want)
	}
	if len(problems) != 5 {
		t.Errorf("problems %v, want 5 (bad mount point, bad swap, unknown key, not KEY=VALUE, zero timeout)", problems)
	}
	for _, p := range problems {
		if !strings.Contains(p.Error(), ConfigFile+" line ") {
			t.Errorf("problem %q does not say where", p)
		}
	}
}

func TestExtensionsEnabledKey(t *testing.T) {
	if c, p := ParseConfig([]byte(DefaultConfigText)); !c.ExtensionsEnabled || len(p) != 0 {
		t.Errorf("default: enabled %v, problems %v", c.ExtensionsEnabled, p)
	}
	if c, _ := ParseConfig([]byte("Extensions.Enabled=n\n")); c.ExtensionsEnabled {
		t.Error("Extensions.Enabled=n left extensions on")
	}
	if c, p := ParseConfig([]byte("Extensions.Enabled=maybe\n")); !c.ExtensionsEnabled || len(p) != 1 {
		t.Errorf("bad value: enabled %v, problems %v", c.ExtensionsEnabled, p)
	}
}

package layout

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"testing"
)

// ubuntuWaagentConf is Ubuntu's stock /etc/waagent.conf, abridged: the
// same KEY=VALUE form, most of its keys unknown to vhdprep-agent.
const ubuntuWaagentConf = `#
# Microsoft Azure Linux Agent Configuration
#

# Enable extension handling. Do not disable this unless you do not need password reset,
# backup, monitoring, or any extension handling whatsoever.
Extensions.Enabled=y

# Which provisioning agent to use. Supported values are "auto" (default), "waagent",
# "cloud-init", or "disabled".
Provisioning.Agent=auto

# Password authentication for root account will be unavailable.
Provisioning.DeleteRootPassword=y

# Format if unformatted. If 'n', resource disk will not be mounted.
ResourceDisk.Format=n

# File system on the resource disk
# Typically ext3 or ext4. FreeBSD images should use 'ufs2' here.
ResourceDisk.Filesystem=ext4

# Mount point for the resource disk
ResourceDisk.MountPoint=/mnt

# Create and use swapfile on resource disk.
ResourceDisk.EnableSwap=n

# Size of the swapfile.
ResourceDisk.SwapSizeMB=0

# Comma-seperated list of mount options. See mount(8) for valid options.
ResourceDisk.MountOptions=None

# Enable verbose logging (y|n)
Logs.Verbose=n

# Enable Console logging, default is y
# Logs.Console=y

OS.EnableFirewall=y
AutoUpdate.Enabled=n
`

func yn(b bool) string {
	if b {
		return "y"
	}
	return "n"
}

// formatConfig writes c as a configuration file.
func formatConfig(c Config) string {
	level, _ := c.LogLevel.MarshalText()
	return fmt.Sprintf("Provisioning.Enabled=%s\nResourceDisk.Format=%s\nResourceDisk.Filesystem=%s\nResourceDisk.MountPoint=%s\n"+
		"ResourceDisk.MountOptions=%s\nResourceDisk.EnableSwap=%s\nResourceDisk.SwapSizeMB=%d\nExtensions.Enabled=%s\n"+
		"Extensions.EnableTimeout=%d\nFirewall.Enabled=%s\nProvisioning.MonitorHostName=%s\nLogs.Level=%s\n",
		yn(c.ProvisioningEnabled), yn(c.ResourceDiskFormat), c.ResourceDiskFilesystem, c.ResourceDiskMountPoint,
		c.ResourceDiskMountOptions, yn(c.ResourceDiskEnableSwap), c.ResourceDiskSwapMB, yn(c.ExtensionsEnabled),
		int(c.ExtensionsEnableTimeout.Seconds()), yn(c.FirewallEnabled), yn(c.MonitorHostName), level)
}

// FuzzParseConfig: whatever the file holds, every value taken is one the
// agent can use, every problem names its line, and the configuration
// read, written out and read again is the same, without problems.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(DefaultConfigText))
	f.Add([]byte(ubuntuWaagentConf))
	f.Add([]byte("ResourceDisk.MountPoint=/mnt/../x\nResourceDisk.SwapSizeMB=1048577\nLogs.Level=DEBUG-2\n =\n\r\n#x\nExtensions.EnableTimeout=86400"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, problems := ParseConfig(b)
		lines := strings.Count(string(b), "\n") + 1
		for _, p := range problems {
			rest, ok := strings.CutPrefix(p.Error(), ConfigFile+" line ")
			num, _, _ := strings.Cut(rest, ":")
			if n, err := strconv.Atoi(num); !ok || err != nil || n < 1 || n > lines {
				t.Fatalf("problem %q names no line of %d", p, lines)
			}
		}
		switch c.ResourceDiskFilesystem {
		case "ext4", "ext3", "ext2", "xfs":
		default:
			t.Fatalf("filesystem %q", c.ResourceDiskFilesystem)
		}
		if mp := c.ResourceDiskMountPoint; !path.IsAbs(mp) || path.Clean(mp) != mp || mp == "/" {
			t.Fatalf("mount point %q", mp)
		}
		if strings.ContainsAny(c.ResourceDiskMountOptions, " \t") || c.ResourceDiskSwapMB < 0 || c.ResourceDiskSwapMB > maxSwapMB ||
			c.ExtensionsEnableTimeout <= 0 || c.ExtensionsEnableTimeout.Seconds() > maxEnableTimeout {
			t.Fatalf("config %+v", c)
		}
		again, problems := ParseConfig([]byte(formatConfig(c)))
		if again != c || len(problems) != 0 {
			t.Fatalf("read %+v, written and read again %+v %v", c, again, problems)
		}
	})
}

// A line longer than a bufio.Scanner takes (64 KiB) ends nothing: the
// keys after it are read, and a bad one is reported with its number.
func TestParseConfigLongLine(t *testing.T) {
	c, problems := ParseConfig([]byte("#" + strings.Repeat("x", 100<<10) + "\nFirewall.Enabled=n\n" + strings.Repeat("y", 100<<10) + "\n"))
	if c.FirewallEnabled || len(problems) != 1 || !strings.Contains(problems[0].Error(), "line 3: not KEY=VALUE") {
		t.Fatalf("firewall %v, problems %v", c.FirewallEnabled, problems)
	}
}

package layout

import (
	"fmt"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"time"
)

// DefaultConfigText is the documented configuration file `agent inject`
// writes: every key with its default.
const DefaultConfigText = `# vhdprep-agent configuration. One KEY=VALUE per line; '#' starts a comment.
# A missing key takes the default shown; an unknown key or a bad value is
# logged and ignored, so a typo never keeps the VM from reporting Ready.
#
# Provision the VM on its first boot in each new VM (host name, admin user,
# SSH keys, password, custom data) from the provisioning media or IMDS.
# With n the agent only reports Ready.
Provisioning.Enabled=y
# Publish the host name again whenever it changes (hostnamectl), as
# WALinuxAgent's Provisioning.MonitorHostName: the DHCP client sends it and
# renews its lease, so Azure's DNS resolves the VM by its new name.
Provisioning.MonitorHostName=y
#
# The resource (temporary) disk, as WALinuxAgent's keys of the same names and
# its shipped defaults: with Format=y the agent gives it a filesystem if it
# has none (Azure hands it out NTFS-formatted), mounts it at MountPoint
# (mount -o MountOptions) and, with EnableSwap=y, puts a swap file of
# SwapSizeMB MiB on it. With n it leaves the disk alone. Its data can be
# lost whenever the VM moves.
ResourceDisk.Format=y
ResourceDisk.Filesystem=ext4
ResourceDisk.MountPoint=/mnt/resource
ResourceDisk.MountOptions=
ResourceDisk.EnableSwap=n
ResourceDisk.SwapSizeMB=0
#
# Run VM extensions (az vm extension set) as WALinuxAgent does: handlers in
# /var/lib/waagent/<Name>-<Version>/, their logs in /var/log/azure/<Name>/.
# With n the agent runs no handler and reports each failed, naming this key.
Extensions.Enabled=y
# Seconds a handler's enable command may run before it is killed (install,
# update, disable and uninstall get 900), as WALinuxAgent's limits. A worker
# the command leaves running in the background is not bound by it.
Extensions.EnableTimeout=300
#
# Guard the wire server (168.63.129.16) as WALinuxAgent's OS.EnableFirewall:
# at every start the agent installs rules (nftables, else iptables) that
# drop TCP to it except DNS and root's, so no other local user can fetch the
# certificates that decrypt extensions' protected settings. With n the
# agent removes its rules.
Firewall.Enabled=y
#
# Log level: debug, info, warn or error.
Logs.Level=info
`

// Config is the agent's configuration. The wire server and IMDS addresses
// are not configurable: the agent always finds them as Azure defines them.
type Config struct {
	ProvisioningEnabled      bool
	MonitorHostName          bool
	ResourceDiskFormat       bool
	ResourceDiskFilesystem   string
	ResourceDiskMountPoint   string
	ResourceDiskMountOptions string
	ResourceDiskEnableSwap   bool
	ResourceDiskSwapMB       int
	ExtensionsEnabled        bool
	ExtensionsEnableTimeout  time.Duration
	FirewallEnabled          bool
	LogLevel                 slog.Level
}

// ResourceDisk is what the configuration asks of the resource disk.
type ResourceDisk struct {
	Format       bool   // ResourceDisk.Format: nothing happens without it
	Filesystem   string // ResourceDisk.Filesystem: ext4, ext3, ext2 or xfs
	MountPoint   string // ResourceDisk.MountPoint
	MountOptions string // ResourceDisk.MountOptions, passed to mount -o
	EnableSwap   bool   // ResourceDisk.EnableSwap
	SwapSizeMB   int    // ResourceDisk.SwapSizeMB
}

// ResourceDisk is the resource disk's part of the configuration.
func (c Config) ResourceDisk() ResourceDisk {
	return ResourceDisk{
		Format:       c.ResourceDiskFormat,
		Filesystem:   c.ResourceDiskFilesystem,
		MountPoint:   c.ResourceDiskMountPoint,
		MountOptions: c.ResourceDiskMountOptions,
		EnableSwap:   c.ResourceDiskEnableSwap,
		SwapSizeMB:   c.ResourceDiskSwapMB,
	}
}

// DefaultConfig is the configuration DefaultConfigText spells out.
func DefaultConfig() Config {
	return Config{
		ProvisioningEnabled:     true,
		MonitorHostName:         true,
		ExtensionsEnabled:       true,
		ExtensionsEnableTimeout: DefaultEnableTimeout,
		FirewallEnabled:         true,
		ResourceDiskFormat:      true,
		ResourceDiskFilesystem:  "ext4",
		ResourceDiskMountPoint:  "/mnt/resource",
		LogLevel:                slog.LevelInfo,
	}
}

// DefaultEnableTimeout is how long a handler's enable command may run
// unless Extensions.EnableTimeout says otherwise: WALinuxAgent's limit.
const DefaultEnableTimeout = 5 * time.Minute

// maxSwapMB bounds the swap file (1 TiB); a larger value is a typo.
const maxSwapMB = 1 << 20

// maxEnableTimeout bounds Extensions.EnableTimeout (a day), past which a
// hung enable would hold the extensions after it for good.
const maxEnableTimeout = 24 * 60 * 60

// ParseConfig reads a configuration file over the defaults. It never fails:
// each line it cannot use is returned as a problem, to be logged, and the
// key keeps its default.
func ParseConfig(data []byte) (Config, []error) {
	c := DefaultConfig()
	var problems []error
	// Split, not a bufio.Scanner: a line over the scanner's limit would end
	// the reading there, and every key after it keep its default unsaid.
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		bad := func(why string) {
			problems = append(problems, fmt.Errorf("%s line %d: %s=%q: %s", ConfigFile, n, k, v, why))
		}
		if !ok {
			problems = append(problems, fmt.Errorf("%s line %d: not KEY=VALUE", ConfigFile, n))
			continue
		}
		switch k {
		case "Provisioning.Enabled":
			if b, ok := ParseSwitch(v); ok {
				c.ProvisioningEnabled = b
			} else {
				bad("want y or n")
			}
		case "Provisioning.MonitorHostName":
			if b, ok := ParseSwitch(v); ok {
				c.MonitorHostName = b
			} else {
				bad("want y or n")
			}
		case "ResourceDisk.Format":
			if b, ok := ParseSwitch(v); ok {
				c.ResourceDiskFormat = b
			} else {
				bad("want y or n")
			}
		case "ResourceDisk.Filesystem":
			switch v {
			case "ext4", "ext3", "ext2", "xfs":
				c.ResourceDiskFilesystem = v
			default:
				bad("want ext4, ext3, ext2 or xfs")
			}
		case "ResourceDisk.MountPoint":
			if path.IsAbs(v) && path.Clean(v) == v && v != "/" {
				c.ResourceDiskMountPoint = v
			} else {
				bad("want a clean absolute path other than /")
			}
		case "ResourceDisk.MountOptions":
			if strings.ContainsAny(v, " \t") {
				bad("want mount options without spaces, such as noatime,nodev")
			} else {
				c.ResourceDiskMountOptions = v
			}
		case "ResourceDisk.EnableSwap":
			if b, ok := ParseSwitch(v); ok {
				c.ResourceDiskEnableSwap = b
			} else {
				bad("want y or n")
			}
		case "ResourceDisk.SwapSizeMB":
			if i, err := strconv.Atoi(v); err == nil && i >= 0 && i <= maxSwapMB {
				c.ResourceDiskSwapMB = i
			} else {
				bad(fmt.Sprintf("want a whole number of MiB from 0 to %d", maxSwapMB))
			}
		case "Extensions.Enabled":
			if b, ok := ParseSwitch(v); ok {
				c.ExtensionsEnabled = b
			} else {
				bad("want y or n")
			}
		case "Extensions.EnableTimeout":
			if i, err := strconv.Atoi(v); err == nil && i > 0 && i <= maxEnableTimeout {
				c.ExtensionsEnableTimeout = time.Duration(i) * time.Second
			} else {
				bad(fmt.Sprintf("want a whole number of seconds from 1 to %d", maxEnableTimeout))
			}
		case "Firewall.Enabled":
			if b, ok := ParseSwitch(v); ok {
				c.FirewallEnabled = b
			} else {
				bad("want y or n")
			}
		case "Logs.Level":
			var l slog.Level
			if err := l.UnmarshalText([]byte(v)); err == nil {
				c.LogLevel = l
			} else {
				bad("want debug, info, warn or error")
			}
		default:
			problems = append(problems, fmt.Errorf("%s line %d: unknown key %q", ConfigFile, n, k))
		}
	}
	return c, problems
}

// ParseSwitch reads a switch's value as the agent does: y, yes, true or 1
// and their opposites, in any case; ok is false for anything else.
func ParseSwitch(v string) (on, ok bool) {
	switch strings.ToLower(v) {
	case "y", "yes", "true", "1":
		return true, true
	case "n", "no", "false", "0":
		return false, true
	}
	return false, false
}

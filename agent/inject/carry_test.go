package inject

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/agent/layout"
	"github.com/vhdprep/vhdprep/internal/testagent"
	"github.com/vhdprep/vhdprep/lint"
)

// inject --replace-waagent carries the replaced agent's resource-disk
// settings over to the configuration it writes, so check's SWP002 passes
// on the agent that now runs, not on a file nothing reads.
func TestInjectCarriesTheResourceDiskOver(t *testing.T) {
	// waagent.conf as Debian's waagent package (2.12.0.2) ships it.
	debian, err := os.ReadFile("testdata/waagent.conf")
	if err != nil {
		t.Fatal(err)
	}
	waagent := func(conf string) func(t *testing.T, d string) {
		return func(t *testing.T, d string) {
			writeFile(t, d, "usr/sbin/waagent", "", 0o755)
			writeFile(t, d, "etc/waagent.conf", conf, 0o644)
			writeFile(t, d, "usr/lib/systemd/system/walinuxagent.service", "[Service]\n", 0o644)
			symlink(t, d, "/usr/lib/systemd/system/walinuxagent.service", "etc/systemd/system/multi-user.target.wants/walinuxagent.service")
		}
	}
	formatN := strings.Replace(string(debian), "\nResourceDisk.Format=y\n", "\nResourceDisk.Format=n\n", 1)
	if formatN == string(debian) {
		t.Fatal("Debian's waagent.conf has no ResourceDisk.Format=y line")
	}
	for _, c := range []struct {
		name    string
		setup   func(t *testing.T, d string)
		want    map[string]string
		from    string
		summary string // what inject says of the resource disk
	}{
		{"WALinuxAgent as Debian ships it", waagent(string(debian)),
			map[string]string{"ResourceDisk.Format": "y", "ResourceDisk.Filesystem": "ext4", "ResourceDisk.MountPoint": "/mnt/resource", "ResourceDisk.MountOptions": "", "ResourceDisk.EnableSwap": "n", "ResourceDisk.SwapSizeMB": "0"},
			"/etc/waagent.conf", "formatted ext4 when blank or NTFS, and mounted at /mnt/resource"},
		{"WALinuxAgent told to leave the disk alone", waagent(formatN),
			map[string]string{"ResourceDisk.Format": "n", "ResourceDisk.EnableSwap": "n"},
			"/etc/waagent.conf", "left alone (ResourceDisk.Format=n in /etc/vhdprep-agent.conf)"},
		{"WALinuxAgent with other settings", waagent("ResourceDisk.Format=Y\nResourceDisk.Filesystem=xfs\nResourceDisk.MountPoint=/mnt\nResourceDisk.MountOptions=noatime,nodev\n"),
			map[string]string{"ResourceDisk.Format": "y", "ResourceDisk.Filesystem": "xfs", "ResourceDisk.MountPoint": "/mnt", "ResourceDisk.MountOptions": "noatime,nodev"},
			"/etc/waagent.conf", "formatted xfs when blank or NTFS, and mounted at /mnt"},
		{"WALinuxAgent", func(t *testing.T, d string) {
			writeFile(t, d, "usr/sbin/waagent", "", 0o755)
			writeFile(t, d, "etc/waagent.conf", "Provisioning.Agent=auto\nResourceDisk.Format=y\nResourceDisk.MountPoint=/mnt\nResourceDisk.EnableSwap=y\nResourceDisk.SwapSizeMB=4096\n", 0o644)
			writeFile(t, d, "usr/lib/systemd/system/walinuxagent.service", "[Service]\n", 0o644)
			symlink(t, d, "/usr/lib/systemd/system/walinuxagent.service", "etc/systemd/system/multi-user.target.wants/walinuxagent.service")
		}, map[string]string{"ResourceDisk.Format": "y", "ResourceDisk.MountPoint": "/mnt", "ResourceDisk.EnableSwap": "y", "ResourceDisk.SwapSizeMB": "4096"}, "/etc/waagent.conf",
			"formatted ext4 when blank or NTFS, and mounted at /mnt, with a 4096 MiB swap file"},
		{"cloud-init", func(t *testing.T, d string) {
			writeFile(t, d, "usr/bin/cloud-init", "", 0o755)
			writeFile(t, d, "etc/cloud/cloud.cfg", "datasource_list: [ Azure ]\n", 0o644)
			writeFile(t, d, "etc/cloud/cloud.cfg.d/99-swap.cfg", "mounts:\n  - [\"ephemeral0.1\", \"/mnt/resource\"]\n  - [\"ephemeral0.2\", \"none\", \"swap\", \"sw,nofail\", \"0\", \"0\"]\n", 0o644)
			writeFile(t, d, "usr/lib/systemd/system/cloud-init.service", "[Service]\n", 0o644)
			symlink(t, d, "/usr/lib/systemd/system/cloud-init.service", "etc/systemd/system/cloud-init.target.wants/cloud-init.service")
		}, map[string]string{"ResourceDisk.Format": "y", "ResourceDisk.MountPoint": "/mnt/resource", "ResourceDisk.EnableSwap": "y", "ResourceDisk.SwapSizeMB": "2048"}, "/etc/cloud/cloud.cfg.d",
			"formatted ext4 when blank or NTFS, and mounted at /mnt/resource, with a 2048 MiB swap file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := systemdTree(t)
			c.setup(t, d)
			before := listing(t, d)
			p := apply(t, d, injectWith(Options{Binary: testagent.Binary(t), ReplaceAgents: true}))
			if p.ResourceDisk != c.summary {
				t.Errorf("inject says the resource disk is %q, want %q", p.ResourceDisk, c.summary)
			}
			b, _ := os.ReadFile(filepath.Join(d, "etc/vhdprep-agent.conf"))
			conf, errs := layout.ParseConfig(b)
			if len(errs) > 0 {
				t.Fatalf("the written config does not parse: %v\n%s", errs, b)
			}
			rd := conf.ResourceDisk()
			got := map[string]string{"ResourceDisk.Format": yn(rd.Format), "ResourceDisk.Filesystem": rd.Filesystem, "ResourceDisk.MountPoint": rd.MountPoint,
				"ResourceDisk.MountOptions": rd.MountOptions, "ResourceDisk.EnableSwap": yn(rd.EnableSwap), "ResourceDisk.SwapSizeMB": itoa(rd.SwapSizeMB)}
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q\n%s", k, got[k], v, b)
				}
			}
			if !strings.Contains(string(b), "over from "+c.from) {
				t.Errorf("the config does not say where the settings come from:\n%s", b)
			}
			if s := status(t, d, "SWP002"); s != lint.Passed {
				t.Errorf("SWP002 after inject: %s", s)
			}
			apply(t, d, PlanRemove)
			sameListing(t, before, listing(t, d))
		})
	}
}

// WALinuxAgent's switches for extensions and the host name come over too,
// read as WALinuxAgent reads them: an image built with extensions off
// keeps them off under the agent that replaces WALinuxAgent.
func TestInjectCarriesWAAgentSwitchesOver(t *testing.T) {
	debian, err := os.ReadFile("testdata/waagent.conf")
	if err != nil {
		t.Fatal(err)
	}
	off := strings.NewReplacer("\nExtensions.Enabled=y\n", "\nExtensions.Enabled=N # no extensions here\n",
		"\nProvisioning.MonitorHostName=y\n", "\nProvisioning.MonitorHostName=\"n\"\n").Replace(string(debian))
	if strings.Count(off, "=y\n") == strings.Count(string(debian), "=y\n") {
		t.Fatal("Debian's waagent.conf no longer sets Extensions.Enabled=y and Provisioning.MonitorHostName=y")
	}
	for _, c := range []struct {
		name                string
		conf                string
		extensions, monitor bool
	}{
		{"as Debian ships it", string(debian), true, true},
		{"both off", off, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := systemdTree(t)
			writeFile(t, d, "usr/sbin/waagent", "", 0o755)
			writeFile(t, d, "etc/waagent.conf", c.conf, 0o644)
			writeFile(t, d, "usr/lib/systemd/system/walinuxagent.service", "[Service]\n", 0o644)
			symlink(t, d, "/usr/lib/systemd/system/walinuxagent.service", "etc/systemd/system/multi-user.target.wants/walinuxagent.service")
			apply(t, d, injectWith(Options{Binary: testagent.Binary(t), ReplaceAgents: true}))
			b, _ := os.ReadFile(filepath.Join(d, "etc/vhdprep-agent.conf"))
			conf, errs := layout.ParseConfig(b)
			if len(errs) > 0 {
				t.Fatalf("the written config does not parse: %v\n%s", errs, b)
			}
			if conf.ExtensionsEnabled != c.extensions || conf.MonitorHostName != c.monitor {
				t.Errorf("the agent reads Extensions.Enabled=%s, Provisioning.MonitorHostName=%s; waagent.conf said %s, %s\n%s",
					yn(conf.ExtensionsEnabled), yn(conf.MonitorHostName), yn(c.extensions), yn(c.monitor), b)
			}
			if !strings.Contains(string(b), "Extensions.Enabled, Provisioning.MonitorHostName, ResourceDisk.") {
				t.Errorf("the config does not say the switches were carried over:\n%s", b)
			}
		})
	}
}

func yn(b bool) string {
	if b {
		return "y"
	}
	return "n"
}

func itoa(n int) string { return strconv.Itoa(n) }

package inject

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/agent/layout"
	"github.com/vhdprep/vhdprep/lint"
)

// inject --replace-waagent carries the replaced agent's resource-disk
// settings over to the configuration it writes, so check's SWP002 passes
// on the agent that now runs, not on a file nothing reads.
func TestInjectCarriesTheResourceDiskOver(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, d string)
		want  map[string]string
		from  string
	}{
		{"WALinuxAgent", func(t *testing.T, d string) {
			writeFile(t, d, "usr/sbin/waagent", "", 0o755)
			writeFile(t, d, "etc/waagent.conf", "Provisioning.Agent=auto\nResourceDisk.Format=y\nResourceDisk.MountPoint=/mnt\nResourceDisk.EnableSwap=y\nResourceDisk.SwapSizeMB=4096\n", 0o644)
			writeFile(t, d, "usr/lib/systemd/system/walinuxagent.service", "[Service]\n", 0o644)
			symlink(t, d, "/usr/lib/systemd/system/walinuxagent.service", "etc/systemd/system/multi-user.target.wants/walinuxagent.service")
		}, map[string]string{"ResourceDisk.Format": "y", "ResourceDisk.MountPoint": "/mnt", "ResourceDisk.EnableSwap": "y", "ResourceDisk.SwapSizeMB": "4096"}, "/etc/waagent.conf"},
		{"cloud-init", func(t *testing.T, d string) {
			writeFile(t, d, "usr/bin/cloud-init", "", 0o755)
			writeFile(t, d, "etc/cloud/cloud.cfg", "datasource_list: [ Azure ]\n", 0o644)
			writeFile(t, d, "etc/cloud/cloud.cfg.d/99-swap.cfg", "mounts:\n  - [\"ephemeral0.1\", \"/mnt/resource\"]\n  - [\"ephemeral0.2\", \"none\", \"swap\", \"sw,nofail\", \"0\", \"0\"]\n", 0o644)
			writeFile(t, d, "usr/lib/systemd/system/cloud-init.service", "[Service]\n", 0o644)
			symlink(t, d, "/usr/lib/systemd/system/cloud-init.service", "etc/systemd/system/cloud-init.target.wants/cloud-init.service")
		}, map[string]string{"ResourceDisk.Format": "y", "ResourceDisk.MountPoint": "/mnt/resource", "ResourceDisk.EnableSwap": "y", "ResourceDisk.SwapSizeMB": "2048"}, "/etc/cloud/cloud.cfg.d"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := systemdTree(t)
			c.setup(t, d)
			before := listing(t, d)
			apply(t, d, injectWith(Options{Binary: agentBinary(t), ReplaceAgents: true}))
			b, _ := os.ReadFile(filepath.Join(d, "etc/vhdprep-agent.conf"))
			conf, errs := layout.ParseConfig(b)
			if len(errs) > 0 {
				t.Fatalf("the written config does not parse: %v\n%s", errs, b)
			}
			rd := conf.ResourceDisk()
			got := map[string]string{"ResourceDisk.Format": yn(rd.Format), "ResourceDisk.MountPoint": rd.MountPoint, "ResourceDisk.EnableSwap": yn(rd.EnableSwap), "ResourceDisk.SwapSizeMB": itoa(rd.SwapSizeMB)}
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

func yn(b bool) string {
	if b {
		return "y"
	}
	return "n"
}

func itoa(n int) string { return strconv.Itoa(n) }

package lint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/guest/agents"
)

// vhdprepAgentDefaults is the configuration agent inject writes, in the
// keys that matter here.
const vhdprepAgentDefaults = "Provisioning.Enabled=y\nResourceDisk.Format=n\nResourceDisk.Filesystem=ext4\nResourceDisk.MountPoint=/mnt/resource\nResourceDisk.EnableSwap=n\nResourceDisk.SwapSizeMB=0\nExtensions.Enabled=y\n"

// SWP002 warns only where swap is wanted, fix only carries a setting
// over, and the files of agents that do not run at boot (the ones agent
// inject --replace-waagent turned off) decide nothing.
func TestResourceDiskSwap(t *testing.T) {
	injected := with(systemd, map[string]string{
		"usr/sbin/vhdprep-agent": "", "etc/vhdprep-agent.conf": vhdprepAgentDefaults,
		"etc/systemd/system/multi-user.target.wants/vhdprep-agent.service": "->/usr/lib/systemd/system/vhdprep-agent.service",
		"etc/fstab": "UUID=1 / ext4 defaults 0 1\n",
	})
	// WALinuxAgent installed and configured for swap, its unit masked as
	// inject --replace-waagent leaves it.
	replacedWAAgent := with(injected, map[string]string{
		"usr/sbin/waagent": "", "etc/waagent.conf": "# keep\nResourceDisk.Format=y\nResourceDisk.EnableSwap=y\nResourceDisk.SwapSizeMB=4096\n",
		"etc/systemd/system/walinuxagent.service": "->/dev/null",
	})
	replacedCloudInit := with(injected, map[string]string{
		"usr/bin/cloud-init": "", "etc/cloud/cloud.cfg": "datasource_list: [Azure]\n", "etc/cloud/cloud-init.disabled": "",
		"etc/systemd/system/cloud-init.target.wants/cloud-init.service": "->/usr/lib/systemd/system/cloud-init.service",
		cloudInitSwapFile: cloudInitSwapSetup,
	})
	for _, c := range []struct {
		name   string
		files  map[string]string
		want   string // the finding; "" for a pass
		fixed  string // vhdprep-agent.conf after fix; "" when fix must refuse
		refuse string
	}{
		{"never had swap", injected, "", "", ""},
		{"never had swap, no agent", map[string]string{"etc/fstab": "UUID=1 / ext4 defaults 0 1\n"}, "", "", ""},
		{"swap on the OS disk, disabled by fix", with(injected, map[string]string{"etc/fstab": "UUID=1 / ext4 defaults 0 1\n" + swapDisabledMark + "/swap.img none swap sw 0 0\n"}),
			"the image had swap on the OS disk (/etc/fstab:2, disabled by vhdprep), and no agent puts swap on the resource disk; swap there is opt-in: if VMs need it, set ResourceDisk.Format=y, ResourceDisk.EnableSwap=y and ResourceDisk.SwapSizeMB in /etc/vhdprep-agent.conf",
			"", "opt-in"},
		{"waagent.conf's swap after inject --replace-waagent", replacedWAAgent,
			"swap on the resource disk is asked of WALinuxAgent in /etc/waagent.conf, which does not run at boot; vhdprep agent, which does, is not told to make it",
			strings.NewReplacer("Format=n", "Format=y", "EnableSwap=n", "EnableSwap=y", "SwapSizeMB=0", "SwapSizeMB=4096").Replace(vhdprepAgentDefaults), ""},
		{"cloud-init's swap after inject --replace-waagent", replacedCloudInit,
			"swap on the resource disk is asked of cloud-init in /etc/cloud/cloud.cfg.d, which does not run at boot; vhdprep agent, which does, is not told to make it",
			strings.NewReplacer("Format=n", "Format=y", "EnableSwap=n", "EnableSwap=y", "SwapSizeMB=0", "SwapSizeMB="+agents.DefaultSwapMB).Replace(vhdprepAgentDefaults), ""},
		{"the running agent's own swap", with(injected, map[string]string{"etc/vhdprep-agent.conf": "ResourceDisk.Format=y\nResourceDisk.EnableSwap=y\nResourceDisk.SwapSizeMB=2048\n"}), "", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := tree(t, c.files)
			o := outcome(t, target, "SWP002")
			if c.want == "" {
				if o.Status != Passed {
					t.Fatalf("%s %+v %s, want pass", o.Status, o.Findings, o.Reason)
				}
				return
			}
			if o.Status != Failed || len(o.Findings) != 1 || o.Findings[0].Message != c.want {
				t.Fatalf("%s %+v, want the finding %q", o.Status, o.Findings, c.want)
			}
			plan, err := PlanFix(target, Catalog(), nil, []string{"SWP002"})
			if err != nil {
				t.Fatal(err)
			}
			if c.refuse != "" {
				if plan.Rules[0].Error == "" || !strings.Contains(plan.Rules[0].Error, c.refuse) || len(plan.Changes) != 0 {
					t.Fatalf("fix turned swap on unasked: %+v %+v", plan.Rules, plan.Changes)
				}
				return
			}
			if err := plan.Apply(target); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(filepath.Join(target.Name, "etc/vhdprep-agent.conf")); string(got) != c.fixed {
				t.Errorf("vhdprep-agent.conf:\n%s\nwant:\n%s", got, c.fixed)
			}
			fresh, _ := OpenDir(target.Name)
			if o := outcome(t, fresh, "SWP002"); o.Status != Passed {
				t.Errorf("after fix: %s %+v", o.Status, o.Findings)
			}
		})
	}
}

// SWP003: a waagent.conf that formats the resource disk for a cloud-init
// that provisions is a race only while WALinuxAgent runs.
func TestResourceDiskOwnerCountsRunningAgents(t *testing.T) {
	conf := map[string]string{"usr/sbin/waagent": "", "etc/waagent.conf": "Provisioning.Agent=cloud-init\nResourceDisk.Format=y\n", "etc/cloud/cloud.cfg": "datasource_list: [Azure]\n"}
	running := with(with(systemd, conf), map[string]string{"etc/systemd/system/multi-user.target.wants/walinuxagent.service": "->/lib/systemd/system/walinuxagent.service"})
	if o := outcome(t, tree(t, running), "SWP003"); o.Status != Failed {
		t.Errorf("WALinuxAgent running: %s, want fail", o.Status)
	}
	replaced := with(with(systemd, conf), map[string]string{"etc/systemd/system/walinuxagent.service": "->/dev/null"})
	if o := outcome(t, tree(t, replaced), "SWP003"); o.Status != Passed {
		t.Errorf("WALinuxAgent masked: %s %+v, want pass", o.Status, o.Findings)
	}
}

// SWP003: where inject found a config of its own and kept it, the resource
// disk a replaced agent was told to format and mount is reported, and fix
// carries the setting over (its swap is SWP002's).
func TestLostResourceDiskSetup(t *testing.T) {
	files := with(systemd, map[string]string{
		"usr/sbin/vhdprep-agent": "", "etc/vhdprep-agent.conf": vhdprepAgentDefaults,
		"etc/systemd/system/multi-user.target.wants/vhdprep-agent.service": "->/usr/lib/systemd/system/vhdprep-agent.service",
		"usr/sbin/waagent": "", "etc/waagent.conf": "ResourceDisk.Format=y\nResourceDisk.MountPoint=/mnt\n",
		"etc/systemd/system/walinuxagent.service": "->/dev/null",
	})
	target := tree(t, files)
	o := outcome(t, target, "SWP003")
	if want := "the resource disk is to be formatted and mounted by WALinuxAgent (/etc/waagent.conf), which does not run at boot, and vhdprep agent, which does, does not format it"; o.Status != Failed || len(o.Findings) != 1 || o.Findings[0].Message != want {
		t.Fatalf("%s %+v, want %q", o.Status, o.Findings, want)
	}
	plan, err := PlanFix(target, Catalog(), nil, []string{"SWP003"})
	if err != nil || plan.Rules[0].Error != "" {
		t.Fatalf("plan: %v %+v", err, plan.Rules)
	}
	if err := plan.Apply(target); err != nil {
		t.Fatal(err)
	}
	if got, want := mustRead(t, target, "etc/vhdprep-agent.conf"), strings.NewReplacer("Format=n", "Format=y", "MountPoint=/mnt/resource", "MountPoint=/mnt").Replace(vhdprepAgentDefaults); got != want {
		t.Errorf("vhdprep-agent.conf:\n%s\nwant:\n%s", got, want)
	}
	if got := mustRead(t, target, "etc/waagent.conf"); got != files["etc/waagent.conf"] {
		t.Errorf("the replaced agent's file changed: %q", got)
	}
	fresh, _ := OpenDir(target.Name)
	if o := outcome(t, fresh, "SWP003"); o.Status != Passed {
		t.Errorf("after fix: %s %+v", o.Status, o.Findings)
	}
	// cloud-init running formats the disk itself: nothing is lost.
	withCloudInit := tree(t, with(files, map[string]string{"etc/cloud/cloud.cfg": "datasource_list: [Azure]\n",
		"etc/systemd/system/cloud-init.target.wants/cloud-init.service": "->/usr/lib/systemd/system/cloud-init.service"}))
	if o := outcome(t, withCloudInit, "SWP003"); o.Status != Passed {
		t.Errorf("with cloud-init running: %s %+v", o.Status, o.Findings)
	}
}

func mustRead(t *testing.T, target *Target, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(target.Name, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// SWP003 leaves the resource disk to cloud-init: Debian's waagent.conf
// (ResourceDisk.Format=y, EnableSwap=n, cloud-init provisioning) gets no
// swap, which nothing asked for; a waagent.conf that asked for swap has
// it carried over to cloud-init.
func TestOneResourceDiskOwnerAddsNoSwapUnasked(t *testing.T) {
	for _, c := range []struct {
		swap string
		want bool
	}{{"n", false}, {"y", true}} {
		target := tree(t, map[string]string{
			"etc/waagent.conf":    "Provisioning.Agent=cloud-init\nResourceDisk.Format=y\nResourceDisk.EnableSwap=" + c.swap + "\n",
			"etc/cloud/cloud.cfg": "datasource_list: [Azure]\n",
		})
		plan, err := PlanFix(target, Catalog(), nil, []string{"SWP003"})
		if err != nil {
			t.Fatal(err)
		}
		wrote := false
		for _, ch := range plan.Changes {
			wrote = wrote || ch.Path == "/"+cloudInitSwapFile
		}
		if wrote != c.want {
			t.Errorf("EnableSwap=%s: cloud-init swap drop-in written %v, want %v", c.swap, wrote, c.want)
		}
	}
}

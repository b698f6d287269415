package lint

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vhdprep/vhdprep/guest/agents"
	"github.com/vhdprep/vhdprep/rootfs"
)

// diskIntents reads what every agent's configuration in the guest asks
// of the resource disk (see agents.DiskIntents); a cloud-init
// configuration that does not parse is a skip.
func diskIntents(root rootfs.FS) ([]agents.DiskIntent, error) {
	intents, err := agents.DiskIntents(root)
	return intents, skipConfigError(err)
}

// skipConfigError makes an agent's configuration that does not parse a
// skip: the rule cannot decide.
func skipConfigError(err error) error {
	var bad *agents.ConfigError
	if errors.As(err, &bad) {
		return Skip("%v", bad)
	}
	return err
}

// runningAgents lists the provisioning agents that start at boot; where
// the init system is not known, those whose configuration is there.
func runningAgents(root rootfs.FS, intents []agents.DiskIntent) ([]string, error) {
	agents, err := enabledAgents(root)
	if _, unknown := skipReason(err); unknown {
		agents = nil
		for _, d := range intents {
			agents = append(agents, d.Agent)
		}
		if exists(root, "etc/cloud") && !contains(agents, agentCloudInit) {
			agents = append(agents, agentCloudInit)
		}
		return agents, nil
	}
	return agents, err
}

// diskOwner is the running agent that handles the resource disk, and its
// configuration file: cloud-init where it provisions, else WALinuxAgent,
// else the vhdprep agent; "" when none runs.
func diskOwner(root rootfs.FS, running []string) (agent, file string) {
	conf, _, _ := waagentConf(root)
	switch {
	case contains(running, agentCloudInit) && (!contains(running, agentWAAgent) || conf["Provisioning.Agent"] == "cloud-init"):
		return agentCloudInit, cloudInitConfDir
	case contains(running, agentWAAgent):
		return agentWAAgent, "/" + waagentConfPath
	case contains(running, agentVhdprep):
		return agentVhdprep, "/" + vhdprepAgentConf
	}
	return "", ""
}

// swapState is SWP002's reading of a guest.
type swapState struct {
	done             bool               // a running agent makes swap on the resource disk
	wanted           *agents.DiskIntent // else, configuration that asks for it
	owner, ownerFile string             // the running agent that would have to make it
	osDisk           string             // else, where the OS disk had swap; "" for none
}

func resourceDiskSwapState(t *Target) (swapState, error) {
	var st swapState
	root, err := t.root()
	if err != nil {
		return st, err
	}
	intents, err := diskIntents(root)
	if err != nil {
		return st, err
	}
	running, err := runningAgents(root, intents)
	if err != nil {
		return st, err
	}
	st.owner, st.ownerFile = diskOwner(root, running)
	for i, d := range intents {
		if contains(running, d.Agent) && d.MakesSwap() {
			st.done = true
			return st, nil
		}
		if d.Swap && st.wanted == nil {
			st.wanted = &intents[i]
		}
	}
	st.osDisk = osDiskSwap(root)
	return st, nil
}

// osDiskSwap says where the guest has, or had before vhdprep fix disabled
// it, swap on the OS disk: fstab lines and enabled .swap units.
func osDiskSwap(root rootfs.FS) string {
	b, _ := readFile(root, "etc/fstab")
	for i, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, swapDisabledMark) {
			return fmt.Sprintf("/etc/fstab:%d, disabled by vhdprep", i+1)
		}
	}
	es, _ := rootfs.ParseFstab(b)
	for _, e := range es {
		if e.IsSwap() {
			return fmt.Sprintf("/etc/fstab:%d", e.Line)
		}
	}
	if us := enabledSwapUnits(root); len(us) > 0 {
		return "/" + us[0].link
	}
	return ""
}

// swapSettings is the advice for turning swap on in an agent's file.
func swapSettings(file string) string {
	if file == cloudInitConfDir {
		return "give cloud-init disk_setup, fs_setup and mounts for ephemeral0 with a swap partition in " + file
	}
	return fmt.Sprintf("set %s=y, %s=y and %s in %s", agents.KeyFormat, agents.KeySwap, agents.KeySwapMB, file)
}

func checkResourceDiskSwap(t *Target) ([]Finding, error) {
	st, err := resourceDiskSwapState(t)
	if err != nil || st.done {
		return nil, err
	}
	w := st.wanted
	switch {
	case w != nil && w.Agent == st.owner:
		return []Finding{{Message: fmt.Sprintf("%s=y in %s, but %s makes swap only on a resource disk it formats (%s is not y)", agents.KeySwap, w.File, w.Agent, agents.KeyFormat),
			Location: Location{File: w.File}, Fix: "set " + agents.KeyFormat + "=y", Fixable: true}}, nil
	case w != nil && st.owner != "":
		return []Finding{{Message: fmt.Sprintf("swap on the resource disk is asked of %s in %s, which does not run at boot; %s, which does, is not told to make it", w.Agent, w.File, st.owner),
			Location: Location{File: w.File}, Fix: "carry the setting over: " + swapSettings(st.ownerFile), Fixable: true}}, nil
	case w != nil:
		return []Finding{{Message: fmt.Sprintf("swap on the resource disk is asked of %s in %s, but no provisioning agent runs at boot", w.Agent, w.File),
			Location: Location{File: w.File}, Fix: "vhdprep agent inject IMAGE --replace-waagent (it carries the setting over)"}}, nil
	case st.osDisk != "":
		where := cmp.Or(st.ownerFile, "/"+vhdprepAgentConf)
		return []Finding{{Message: fmt.Sprintf("the image had swap on the OS disk (%s), and no agent puts swap on the resource disk; swap there is opt-in: if VMs need it, %s", st.osDisk, swapSettings(where)),
			Location: Location{File: where}}}, nil
	}
	return nil, nil // the image never had swap, and asks for none
}

// errSwapOptIn: fix carries a swap setting over, never makes one up.
var errSwapOptIn = errors.New("swap on the resource disk is opt-in, and nothing in the image asks for it: vhdprep fix does not turn it on")

// repairResourceDiskSwap carries a swap setting over to the agent that
// handles the resource disk: cloud-init's where it provisions, else
// waagent.conf, else /etc/vhdprep-agent.conf.
func repairResourceDiskSwap(t *Target, o *Overlay) error {
	st, err := resourceDiskSwapState(t)
	if err != nil || st.done {
		return err
	}
	if st.wanted == nil {
		return fmt.Errorf("%w; to have it, %s", errSwapOptIn, swapSettings(cmp.Or(st.ownerFile, "/"+vhdprepAgentConf)))
	}
	switch st.owner {
	case agentCloudInit:
		o.Write(cloudInitSwapFile, []byte(cloudInitSwapSetup))
		return nil
	case agentWAAgent, agentVhdprep:
		return setResourceDiskSwap(t, o, strings.TrimPrefix(st.ownerFile, "/"), st.wanted.SwapMB)
	}
	return fmt.Errorf("no provisioning agent runs at boot to make swap on the resource disk; run 'vhdprep agent inject --replace-waagent', which carries the setting over")
}

// Resource-disk swap: the size an agent is told to make when none is set,
// and cloud-init's way of doing it (Azure's RHEL guide).
const (
	cloudInitSwapFile  = "etc/cloud/cloud.cfg.d/99-vhdprep-swap.cfg"
	cloudInitSwapSetup = `# Added by vhdprep (SWP002): cloud-init formats the resource disk and puts swap on it.
disk_setup:
  ephemeral0:
    table_type: gpt
    layout: [66, [33, 82]]
    overwrite: true
fs_setup:
  - device: ephemeral0.1
    filesystem: ext4
  - device: ephemeral0.2
    filesystem: swap
mounts:
  - ["ephemeral0.1", "/mnt/resource"]
  - ["ephemeral0.2", "none", "swap", "sw,nofail,x-systemd.requires=cloud-init.service,x-systemd.device-timeout=2", "0", "0"]
`
)

func setResourceDiskSwap(t *Target, o *Overlay, name, size string) error {
	if n, _ := strconv.Atoi(size); n <= 0 {
		size = agents.DefaultSwapMB
	}
	for _, kv := range [][2]string{{"ResourceDisk.Format", "y"}, {"ResourceDisk.EnableSwap", "y"}, {"ResourceDisk.SwapSizeMB", size}} {
		if err := setKey(o, name, kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

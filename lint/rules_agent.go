package lint

import (
	"strings"

	"github.com/vhdprep/vhdprep/agent/layout"
	"github.com/vhdprep/vhdprep/guest"
	"github.com/vhdprep/vhdprep/guest/agents"
	"github.com/vhdprep/vhdprep/rootfs"
)

// The provisioning agents that may also run extensions or own the
// resource disk, by the names reports give them.
const (
	agentWAAgent   = agents.WAAgent
	agentCloudInit = agents.CloudInit
	agentVhdprep   = agents.Vhdprep
)

// The agents' programs and configuration files.
const (
	waagentProgram   = "usr/sbin/waagent"
	waagentConfPath  = agents.WAAgentConf
	cloudInitProgram = "usr/bin/cloud-init"
	azureInitProgram = "usr/bin/azure-init"
	cloudInitConfDir = agents.CloudInitConfDir
)

// The vhdprep agent's, as agent inject installs it.
var (
	vhdprepAgentBin  = strings.TrimPrefix(layout.Binary, "/")
	vhdprepAgentConf = agents.VhdprepConf
)

// provisioningAgent is an agent that can report Ready to Azure.
type provisioningAgent struct {
	name  string
	units []string // systemd units that start it
	rc    string   // its OpenRC service
}

var provisioningAgents = []provisioningAgent{
	{agentWAAgent, []string{"walinuxagent.service", "waagent.service"}, "waagent"},
	{agentCloudInit, []string{"cloud-init.service", "cloud-init-local.service", "cloud-init.target"}, "cloud-init"},
	{"azure-init", []string{"azure-init.service"}, "azure-init"},
	{agentVhdprep, []string{layout.DaemonUnit}, "vhdprep-agent"},
}

// enabledAgents lists the provisioning agents that start at boot.
func enabledAgents(root rootfs.FS) ([]string, error) {
	init := guest.DetectInit(root)
	var out []string
	for _, a := range provisioningAgents {
		switch init {
		case "systemd":
			if unitEnabled(root, a.units...) && !disabledByFile(root, a.name) {
				out = append(out, a.name)
			}
		case "openrc":
			if exists(root, "etc/runlevels/default/"+a.rc) || exists(root, "etc/runlevels/boot/"+a.rc) {
				out = append(out, a.name)
			}
		default:
			return nil, Skip("cannot tell which services start at boot: init system not recognized")
		}
	}
	return out, nil
}

// disabledByFile tells whether an agent's own switch keeps it from running
// although its units are enabled: cloud-init's generator takes
// /etc/cloud/cloud-init.disabled out of the boot.
func disabledByFile(root rootfs.FS, agent string) bool {
	return agent == agentCloudInit && exists(root, "etc/cloud/cloud-init.disabled")
}

func checkAgent(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	agents, err := enabledAgents(root)
	if err != nil || len(agents) > 0 {
		return nil, err
	}
	return []Finding{{Message: "no provisioning agent (" + agentNames() + ") starts at boot: nothing will report Ready, and Azure reboots the VM"}}, nil
}

func agentNames() string {
	var n []string
	for _, a := range provisioningAgents {
		n = append(n, a.name)
	}
	return strings.Join(n, ", ")
}

// Package layout is where the vhdprep agent lives in a guest: its binary,
// its systemd units, its configuration file (the default text, and how it
// is read) and its state. The agent reads it at run time, agent inject
// writes it into an image, and check looks for it; it imports nothing of
// the agent, so the image tool links none of the agent's runtime.
package layout

// Where the agent is installed.
const (
	Binary        = "/usr/sbin/vhdprep-agent"
	ConfigFile    = "/etc/vhdprep-agent.conf"
	ProvisionUnit = "vhdprep-agent-provision.service"
	DaemonUnit    = "vhdprep-agent.service"
)

// Where the agent keeps its state: MarkerFile holds the VM ID it
// provisioned, so it provisions each new VM once.
const (
	StateDir   = "/var/lib/vhdprep-agent"
	MarkerFile = StateDir + "/provisioned"
)

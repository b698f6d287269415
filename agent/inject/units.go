package inject

import "github.com/vhdprep/vhdprep/agent/layout"

// wantsDir holds the links that enable the agent's units.
const wantsDir = "/etc/systemd/system/multi-user.target.wants"

// provisionUnitText runs `vhdprep-agent provision` once per boot: it
// provisions a new VM and reports Ready. It must finish before anyone can
// log in with the credentials it sets up. provision gives up after 20
// minutes (and reports ProvisioningFailed), so systemd waits a little more.
// Its log also goes to the console: Azure's boot diagnostics show it.
const provisionUnitText = `[Unit]
Description=vhdprep agent: provision this VM and report Ready to Azure
Documentation=https://github.com/vhdprep/vhdprep
After=network-online.target
Wants=network-online.target
Before=systemd-user-sessions.service ssh.service ssh.socket sshd.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=` + layout.Binary + ` provision
TimeoutStartSec=21min
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
`

// daemonUnitText keeps `vhdprep-agent daemon` running: it reports health
// as the goal state changes (and handles extensions). It starts after the
// provisioning unit so the two never provision at once. KillMode=process:
// stopping or restarting the agent stops the agent alone, never a process
// an extension started (those run in scopes of their own where systemd-run
// works, and in the agent's cgroup where it does not).
const daemonUnitText = `[Unit]
Description=vhdprep agent: keep reporting to Azure and handle VM extensions
Documentation=https://github.com/vhdprep/vhdprep
After=network-online.target ` + layout.ProvisionUnit + `
Wants=network-online.target

[Service]
ExecStart=` + layout.Binary + ` daemon
Restart=always
RestartSec=5
KillMode=process

[Install]
WantedBy=multi-user.target
`

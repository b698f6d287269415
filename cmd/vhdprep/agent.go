package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/vhdprep/vhdprep/agent/inject"
	"github.com/vhdprep/vhdprep/guest"
	"github.com/vhdprep/vhdprep/lint"
)

func newAgentCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Install vhdprep's guest agent into an image, or remove it",
		Long: `The vhdprep agent is a static Go program that provisions the VM on its first boot and
reports Ready to Azure on every boot: what WALinuxAgent or cloud-init do, without Python.
agent inject writes it, its systemd units and its configuration into the image; agent
remove puts back what inject changed.`,
		Example: `  vhdprep agent inject disk.vhd
  vhdprep agent inject disk.vhd --replace-waagent
  vhdprep agent remove disk.vhd`,
	}
	cmd.AddCommand(newAgentInjectCmd(a), newAgentRemoveCmd(a))
	return cmd
}

func newAgentInjectCmd(a *app) *cobra.Command {
	var root, binary string
	var opt inject.Options
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "inject (IMAGE | --root DIR)",
		Short: "Write the vhdprep agent into the image",
		Long: `Inject writes the agent for the guest's architecture (x86_64 or aarch64, read from the
image) to /usr/sbin/vhdprep-agent, the units vhdprep-agent-provision.service (provision,
then report Ready, before logins are allowed) and vhdprep-agent.service (keeps reporting,
handles extensions), their enable links, /etc/vhdprep-agent.conf when there is none, and a
record of what it changed (/var/lib/vhdprep-agent/inject.json) for agent remove. Images
change as with fix: through debugfs, checked with e2fsck, restored on any failure.

An image where WALinuxAgent, azure-init or cloud-init (with the Azure datasource) starts
at boot is refused: two agents would race to provision. --replace-waagent disables them
(their enable links removed, a unit its package enables also masked; cloud-init also
through /etc/cloud/cloud-init.disabled), and agent remove enables them again. Running
inject again changes nothing. Afterwards check runs on the result: if AGT001 (an agent
provisions) or AGT006 (only one does) still fails, inject exits 1, naming it.`,
		Example: `  vhdprep agent inject disk.vhd --dry-run
  vhdprep agent inject disk.vhd
  vhdprep agent inject disk.vhd --replace-waagent
  vhdprep agent inject --root ./rootfs --agent-binary ./vhdprep-agent`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if binary != "" {
				b, err := os.ReadFile(binary)
				if err != nil {
					return usageError{fmt.Errorf("--agent-binary: %w", err)}
				}
				opt.Binary = b
			}
			opt.Verify = lint.VerifyGuest
			res, err := inject.Inject(cmd.Context(), opener(guest.Opener, args, root), dryRun, opt)
			return printAgentPlan(a, res, err, dryRun, "inject")
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "inject into a directory tree instead of an image")
	cmd.Flags().BoolVar(&opt.ReplaceAgents, "replace-waagent", false, "disable WALinuxAgent, azure-init and cloud-init provisioning instead of refusing")
	cmd.Flags().StringVar(&binary, "agent-binary", "", "install this agent binary instead of the one built into vhdprep")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change; change nothing")
	return cmd
}

func newAgentRemoveCmd(a *app) *cobra.Command {
	var root string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "remove (IMAGE | --root DIR)",
		Short: "Put back what agent inject changed",
		Long: `Remove reads the record agent inject left in the image and restores every file it
created, replaced or disabled: the agent, its units and links, its configuration if inject
wrote it, and the enable links of the agents --replace-waagent turned off.`,
		Example: `  vhdprep agent remove disk.vhd --dry-run
  vhdprep agent remove disk.vhd
  vhdprep agent remove --root ./rootfs`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := inject.Remove(cmd.Context(), opener(guest.Opener, args, root), dryRun)
			return printAgentPlan(a, res, err, dryRun, "remove")
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "remove from a directory tree instead of an image")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change; change nothing")
	return cmd
}

// agentChange is one change as printed.
type agentChange struct {
	Action string `json:"action"` // write, link, remove, rmdir
	Path   string `json:"path"`
	Mode   string `json:"mode,omitempty"`
	Link   string `json:"link,omitempty"`
}

// printAgentPlan prints what agent inject or remove changed, or would, and
// returns the error they ended with (a refusal, or a claim not kept).
func printAgentPlan(a *app, res *inject.Result, unrepaired error, dryRun bool, verb string) error {
	if res == nil {
		return unrepaired
	}
	plan := res.Plan
	var changes []agentChange
	for _, c := range plan.Changes {
		ch := agentChange{Action: "write", Path: c.Path}
		switch {
		case c.Dir:
			ch.Action = "rmdir"
		case c.Removed:
			ch.Action = "remove"
		case c.Link != "":
			ch.Action, ch.Link = "link", c.Link
		case c.Mode != 0:
			ch.Mode = fmt.Sprintf("%04o", c.Mode)
		}
		changes = append(changes, ch)
	}
	if a.jsonOutput() {
		if err := a.printJSON(struct {
			Arch    string        `json:"arch,omitempty"`
			Agents  []string      `json:"agents,omitempty"`
			DryRun  bool          `json:"dry_run"`
			Changes []agentChange `json:"changes"`
		}{plan.Arch, plan.Agents, dryRun, changes}); err != nil {
			return err
		}
		return unrepaired
	}
	if a.quiet {
		return unrepaired
	}
	if len(changes) == 0 {
		fmt.Fprintln(a.io.Out, "nothing to change")
		return nil
	}
	if plan.Arch != "" {
		fmt.Fprintf(a.io.Out, "guest architecture: %s\n", plan.Arch)
	}
	if len(plan.Agents) > 0 {
		what := map[string]string{"inject": "disabled", "remove": "enabled again"}[verb]
		fmt.Fprintf(a.io.Out, "%s: %v\n", what, plan.Agents)
	}
	if plan.ResourceDisk != "" {
		fmt.Fprintf(a.io.Out, "resource disk: %s\n", plan.ResourceDisk)
	}
	if plan.Media != "" {
		fmt.Fprintf(a.io.Out, "provisioning media: %s\n", plan.Media)
	}
	for _, c := range changes {
		switch {
		case c.Link != "":
			fmt.Fprintf(a.io.Out, "link   %s -> %s\n", c.Path, c.Link)
		case c.Mode != "":
			fmt.Fprintf(a.io.Out, "%-6s %s (%s)\n", c.Action, c.Path, c.Mode)
		default:
			fmt.Fprintf(a.io.Out, "%-6s %s\n", c.Action, c.Path)
		}
	}
	if dryRun {
		fmt.Fprintln(a.io.Out, "(dry run: nothing was changed)")
		printRefusal(a, res.Refused)
	}
	return unrepaired
}

package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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
			var err error
			if opt.Binary, err = readAgentBinary(binary); err != nil {
				return err
			}
			opt.Verify = lint.VerifyGuest
			res, err := inject.Inject(cmd.Context(), a.logOpenGuest(opener(guest.Opener, args, root)), dryRun, opt)
			return printAgentPlan(a, res, err, dryRun, "inject")
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "inject into a directory tree instead of an image")
	cmd.Flags().BoolVar(&opt.ReplaceAgents, "replace-waagent", false, "disable WALinuxAgent, azure-init and cloud-init provisioning instead of refusing")
	addAgentBinaryFlag(cmd.Flags(), &binary)
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
			res, err := inject.Remove(cmd.Context(), a.logOpenGuest(opener(guest.Opener, args, root)), dryRun)
			return printAgentPlan(a, res, err, dryRun, "remove")
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "remove from a directory tree instead of an image")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change; change nothing")
	return cmd
}

// printAgentPlan prints what agent inject or remove changed, or would, and
// returns the error they ended with (a refusal, or a claim not kept).
func addAgentBinaryFlag(f *pflag.FlagSet, path *string) {
	f.StringVar(path, "agent-binary", "", "install this agent binary instead of the one built into vhdprep")
}

// readAgentBinary reads --agent-binary's file; none given is nil, the
// agent built into vhdprep.
func readAgentBinary(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("--agent-binary: %w", err)}
	}
	return b, nil
}

func printAgentPlan(a *app, res *inject.Result, unrepaired error, dryRun bool, verb string) error {
	if res == nil {
		return unrepaired
	}
	plan := res.Plan
	changes := changesJSON(plan.Changes)
	a.logf("agent %s: %d changes planned", verb, len(changes))
	if !dryRun && len(changes) > 0 {
		a.logf("agent %s: changes written and verified", verb)
	}
	if a.jsonOutput() {
		// The same document for a dry run and a real run.
		refused := ""
		if res.Refused != nil {
			refused = res.Refused.Error()
		}
		if err := a.printJSON(struct {
			Image        string       `json:"image"`
			DryRun       bool         `json:"dry_run"`
			Written      bool         `json:"written"`
			Refused      string       `json:"refused,omitempty"`
			Arch         string       `json:"arch,omitempty"`
			Agents       []string     `json:"agents"`
			ResourceDisk string       `json:"resource_disk,omitempty"`
			Media        string       `json:"provisioning_media,omitempty"`
			Changes      []changeJSON `json:"changes"`
		}{a.image, dryRun, !dryRun && len(changes) > 0, refused, plan.Arch, plan.Agents, plan.ResourceDisk, plan.Media, changes}); err != nil {
			return err
		}
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

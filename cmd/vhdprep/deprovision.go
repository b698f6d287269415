package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vhdprep/vhdprep/lint"
)

func newDeprovisionCmd(a *app) *cobra.Command {
	var root string
	var removeUsers, dryRun bool
	cmd := &cobra.Command{
		Use:   "deprovision (IMAGE | --root DIR)",
		Short: "Generalize an image so every VM made from it starts fresh",
		Long: `Deprovision removes what ties an image to the machine it was built on: SSH host keys,
the machine ID (emptied, so systemd makes a new one), shell histories, WALinuxAgent and
cloud-init instance state, DHCP leases; it locks root's password. Accounts other than
system accounts are listed, and removed with their home directories only with
--remove-users. Changes are made, verified and undone on failure as 'vhdprep fix' does.
Afterwards check runs on the result: a SEC rule a step changed files for that still fails
makes deprovision exit 1, naming it. An image it cannot write (qcow2, dynamic VHD, XFS)
is refused before anything is printed; --dry-run shows the plan and says so.`,
		Example: `  vhdprep deprovision disk.vhd --dry-run
  vhdprep deprovision disk.vhd --remove-users
  vhdprep deprovision --root ./rootfs`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var planned planJSON
			res, err := lint.Deprovision(cmd.Context(), lint.DeprovisionOptions{
				Open:        a.logOpen(opener(lint.Opener, args, root)),
				RemoveUsers: removeUsers,
				DryRun:      dryRun,
				Planned: func(r *lint.DeprovisionResult, refused error) {
					a.logPlan(r.Plan)
					planned = newPlanJSON(r.Plan, dryRun, refused)
					if !a.jsonOutput() && len(r.Users) > 0 {
						verb := "kept (use --remove-users to remove them)"
						if removeUsers {
							verb = "removed"
						}
						fmt.Fprintf(a.io.Out, "accounts %s: %s\n", verb, strings.Join(r.Users, ", "))
					}
					printPlan(a, r.Plan, dryRun)
					if dryRun {
						printRefusal(a, refused)
					}
				},
			})
			var after *lint.Report
			if res != nil {
				after = res.After
			}
			a.logAfter(after, err)
			if a.jsonOutput() && planned.ready && (err == nil || isNotConverged(err)) {
				// The same document for a dry run and a real run; the
				// accounts are those kept or, with --remove-users, removed.
				doc := struct {
					planJSON
					Accounts    []string `json:"accounts"`
					RemoveUsers bool     `json:"remove_users"`
				}{planned, nil, removeUsers}
				doc.finish(after)
				if res != nil {
					doc.Accounts = res.Users
				}
				if perr := a.printJSON(doc); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "deprovision a directory tree instead of an image")
	cmd.Flags().BoolVar(&removeUsers, "remove-users", false, "also remove accounts other than system ones, with their home directories")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show every change; change nothing")
	return cmd
}

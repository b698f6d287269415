package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vhdprep/vhdprep/guest"
	"github.com/vhdprep/vhdprep/internal/textdiff"
	"github.com/vhdprep/vhdprep/lint"
)

func newFixCmd(a *app) *cobra.Command {
	var root, configPath string
	var only []string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "fix (IMAGE | --root DIR)",
		Short: "Repair what check finds, inside the image file",
		Long: `Fix runs check, and for every finding vhdprep can repair changes the files inside the
image directly: no mount, no root, no VM. Each filesystem's changes are made together
through e2fsprogs' debugfs, checked with e2fsck and read back; on any failure the image
is restored to its previous bytes. --dry-run shows every change as a unified diff and
changes nothing. Fix ends by running check on the result: a rule it changed files for
that still fails makes it exit 1, naming the rule and what check still finds. An image it
cannot write (qcow2, dynamic VHD, XFS) is refused before any plan is printed.

Repairs today: the kernel command line in every place it lives (KRN001-KRN007, and
root= by UUID: KRN009), fstab by UUID with nofail on data disks (FST001), swap in fstab
(SWP001), resource-disk swap through the agent present and one owner of that disk
(SWP002, SWP003), the Hyper-V drivers (DRV001-DRV003, DRV006, DRV008) added to each
kernel's initramfs from the image's own modules, with their dependencies and depmod's
indexes, and named in the initramfs tool's configuration for the next rebuild,
modprobe.d lines disabling udf or vfat (DRV004, DRV005), persistent network rules (NET003),
dhclient's timeout (NET004), sshd's ClientAliveInterval (SSH002), sudoers targetpw
(SEC005), WALinuxAgent auto-update (AGT002), cloud-init's Azure datasource (AGT005),
cloud-init alone provisioning where WALinuxAgent also did (AGT006).
Images: raw and fixed VHD with ext2/3/4 filesystems on partitions or linear LVM logical
volumes; anything else: fix --root on the mounted tree.`,
		Example: `  vhdprep fix disk.vhd --dry-run
  vhdprep fix disk.vhd
  vhdprep fix disk.vhd --only KRN001,KRN004,SWP001
  vhdprep fix --root ./rootfs`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			catalog := lint.Catalog()
			cfg := &lint.Config{}
			if configPath != "" {
				c, err := lint.LoadConfig(configPath, catalog)
				if err != nil {
					return usageError{fmt.Errorf("--config %w", err)}
				}
				cfg = c
			}
			if err := (&lint.Config{Disable: only}).Validate(catalog); err != nil {
				return usageError{fmt.Errorf("--only: %w", err)}
			}
			var planned planJSON
			res, err := lint.Fix(cmd.Context(), lint.FixOptions{
				Open:    a.logOpen(opener(lint.Opener, args, root)),
				Catalog: catalog,
				Config:  cfg,
				Only:    only,
				DryRun:  dryRun,
				Planned: func(plan *lint.Plan, refused error) {
					a.logPlan(plan)
					planned = newPlanJSON(plan, dryRun, refused)
					printPlan(a, plan, dryRun)
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
				// The same document for a dry run and a real run.
				// A repair that did not converge still exits 1, saying which.
				planned.finish(after)
				if perr := a.printJSON(planned); perr != nil {
					return perr
				}
				return err
			}
			if res == nil || res.After == nil || a.jsonOutput() {
				return err // failed, or a dry run
			}
			// A rule fix changed files for and check still fails is a
			// repair that did not converge: exit 1, saying which.
			rep, unrepaired := res.After, err
			printAfter(a, res.Plan, rep)
			s := rep.Summary
			fmt.Fprintf(a.io.Out, "\ncheck after fix: %d errors, %d warnings, %d info (vhdprep check %s for details)\n", s.Errors, s.Warnings, s.Infos, res.Name)
			return unrepaired
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "fix a directory tree instead of an image")
	cmd.Flags().StringVar(&configPath, "config", "", "rule configuration file (.vhdprep.yaml)")
	cmd.Flags().StringSliceVar(&only, "only", nil, "repair only these rule IDs (comma-separated)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show every change as a unified diff; change nothing")
	return cmd
}

// opener is what the library verbs open: the IMAGE argument, or the
// --root directory, as open (lint.Opener, guest.Opener) opens them; given
// both or neither, a usage error.
func opener[T any](open func(image, dir string) func(change bool) (T, error), args []string, root string) func(change bool) (T, error) {
	image := ""
	if len(args) == 1 {
		image = args[0]
	}
	o := open(image, root)
	return func(change bool) (T, error) {
		var t T
		err := guest.ErrImageOrDir
		if len(args) <= 1 {
			t, err = o(change)
		}
		if errors.Is(err, guest.ErrImageOrDir) {
			err = usageError{errors.New("give an IMAGE or --root DIR")}
		}
		return t, err
	}
}

// printRefusal says, after a dry run's plan, that the real run would be
// refused and why.
func printRefusal(a *app, refused error) {
	if refused == nil {
		return
	}
	if a.jsonOutput() {
		return // planJSON's "refused"
	}
	fmt.Fprintf(a.io.Out, "\nthe real run would be refused: %v\n", refused)
}

func printPlan(a *app, plan *lint.Plan, diffs bool) {
	if a.jsonOutput() {
		return // the whole document comes at the end (planJSON)
	}
	if len(plan.Rules) == 0 {
		fmt.Fprintln(a.io.Out, "nothing to fix")
		return
	}
	for _, r := range plan.Rules {
		switch {
		case r.Command != "":
			fmt.Fprintf(a.io.Out, "%s: not for fix: run %s\n", r.ID, r.Command)
		case r.Error != "":
			fmt.Fprintf(a.io.Out, "%s: cannot fix: %s\n", r.ID, r.Error)
		case len(r.Files) == 0:
			fmt.Fprintf(a.io.Out, "%s: nothing to change\n", r.ID)
		default:
			fmt.Fprintf(a.io.Out, "%s: %v\n", r.ID, r.Files)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(a.io.Out, "%s: note: %s\n", r.ID, n)
		}
	}
	if !diffs {
		return
	}
	for _, c := range plan.Changes {
		fmt.Fprintln(a.io.Out)
		if c.Removed {
			fmt.Fprintf(a.io.Out, "remove %s\n", c.Path)
			continue
		}
		textdiff.Unified(a.io.Out, "a"+c.Path, "b"+c.Path, c.Old, c.New)
	}
}

// printAfter says, per rule fix worked on, what check says of it now.
func printAfter(a *app, plan *lint.Plan, rep *lint.Report) {
	status := map[string]lint.Status{}
	for _, o := range rep.Outcomes {
		status[o.ID] = o.Status
	}
	fmt.Fprintln(a.io.Out)
	for _, r := range plan.Rules {
		fmt.Fprintf(a.io.Out, "%s after fix: %s\n", r.ID, status[r.ID])
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vhdprep/vhdprep/diskimage"
	"github.com/vhdprep/vhdprep/internal/junit"
	"github.com/vhdprep/vhdprep/lint"
	"github.com/vhdprep/vhdprep/prepare"
	"github.com/vhdprep/vhdprep/upload"
)

type prepareOptions struct {
	check       checkOptions // --config, --fail-on, --disable, --junit, --sarif
	agent       string
	agentBinary string
	removeUsers bool
	size        string
	force       bool
	upload      bool
	dest        upload.Destination
	uploadOpts  upload.Options
}

func newPrepareCmd(a *app) *cobra.Command {
	var o prepareOptions
	cmd := &cobra.Command{
		Use:   "prepare INPUT OUTPUT.vhd [--upload ...]",
		Short: "Do the whole job: check, agent, fix, deprovision, convert, gate, upload",
		Long: `Prepare takes an image of any format vhdprep reads to a fixed VHD that passes the gate,
in one command: it converts the input to a fixed VHD beside OUTPUT, checks it, injects
vhdprep's agent (unless the image's own provisions: --agent), fixes what check finds,
deprovisions, and checks again as the gate (--fail-on). OUTPUT appears only when every
step passed; the input is never changed; a failure or Ctrl-C leaves no output. With
--upload (or a destination flag) the output is then uploaded as 'vhdprep upload' does.
Each step is what its own command does; the report at the end lists every step, every
change and what remains (text or -o json; --junit and --sarif files as check writes).

The configuration file is check's (.vhdprep.yaml: disable, severity, rules, fail-on)
with prepare's choices: 'agent: auto|inject|replace|keep' and 'remove-users: true'.`,
		Example: `  vhdprep prepare disk.qcow2 disk.vhd
  vhdprep prepare disk.raw disk.vhd --config .vhdprep.yaml --junit prepare.xml
  vhdprep prepare disk.vmdk disk.vhd --agent replace --remove-users
  vhdprep prepare disk.qcow2 disk.vhd --upload --blob-url "$SAS_URL"`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := o.options(cmd, args)
			if err != nil {
				return err
			}
			if !a.jsonOutput() && !a.quiet {
				fmt.Fprintf(a.io.Out, "prepare %s -> %s\n", opts.Input, opts.Output)
				opts.Done = func(s prepare.Step) { printStep(a.io.Out, s) }
			}
			opts.Progress, opts.Logf = a.progress(), a.logf
			rep, err := prepare.Run(cmd.Context(), opts)
			if werr := o.check.writeFiles(func(w io.Writer) error { return writePrepareJUnit(w, rep) }, rep.Check); werr != nil && err == nil {
				err = werr
			}
			if a.jsonOutput() {
				if jerr := a.printJSON(rep); jerr != nil && err == nil {
					err = jerr
				}
			} else if !a.quiet {
				printRemaining(a.io.Out, rep)
			}
			return prepareError(rep, err)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.check.configPath, "config", "", "configuration file (.vhdprep.yaml: disable, severity, rules, fail-on, agent, remove-users)")
	f.StringVar(&o.check.failOn, "fail-on", "", "fail the gate at a finding at least this severe: error, warning or info (default error)")
	f.StringSliceVar(&o.check.disable, "disable", nil, "rule IDs to skip (comma-separated or repeated)")
	f.StringVar(&o.check.junit, "junit", "", "also write the report as JUnit XML to this file (a test case per step, then the gate's rules)")
	f.StringVar(&o.check.sarif, "sarif", "", "also write the gate's findings as SARIF 2.1.0 to this file")
	f.StringVar(&o.agent, "agent", "", "provisioning agent: auto (inject vhdprep's unless the image's own provisions), inject, replace (disable the others), keep (default auto, or the config's)")
	addAgentBinaryFlag(f, &o.agentBinary)
	f.BoolVar(&o.removeUsers, "remove-users", false, "deprovision also removes accounts other than system ones, with their homes")
	f.StringVar(&o.size, "size", "", "the output's virtual size (e.g. 30G); default the input's, rounded up to a MiB")
	f.BoolVarP(&o.force, "force", "f", false, "replace OUTPUT if it exists")
	f.BoolVar(&o.upload, "upload", false, "upload the output once written (to the destination flags, or the environment's)")
	addUploadFlags(f, &o.dest, &o.uploadOpts)
	return cmd
}

// options turns the flags into prepare's options; every usage mistake,
// the upload destination's included, is found before any work starts.
func (o *prepareOptions) options(cmd *cobra.Command, args []string) (prepare.Options, error) {
	catalog := lint.Catalog()
	cfg, failOn, err := o.check.config(catalog)
	if err != nil {
		return prepare.Options{}, err
	}
	if o.agent != "" {
		if !slices.Contains(lint.AgentChoices, o.agent) {
			return prepare.Options{}, usageError{fmt.Errorf("--agent must be one of %s, not %q", strings.Join(lint.AgentChoices, ", "), o.agent)}
		}
		cfg.Agent = o.agent
	}
	cfg.RemoveUsers = cfg.RemoveUsers || o.removeUsers
	opts := prepare.Options{Input: args[0], Output: args[1], Force: o.force, Catalog: catalog, Config: cfg, FailOn: failOn}
	if opts.AgentBinary, err = readAgentBinary(o.agentBinary); err != nil {
		return opts, err
	}
	if o.size != "" {
		if opts.Size, err = diskimage.ParseSize(o.size); err != nil {
			return opts, usageError{fmt.Errorf("--size: %w", err)}
		}
	}
	for _, flag := range []string{"blob-url", "connection-string", "container", "blob", "managed-disk-sas", "concurrency", "overwrite", "verify", "content-md5"} {
		if cmd.Flags().Changed(flag) && !o.upload {
			o.upload = true // a destination flag says where to upload
		}
	}
	if o.upload {
		up, err := o.dest.Options(opts.Output, o.uploadOpts)
		if errors.Is(err, upload.ErrTarget) {
			return opts, usageError{fmt.Errorf("--upload: %w", err)}
		} else if err != nil {
			return opts, err
		}
		opts.Upload = &up
	}
	return opts, nil
}

// prepareError maps what went wrong to the exit codes: a gate that failed
// or a repair that did not converge is 1, a signal 130 saying what it
// left, anything else 3.
func prepareError(rep *prepare.Report, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, prepare.ErrGate):
		return gateError{err}
	case errors.Is(err, upload.ErrInterrupted):
		return interrupted(fmt.Sprintf("%s was written; to resume the upload, run vhdprep upload %s with the same destination flags", rep.Output, rep.Output))
	case errors.Is(err, context.Canceled):
		return interrupted(fmt.Sprintf("the input is unchanged and %s was not written", rep.Output))
	}
	return err
}

// printStep prints one line per step as it ends.
func printStep(w io.Writer, s prepare.Step) {
	line := s.Summary
	if line == "" {
		line = s.Error
	}
	fmt.Fprintf(w, "  %-12s %-8s %s (%.1f s)\n", s.Name, s.Status, line, s.Seconds)
	// Rules that changed the same files share a line (KRN001-004 all
	// edit the GRUB files).
	var ids, files []string
	for _, rf := range s.Rules {
		if len(rf.Files) == 0 {
			continue
		}
		if f := strings.Join(rf.Files, " "); len(files) > 0 && files[len(files)-1] == f {
			ids[len(ids)-1] += " " + rf.ID
		} else {
			ids, files = append(ids, rf.ID), append(files, f)
		}
	}
	for i := range ids {
		fmt.Fprintf(w, "  %-12s %-8s %s: %s\n", "", "", ids[i], files[i])
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "  %-12s %-8s note: %s\n", "", "", n)
	}
}

// printRemaining says what the gate still finds, a line a finding.
func printRemaining(w io.Writer, rep *prepare.Report) {
	if rep.Check == nil {
		return
	}
	var lines []string
	for _, o := range rep.Check.Outcomes {
		if o.Status != lint.Failed {
			continue
		}
		for _, f := range o.Findings {
			lines = append(lines, fmt.Sprintf("  %-7s %s  %s", f.Severity, o.ID, f.Message))
		}
	}
	if len(lines) == 0 {
		fmt.Fprintln(w, "nothing remains: every rule passes")
		return
	}
	fmt.Fprintf(w, "remaining (fail-on %s):\n%s\n", rep.FailOn, strings.Join(lines, "\n"))
}

// writePrepareJUnit writes a test case per step, then the gate's rules.
func writePrepareJUnit(w io.Writer, rep *prepare.Report) error {
	steps := junit.Suite{Name: "vhdprep prepare " + rep.Input}
	for _, s := range rep.Steps {
		c := junit.Case{Class: "vhdprep.prepare", Name: s.Name + ": " + s.Summary}
		switch s.Status {
		case prepare.Failed:
			c.Name = s.Name
			c.Failure = &junit.Failure{Message: s.Error, Type: "step", Text: s.Error}
		case prepare.Skipped:
			c.Skipped = &junit.Skipped{Message: s.Summary}
		}
		steps.Cases = append(steps.Cases, c)
	}
	suites := []junit.Suite{steps}
	if rep.Check != nil {
		suites = append(suites, lint.JUnitSuite(rep.Check))
	}
	return junit.Write(w, suites...)
}

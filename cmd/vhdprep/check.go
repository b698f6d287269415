package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vhdprep/vhdprep/internal/atomicfile"
	"github.com/vhdprep/vhdprep/lint"
)

type checkOptions struct {
	root       string
	configPath string
	failOn     string
	disable    []string
	junit      string
	sarif      string
	listRules  bool
}

func newCheckCmd(a *app) *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check (IMAGE | --root DIR)",
		Short: "Check an image offline against Azure's requirements",
		Long: `Check reads the image without mounting or booting it and applies the rule catalog
(vhdprep check --list-rules): container, disk layout, kernel command line, drivers,
swap, agents, SSH and generalization. Each finding says what, where, why (with its
source) and how to fix it. Exit code 1 when a finding is at or above --fail-on.`,
		Example: `  vhdprep check disk.vhd
  vhdprep check --root ./rootfs
  vhdprep check disk.vhd --output json
  vhdprep check disk.vhd --junit report.xml --sarif report.sarif
  vhdprep check disk.vhd --fail-on warning
  vhdprep check disk.vhd --disable KRN003 --config .vhdprep.yaml
  vhdprep check --list-rules`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			catalog := lint.Catalog()
			if o.listRules {
				return listRules(a, catalog)
			}
			cfg, failOn, err := o.config(catalog)
			if err != nil {
				return err
			}
			target, err := opener(lint.Opener, args, o.root)(false)
			if err != nil {
				return fmt.Errorf("check: %w", err)
			}
			defer target.Close()
			a.logTarget(target, false)
			rep := lint.Run(target, catalog, cfg)
			a.logReport("check", rep)
			if err := o.writeFiles(func(w io.Writer) error { return lint.WriteJUnit(w, rep) }, rep); err != nil {
				return err
			}
			if a.jsonOutput() {
				err = a.printJSON(rep)
			} else {
				err = lint.WriteText(a.io.Out, rep, a.io.IsStdoutTTY())
			}
			if err != nil {
				return err
			}
			if rep.Fails(failOn) {
				return errFindings
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.root, "root", "", "check a directory tree (an unpacked or mounted root filesystem) instead of an image")
	f.StringVar(&o.configPath, "config", "", "rule configuration file (.vhdprep.yaml: disable, severity, rules, fail-on)")
	f.StringVar(&o.failOn, "fail-on", "", "exit 1 when a finding is at least this severe: error, warning or info (default error)")
	f.StringSliceVar(&o.disable, "disable", nil, "rule IDs to skip (comma-separated or repeated)")
	f.StringVar(&o.junit, "junit", "", "also write the report as JUnit XML to this file")
	f.StringVar(&o.sarif, "sarif", "", "also write the report as SARIF 2.1.0 to this file")
	f.BoolVar(&o.listRules, "list-rules", false, "list the rule catalog and exit")
	return cmd
}

// config merges the config file and the flags; flags win.
func (o *checkOptions) config(catalog []*lint.Rule) (*lint.Config, lint.Severity, error) {
	cfg := &lint.Config{}
	if o.configPath != "" {
		c, err := lint.LoadConfig(o.configPath, catalog)
		if err != nil {
			return nil, 0, usageError{fmt.Errorf("--config %w", err)}
		}
		cfg = c
	}
	cfg.Disable = append(cfg.Disable, o.disable...)
	if err := cfg.Validate(catalog); err != nil {
		return nil, 0, usageError{fmt.Errorf("--disable: %w", err)}
	}
	failOn := lint.Error
	if cfg.FailOn != 0 {
		failOn = cfg.FailOn
	}
	if o.failOn != "" {
		s, err := lint.ParseSeverity(o.failOn)
		if err != nil {
			return nil, 0, usageError{fmt.Errorf("--fail-on: %w", err)}
		}
		failOn = s
	}
	return cfg, failOn, nil
}

// writeFiles writes the --junit file with junitReport and the --sarif file
// of sarif (none when nil: no check ran).
func (o *checkOptions) writeFiles(junitReport func(io.Writer) error, sarif *lint.Report) error {
	write := func(path string, fn func(io.Writer) error) error {
		if path == "" {
			return nil
		}
		f, err := atomicfile.Create(path, true)
		if err != nil {
			return err
		}
		defer f.Abort()
		if err := fn(f); err != nil {
			return err
		}
		return f.Commit()
	}
	if err := write(o.junit, junitReport); err != nil {
		return fmt.Errorf("--junit %s: %w", o.junit, err)
	}
	if sarif == nil {
		return nil
	}
	if err := write(o.sarif, func(w io.Writer) error { return lint.WriteSARIF(w, sarif, version) }); err != nil {
		return fmt.Errorf("--sarif %s: %w", o.sarif, err)
	}
	return nil
}

// ruleListing is a rule of the catalog as --list-rules shows it. With no
// image at hand, a command names it <image> (and the fixed VHD to make
// <fixed.vhd>): check IMAGE names the real files.
type ruleListing struct {
	ID          string        `json:"id"`
	Area        lint.Area     `json:"area"`
	Severity    lint.Severity `json:"severity"`
	Title       string        `json:"title"`
	Why         string        `json:"why"`
	Source      string        `json:"source"`
	Fix         string        `json:"fix,omitempty"`
	Fixable     bool          `json:"fixable"`
	Command     string        `json:"command,omitempty"` // the vhdprep command that repairs it
	Implemented bool          `json:"implemented"`
	Reason      string        `json:"not_implemented_reason,omitempty"`
}

func listRules(a *app, catalog []*lint.Rule) error {
	list := []ruleListing{}
	for _, r := range catalog {
		list = append(list, ruleListing{r.ID, r.Area, r.Severity, r.Title, r.Why, r.Source, r.CatalogFix(), r.Fixable, r.CatalogCommand(), r.Check != nil, r.NotImplemented})
	}
	if a.jsonOutput() {
		return a.printJSON(struct {
			Rules []ruleListing `json:"rules"`
		}{list})
	}
	w := tabwriter.NewWriter(a.io.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSEVERITY\tRULE\tSOURCE\tREPAIRED BY")
	for _, r := range list {
		fix := "-"
		if r.Command != "" {
			fix = r.Command
		}
		title := r.Title
		if !r.Implemented {
			title += " (" + r.Reason + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Severity, title, r.Source, fix)
	}
	fmt.Fprintf(w, "\n%s stands for your image file; check on an image prints each command with its name.\n", lint.PlaceholderImage)
	return w.Flush()
}

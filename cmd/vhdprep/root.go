package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vhdprep/vhdprep/internal/iostreams"
	"github.com/vhdprep/vhdprep/internal/shell"
	"github.com/vhdprep/vhdprep/progress"
	"github.com/vhdprep/vhdprep/upload"
)

// app is what every command shares: the streams and the global flags.
type app struct {
	io      *iostreams.IOStreams
	output  string
	quiet   bool
	verbose bool
	// image is the image (or --root directory) a library verb opened, for
	// the JSON output of commands whose result does not name it.
	image string
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "vhdprep",
		Short: "Take a Linux disk image from built somewhere to running on Azure",
		Long: `vhdprep converts, checks, repairs, equips and uploads Linux disk images for Azure,
offline and without root: one static binary instead of qemu-img, loop mounts,
hand-edited GRUB files, WALinuxAgent and azcopy.

` + exitCodesHelp,
		Version:       versionLine(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if o := strings.ToLower(a.output); o != "text" && o != "json" {
				return usageError{fmt.Errorf("--output must be text or json, not %q%s", a.output, outputFileHint(cmd, args, a.output))}
			} else {
				a.output = o
			}
			if readOnly[cmd.Name()] {
				return signals.readOnlyFromHere()
			}
			return nil
		},
	}
	root.PersistentFlags().StringVarP(&a.output, "output", "o", "text", "output format: text or json")
	root.PersistentFlags().BoolVarP(&a.quiet, "quiet", "q", false, "print only errors on stderr (no progress, notes or warnings); the result on stdout stays")
	root.PersistentFlags().BoolVarP(&a.verbose, "verbose", "v", false, "log each step, retry and throttle on stderr")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetOut(a.io.Out)
	root.SetErr(a.io.ErrOut)

	root.AddCommand(
		newAgentCmd(a),
		newCheckCmd(a),
		newCatCmd(a),
		newConvertCmd(a),
		newDeprovisionCmd(a),
		newFixCmd(a),
		newInfoCmd(a),
		newInspectCmd(a),
		newLsCmd(a),
		newPrepareCmd(a),
		newResizeCmd(a),
		newUploadCmd(a),
		newVersionCmd(a),
	)
	root.SetVersionTemplate("{{.Version}}\n")
	// Commands that only group others run (to refuse unknown subcommands,
	// see strictArgs), but have no use line of their own.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(), "Usage:{{if .Runnable}}", "Usage:{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
	root.SetHelpCommand(newHelpCmd())
	root.InitDefaultCompletionCmd()
	strictArgs(root)
	return root
}

// run executes vhdprep with args and returns the process exit code.
func run(ctx context.Context, args []string, ios *iostreams.IOStreams) int {
	a := &app{io: ios}
	root := newRootCmd(a)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ie interruptedError
	switch {
	case err == nil && signals.caught() != nil:
		// The signal came when the command's only safe point was its end.
		err = interrupted("it came past the last point where stopping was safe, so the job was finished first")
	case errors.Is(err, context.Canceled) && signals.caught() != nil && !errors.As(err, &ie) && !errors.Is(err, upload.ErrInterrupted):
		// The library verbs stop before their first write (an upload
		// says how to resume instead).
		err = interrupted("nothing was written")
	}
	if err != nil && err != errFindings { // the report has said what is wrong
		fmt.Fprintln(ios.ErrOut, "vhdprep: "+strings.TrimSpace(err.Error()))
	}
	return exitCode(err)
}

// outputFileHint explains, when -o was given a file name, where the file
// goes instead, with the command that was meant.
func outputFileHint(cmd *cobra.Command, args []string, value string) string {
	if !strings.ContainsAny(value, "./") {
		return ""
	}
	quoted := make([]string, len(args))
	for i, arg := range args {
		quoted[i] = shell.Quote(arg)
	}
	switch cmd.Name() {
	case "convert":
		if len(quoted) == 1 {
			return fmt.Sprintf("; the output file is the second argument: vhdprep convert %s %s", quoted[0], shell.Quote(value))
		}
	}
	hint := fmt.Sprintf("; -o names the format: %s -o json > %s", strings.Join(append([]string{cmd.CommandPath()}, quoted...), " "), shell.Quote(value))
	if cmd.Name() == "check" {
		hint += " (--junit FILE and --sarif FILE write those reports to files)"
	}
	return hint
}

// newHelpCmd is cobra's help command, but an unknown topic is bad usage.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return usageError{fmt.Errorf("no help for %q: see 'vhdprep --help' for the commands", strings.Join(args, " "))}
			}
			return cmd.Help()
		},
	}
}

// jsonOutput tells whether machine-readable output was asked for.
func (a *app) jsonOutput() bool { return a.output == "json" }

// progress returns a progress bar on a terminal, plain lines every few
// seconds elsewhere (a CI log), and nothing with --quiet or --output json.
func (a *app) progress() progress.Reporter {
	switch {
	case a.quiet || a.jsonOutput():
		return progress.Discard
	case !a.io.IsStderrTTY():
		return newLines(a.io.ErrOut, lineInterval)
	}
	return newBar(a.io.ErrOut)
}

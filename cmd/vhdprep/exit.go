package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vhdprep/vhdprep/lint"
	"github.com/vhdprep/vhdprep/upload"
)

// Exit codes: what a pipeline may branch on. exitCode is the one place
// that decides them.
const (
	exitOK          = 0
	exitGate        = 1   // findings at or above --fail-on, or a repair that did not converge
	exitUsage       = 2   // bad command, flags or arguments
	exitFailed      = 3   // vhdprep could not do the job: unreadable image, I/O, network, refusal
	exitInterrupted = 130 // stopped by SIGINT or SIGTERM
)

// exitCodesHelp documents the codes in --help and the README.
const exitCodesHelp = `Exit codes:
  0    success
  1    the gate failed: findings at or above --fail-on, or a repair that did not converge
  2    bad usage: unknown command or flag, wrong arguments
  3    vhdprep could not do the job: unreadable image, I/O, network, a refused change
  130  interrupted (Ctrl-C or SIGTERM)`

// usageError marks errors in how vhdprep was called (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// gateError marks a verdict on the image rather than a failure to judge it
// (exit 1).
type gateError struct{ err error }

func (e gateError) Error() string { return e.err.Error() }
func (e gateError) Unwrap() error { return e.err }

// errFindings ends a check whose report already said what is wrong.
var errFindings = gateError{errors.New("findings at or above --fail-on")}

// interruptedError is a command stopped by a signal, saying what state it
// left (exit 130).
type interruptedError struct{ msg string }

func (e interruptedError) Error() string { return e.msg }

// exitCode maps the error a command returned to the process exit code.
func exitCode(err error) int {
	var ue usageError
	var ge gateError
	var nc *lint.NotConvergedError
	var ie interruptedError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ie), errors.Is(err, context.Canceled), errors.Is(err, upload.ErrInterrupted):
		return exitInterrupted
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ge), errors.As(err, &nc):
		return exitGate
	}
	return exitFailed
}

// strictArgs makes every usage mistake cobra finds a usageError: argument
// counts, and unknown subcommands, which a command that only groups others
// (agent, completion) would otherwise answer with its help and exit 0.
func strictArgs(c *cobra.Command) {
	if c.HasSubCommands() && !c.Runnable() {
		c.Args = unknownSubcommand
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	} else if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		strictArgs(sub)
	}
}

// unknownSubcommand refuses any argument of a command that only groups
// others, suggesting the nearest subcommand.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return usageError{fmt.Errorf("%s (see '%s --help')", msg, strings.TrimSpace(cmd.CommandPath()))}
}

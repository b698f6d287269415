package extension

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vhdprep/vhdprep/agent/layout"
)

// Limits are the per-command time limits. WALinuxAgent gives enable 5
// minutes and install, update, disable and uninstall 15.
type Limits struct {
	Enable, Other time.Duration
}

// DefaultLimits are WALinuxAgent's; the configuration file can change
// enable's.
var DefaultLimits = Limits{Enable: layout.DefaultEnableTimeout, Other: 15 * time.Minute}

// maxOutputTail is how much of each of stdout and stderr a status message
// keeps (WALinuxAgent's TELEMETRY_MESSAGE_MAX_LEN).
const maxOutputTail = 3200

// Environment variable names WALinuxAgent sets for handler commands
// (ExtCommandEnvVariable).
const (
	envPrefix              = "AZURE_GUEST_AGENT"
	EnvExtensionPath       = envPrefix + "_EXTENSION_PATH"
	EnvExtensionVersion    = envPrefix + "_EXTENSION_VERSION"
	EnvSeqNumber           = "ConfigSequenceNumber" // as the Windows guest agent names it
	EnvExtensionName       = "ConfigExtensionName"  // multi-config handlers only
	EnvWireProtocolAddress = envPrefix + "_WIRE_PROTOCOL_ADDRESS"
	EnvUninstallReturnCode = envPrefix + "_UNINSTALL_CMD_EXIT_CODE"
	EnvDisableReturnCode   = envPrefix + "_DISABLE_CMD_EXIT_CODE"
	// EnvDisableReturnCodes is EnvDisableReturnCode of a multi-config
	// handler: [{"extensionName":..., "exitCode":...}] as JSON.
	EnvDisableReturnCodes  = envPrefix + "_DISABLE_CMD_EXIT_CODES_MULTIPLE_EXTENSIONS"
	EnvUpdatingFromVersion = envPrefix + "_UPDATING_FROM_VERSION"
	// notRun is the value of an exit-code variable whose command did not run.
	notRun = "NOT_RUN"
)

// CommandError is a handler command that failed, timed out or could not start.
type CommandError struct {
	Operation string // "install", "enable"...
	ExitCode  int    // -1 when killed or not started
	TimedOut  bool
	Output    string // stdout/stderr tails
	Err       error
}

func (e *CommandError) Error() string {
	switch {
	case e.TimedOut:
		return fmt.Sprintf("%s timed out and was killed\n%s", e.Operation, e.Output)
	case e.ExitCode > 0:
		return fmt.Sprintf("%s failed with exit code %d\n%s", e.Operation, e.ExitCode, e.Output)
	}
	return fmt.Sprintf("%s failed: %v\n%s", e.Operation, e.Err, e.Output)
}

// ExtensionSlice is the systemd slice every handler command's scope goes
// in, WALinuxAgent's: azure.slice/azure-vmextensions.slice.
const ExtensionSlice = "azure-vmextensions.slice"

// SystemdRun is the systemd-run that starts handler commands in scopes of
// their own on a system that systemd runs, found as WALinuxAgent finds
// systemd (root's /run/systemd/system exists, as sd_booted(3) checks);
// "" where systemd does not run or systemd-run is missing.
func SystemdRun(root string) string {
	if fi, err := os.Stat(filepath.Join(root, "run/systemd/system")); err != nil || !fi.IsDir() {
		return ""
	}
	path, err := exec.LookPath("systemd-run")
	if err != nil {
		return ""
	}
	return path
}

// scopeArgs is the command line that runs command in the transient scope
// unit (a name ending in .scope) under ExtensionSlice, with CPU and memory
// accounting, through systemd-run at path. systemd-run --scope runs the
// command itself, in the foreground, with this environment and directory.
func scopeArgs(path, unit, command string) []string {
	return []string{path, "--scope", "--unit=" + unit, "--slice=" + ExtensionSlice,
		"-p", "CPUAccounting=yes", "-p", "MemoryAccounting=yes", "/bin/sh", "-c", command}
}

// errNoScope: systemd-run failed before it started the command.
var errNoScope = errors.New("systemd-run could not start the command's scope")

// run runs argv in dir, in its own process group, and waits for that
// process, not for its output: stdout and stderr go to unlinked files in
// dir, as WALinuxAgent's launch_command does, so a handler that starts a
// detached worker and exits (CustomScript's shim runs its worker with
// nohup ... &) returns at once, and the worker, holding the files open, is
// left alone. At limit the whole group is killed. When ctx ends otherwise
// (the agent stops) the command is left to run, as it would be after a
// restart. With unit set, argv is systemd-run's for that scope, and a
// failure whose stderr does not begin with systemd-run's line naming the
// unit ("Running scope as unit: NAME.scope") is errNoScope, as
// WALinuxAgent tells systemd's failures from the command's. It returns
// the output tails.
func run(ctx context.Context, op, dir string, argv, env []string, limit time.Duration, unit string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	stdout, err := outputFile(dir)
	if err != nil {
		return "", &CommandError{Operation: op, ExitCode: -1, Err: err}
	}
	defer stdout.Close()
	stderr, err := outputFile(dir)
	if err != nil {
		return "", &CommandError{Operation: op, ExitCode: -1, Err: err}
	}
	defer stderr.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		if unit != "" {
			return "", fmt.Errorf("%w: %v", errNoScope, err)
		}
		return "", &CommandError{Operation: op, ExitCode: -1, Err: err}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "", &CommandError{Operation: op, ExitCode: -1, Err: fmt.Errorf("the agent is stopping; the command goes on: %w", ctx.Err())}
		}
		// The handler's children share its group: kill them all.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		out := outputOf(stdout, stderr)
		return out, &CommandError{Operation: op, ExitCode: -1, TimedOut: true, Output: out, Err: ctx.Err()}
	}
	out := outputOf(stdout, stderr)
	if err == nil {
		return out, nil
	}
	if unit != "" && !headHas(stderr, unit) {
		return out, fmt.Errorf("%w: %v\n%s", errNoScope, err, out)
	}
	code := -1
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	return out, &CommandError{Operation: op, ExitCode: code, Output: out, Err: err}
}

// outputOf is the status message's account of a command's output.
func outputOf(stdout, stderr *os.File) string {
	return fmt.Sprintf("[stdout]\n%s\n\n\n[stderr]\n%s", tailOf(stdout), tailOf(stderr))
}

// headHas reports whether s is in the first KiB written to f.
func headHas(f *os.File, s string) bool {
	buf := make([]byte, 1024)
	n, _ := f.ReadAt(buf, 0)
	return bytes.Contains(buf[:n], []byte(s))
}

// outputFile is a file for a command's output in dir, already unlinked:
// it goes away when the command and every process it left are done with it.
func outputFile(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, ".output-")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// tailOf is the last maxOutputTail bytes written to f so far, "..." first
// when cut, as valid UTF-8.
func tailOf(f *os.File) string {
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(0, fi.Size()-maxOutputTail)
	buf := make([]byte, fi.Size()-off)
	n, _ := f.ReadAt(buf, off)
	s := strings.ToValidUTF8(string(bytes.TrimRight(buf[:n], "\n")), "?")
	if off > 0 {
		return "..." + s
	}
	return s
}

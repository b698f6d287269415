package extension

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Limits are the per-command time limits. WALinuxAgent gives enable 5
// minutes and install, update, disable and uninstall 15.
type Limits struct {
	Enable, Other time.Duration
}

// DefaultLimits are WALinuxAgent's.
var DefaultLimits = Limits{Enable: 5 * time.Minute, Other: 15 * time.Minute}

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

// run runs command through /bin/sh -c in dir, in its own process group,
// and waits for that process, not for its output: stdout and stderr go to
// unlinked files in dir, as WALinuxAgent's launch_command does, so a
// handler that starts a detached worker and exits (CustomScript's shim
// runs its worker with nohup ... &) returns at once, and the worker,
// holding the files open, is left alone. At limit the whole group is
// killed. It returns the output tails.
func run(ctx context.Context, op, dir, command string, env []string, limit time.Duration) (string, error) {
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
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return "", &CommandError{Operation: op, ExitCode: -1, Err: err}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timedOut := false
	select {
	case err = <-done:
	case <-ctx.Done():
		timedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
		// The handler's children share its group: kill them all.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = <-done
	}
	out := fmt.Sprintf("[stdout]\n%s\n\n\n[stderr]\n%s", tailOf(stdout), tailOf(stderr))
	if timedOut {
		return out, &CommandError{Operation: op, ExitCode: -1, TimedOut: true, Output: out, Err: ctx.Err()}
	}
	if err != nil {
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return out, &CommandError{Operation: op, ExitCode: code, Output: out, Err: err}
	}
	return out, nil
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

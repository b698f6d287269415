package extension

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
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
// killing the whole group after limit. It returns the output tails.
func run(ctx context.Context, op, dir, command string, env []string, limit time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr tail
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return "", &CommandError{Operation: op, ExitCode: -1, Err: err}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	timedOut := false
	select {
	case err = <-done:
	case <-ctx.Done():
		timedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
		// The handler's children share its group; kill them all, then
		// wait for the pipes, which they may hold open.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = <-done
	}
	out := fmt.Sprintf("[stdout]\n%s\n\n\n[stderr]\n%s", stdout.String(), stderr.String())
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

// tail keeps the last maxOutputTail bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
	cut bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > maxOutputTail {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-maxOutputTail:]...)
		t.cut = true
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.ToValidUTF8(string(bytes.TrimRight(t.buf, "\n")), "?")
	if t.cut {
		return "..." + s
	}
	return s
}

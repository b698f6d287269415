//go:build !linux

package provision

import "errors"

// The agent runs on Linux guests only; elsewhere this package is built for
// vhdprep, which embeds the agent and reads its configuration.

func sethostname(string) error { return errors.ErrUnsupported }

func mountReadOnly(string, string, string) error { return errors.ErrUnsupported }

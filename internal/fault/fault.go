// Package fault lets the crash tests stop vhdprep exactly between two steps
// of a change: Point kills the process when VHDPREP_FAULT names it.
package fault

import (
	"os"
	"syscall"
)

// Env names the point at which vhdprep kills itself.
const Env = "VHDPREP_FAULT"

// Point kills vhdprep with SIGKILL, as a power loss or the OOM killer
// would stop it, when the environment names this point.
func Point(name string) {
	if os.Getenv(Env) == name {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
}

package write

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes cmd die if vhdprep dies: a debugfs left writing would
// race the next command's restore.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

package provision

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// System is what provisioning does to the live system beyond writing files
// under the root: run the distribution's tools, set the running kernel's
// host name, read the VM's DMI UUID, change owners, mount the provisioning
// media. Tests give a System that acts on the test's root directory.
type System interface {
	// LookPath finds a program as exec.LookPath does, or fails.
	LookPath(name string) (string, error)
	// Run runs a program with arguments and standard input, returning its
	// combined output.
	Run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, error)
	// SetHostname sets the running system's host name.
	SetHostname(name string) error
	// ProductUUID returns /sys/class/dmi/id/product_uuid as the firmware
	// reports it.
	ProductUUID() (string, error)
	// Chown changes the owner of path (not following a symbolic link).
	Chown(path string, uid, gid int) error
	// Mount mounts device at dir read-only with filesystem type fstype.
	Mount(device, dir, fstype string) error
	// Unmount unmounts dir.
	Unmount(dir string) error
}

// Host is the System of the machine the agent runs on.
type Host struct{}

var _ System = Host{}

// LookPath implements System.
func (Host) LookPath(name string) (string, error) { return exec.LookPath(name) }

// Run implements System.
func (Host) Run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	// A fixed, C locale: the output is read by this program and logged.
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// SetHostname implements System.
func (Host) SetHostname(name string) error { return sethostname(name) }

// ProductUUID implements System.
func (Host) ProductUUID() (string, error) {
	b, err := os.ReadFile("/sys/class/dmi/id/product_uuid")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Chown implements System.
func (Host) Chown(path string, uid, gid int) error { return os.Lchown(path, uid, gid) }

// Mount implements System.
func (Host) Mount(device, dir, fstype string) error {
	if err := mountReadOnly(device, dir, fstype); err != nil {
		return fmt.Errorf("mount %s (%s) at %s: %w", device, fstype, dir, err)
	}
	return nil
}

// Unmount implements System.
func (Host) Unmount(dir string) error {
	if err := unix.Unmount(dir, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

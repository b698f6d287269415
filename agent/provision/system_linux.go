package provision

import "golang.org/x/sys/unix"

func sethostname(name string) error { return unix.Sethostname([]byte(name)) }

// mountReadOnly mounts what the agent only reads (the provisioning media):
// read-only, no setuid, no devices, no programs.
func mountReadOnly(device, dir, fstype string) error {
	return unix.Mount(device, dir, fstype, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
}

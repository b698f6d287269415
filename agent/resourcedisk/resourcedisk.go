// Package resourcedisk prepares the Azure resource (temporary) disk as
// WALinuxAgent does when ResourceDisk.Format=y: it finds the disk, gives it
// a Linux filesystem if it has none (Azure hands it out NTFS-formatted or
// blank), mounts it, and puts a swap file of the configured size on it.
// Everything on the disk can be lost when the VM moves, so nothing else
// belongs there.
package resourcedisk

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/vhdprep/vhdprep/agent/layout"
	"github.com/vhdprep/vhdprep/raw/probe"
)

// Config says what to do with the resource disk: the ResourceDisk.* keys
// of the agent's configuration file, named and defaulted as WALinuxAgent's.
type Config = layout.ResourceDisk

// System runs the system's tools (mkfs.*, sfdisk, mount, mkswap, swapon,
// swapoff). provision.Host is one; tests give one that records.
type System interface {
	Run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, error)
}

// Disk prepares the resource disk of the system at Root.
type Disk struct {
	Root   string // "/" except in tests
	Sys    System
	Log    *slog.Logger
	Config Config
	// PartitionWait is how long a new partition's device may take to
	// appear (10 s when zero).
	PartitionWait time.Duration
}

// How Azure presents the resource disk: udev's link (WALinuxAgent's and
// azure-vm-utils' rules make it), else the VMBus storage device: on Gen1
// the IDE controller whose device ID starts with 00000000-0001, on Gen2
// LUN 1 of the SCSI controller with this ID (LUN 0 is the OS disk, 2 the
// provisioning media).
const (
	azureResourceLink = "/dev/disk/azure/resource"
	vmbusDevices      = "/sys/bus/vmbus/devices"
	gen1Prefix        = "00000000-0001"
	gen2ControllerID  = "f8b3781a-1e82-4818-a1c3-63d806ec15bb"
	swapFileName      = "swapfile"
	warningFileName   = "DATALOSS_WARNING_README.txt"
)

const dataLossWarning = `WARNING: THIS IS A TEMPORARY DISK.

Any data stored on this drive is SUBJECT TO LOSS and THERE IS NO WAY TO
RECOVER IT. Do not use it for personal or application data.
`

// ErrNoResourceDisk is returned when the VM has no resource disk (many
// sizes have none).
var ErrNoResourceDisk = errors.New("no resource disk: neither " + azureResourceLink + " nor a VMBus storage device for it; this VM size may have no temporary disk")

// Setup formats (when needed), mounts and adds swap, as configured. It is
// safe to run on every boot: what is already done is left alone.
func (d *Disk) Setup(ctx context.Context) error {
	c := d.Config
	if !c.Format {
		return nil
	}
	dev, err := d.find()
	if err != nil {
		return err
	}
	part, err := d.partition(ctx, dev)
	if err != nil {
		return err
	}
	mnt, err := d.mountedAt(part)
	if err != nil {
		return err
	}
	if mnt == "" {
		if mnt, err = d.formatAndMount(ctx, dev, part); err != nil {
			return err
		}
	}
	if !c.EnableSwap || c.SwapSizeMB <= 0 {
		return nil
	}
	return d.swap(ctx, path.Join(mnt, swapFileName), int64(c.SwapSizeMB)<<20)
}

func (d *Disk) host(p string) string { return filepath.Join(d.Root, p) }

// guest maps a host path back under Root.
func (d *Disk) guest(p string) string {
	rel, err := filepath.Rel(d.Root, p)
	if err != nil {
		return p
	}
	return "/" + filepath.ToSlash(rel)
}

// resolve follows symlinks inside Root.
func (d *Disk) resolve(p string) (string, error) {
	h, err := filepath.EvalSymlinks(d.host(p))
	if err != nil {
		return "", err
	}
	return d.guest(h), nil
}

// find returns the resource disk's device, e.g. /dev/sdb.
func (d *Disk) find() (string, error) {
	if dev, err := d.resolve(azureResourceLink); err == nil {
		return dev, nil
	}
	ents, err := os.ReadDir(d.host(vmbusDevices))
	if err != nil {
		return "", ErrNoResourceDisk
	}
	for _, e := range ents {
		b, err := os.ReadFile(d.host(path.Join(vmbusDevices, e.Name(), "device_id")))
		if err != nil {
			continue
		}
		id := strings.ToLower(strings.Trim(strings.TrimSpace(string(b)), "{}"))
		if !strings.HasPrefix(id, gen1Prefix) && id != gen2ControllerID {
			continue
		}
		if dev := blockDevice(d.host(path.Join(vmbusDevices, e.Name())), id == gen2ControllerID); dev != "" {
			return "/dev/" + dev, nil
		}
	}
	return "", ErrNoResourceDisk
}

// blockDevice finds, under a VMBus device's sysfs directory, the block
// device in a directory named block (on Gen2 only under the SCSI address
// H:C:T:1). It looks a few levels deep only: sysfs has cycles.
func blockDevice(dir string, lun1Only bool) string {
	var found string
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || found != "" {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.Count(rel, string(filepath.Separator)) > 6 {
			return filepath.SkipDir
		}
		if e.Name() != "block" || !e.IsDir() {
			return nil
		}
		if addr := filepath.Base(filepath.Dir(p)); lun1Only && !strings.HasSuffix(addr, ":1") {
			return filepath.SkipDir
		}
		if ents, err := os.ReadDir(p); err == nil && len(ents) > 0 {
			found = ents[0].Name()
		}
		return filepath.SkipDir
	})
	return found
}

// partition returns the device of the disk's first partition, making one
// spanning the disk when there is none.
func (d *Disk) partition(ctx context.Context, dev string) (string, error) {
	part := dev + "1"
	if last := dev[len(dev)-1]; last >= '0' && last <= '9' {
		part = dev + "p1" // nvme0n1 -> nvme0n1p1
	}
	if _, err := os.Stat(d.host(part)); err == nil {
		return part, nil
	}
	d.log().Info("resource disk has no partition; making one", "disk", dev)
	if _, err := d.Sys.Run(ctx, "sfdisk", []string{"--quiet", dev}, []byte("label: dos\ntype=83\n")); err != nil {
		return "", fmt.Errorf("partitioning resource disk %s: %w", dev, err)
	}
	wait := d.PartitionWait
	if wait == 0 {
		wait = 10 * time.Second
	}
	for deadline := time.Now().Add(wait); ; {
		if _, err := os.Stat(d.host(part)); err == nil {
			return part, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("resource disk %s: partition %s did not appear within %v of sfdisk", dev, part, wait)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(wait / 50):
		}
	}
}

// mountedAt returns where the system has the partition mounted, or "".
func (d *Disk) mountedAt(part string) (string, error) {
	want, err := d.resolve(part)
	if err != nil {
		return "", fmt.Errorf("resource disk partition %s: %w", part, err)
	}
	f, err := os.Open(d.host("/proc/self/mounts"))
	if err != nil {
		return "", fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || !strings.HasPrefix(fields[0], "/dev/") {
			continue
		}
		if dev, err := d.resolve(unescapeMount(fields[0])); err == nil && dev == want {
			return unescapeMount(fields[1]), nil
		}
	}
	return "", sc.Err()
}

// unescapeMount undoes the octal escapes of /proc/self/mounts (\040 for a
// space).
func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// formatAndMount gives the partition the configured filesystem unless it
// has a Linux one already, and mounts it.
func (d *Disk) formatAndMount(ctx context.Context, dev, part string) (string, error) {
	c := d.Config
	fstype, err := d.filesystem(part)
	if err != nil {
		return "", err
	}
	if fstype == "" {
		d.log().Info("formatting resource disk", "partition", part, "filesystem", c.Filesystem)
		if err := d.setLinuxType(ctx, dev); err != nil {
			return "", err
		}
		force := "-F"
		if c.Filesystem == "xfs" {
			force = "-f"
		}
		if _, err := d.Sys.Run(ctx, "mkfs."+c.Filesystem, []string{force, part}, nil); err != nil {
			return "", fmt.Errorf("formatting resource disk %s: %w", part, err)
		}
		fstype = c.Filesystem
	}
	if err := os.MkdirAll(d.host(c.MountPoint), 0o755); err != nil {
		return "", fmt.Errorf("resource disk mount point: %w", err)
	}
	args := []string{"-t", fstype}
	if c.MountOptions != "" {
		args = append(args, "-o", c.MountOptions)
	}
	if _, err := d.Sys.Run(ctx, "mount", append(args, part, c.MountPoint), nil); err != nil {
		return "", fmt.Errorf("mounting resource disk %s at %s: %w", part, c.MountPoint, err)
	}
	if err := os.WriteFile(d.host(path.Join(c.MountPoint, warningFileName)), []byte(dataLossWarning), 0o644); err != nil {
		d.log().Warn("writing the data loss warning", "err", err)
	}
	d.log().Info("resource disk mounted", "partition", part, "at", c.MountPoint, "filesystem", fstype)
	return c.MountPoint, nil
}

// ErrNotResourceDiskData refuses to format a partition that holds neither
// a Linux filesystem nor what Azure ships the disk with (NTFS or nothing):
// a swap area, LUKS or LVM there is someone's, and formatting would lose it.
var ErrNotResourceDiskData = errors.New("resource disk partition holds data the agent did not expect")

// filesystem names the Linux filesystem on the partition; "" for none, or
// for NTFS, which Azure formats the disk with (probe names neither).
func (d *Disk) filesystem(part string) (string, error) {
	f, err := os.Open(d.host(part))
	if err != nil {
		return "", fmt.Errorf("resource disk partition: %w", err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd) // a block device's Stat size is 0
	if err != nil {
		return "", fmt.Errorf("resource disk partition %s: %w", part, err)
	}
	r, err := probe.Probe(f, size)
	if err != nil {
		return "", fmt.Errorf("resource disk partition %s: %w", part, err)
	}
	switch r.Type {
	case probe.Ext2, probe.Ext3, probe.Ext4, probe.XFS, probe.Btrfs:
		return r.Type, nil
	case "":
		return "", nil
	}
	return "", fmt.Errorf("%w: %s holds %s, not Azure's NTFS or a blank disk; not formatting it (wipe it, or set ResourceDisk.Format=n)", ErrNotResourceDiskData, part, r.Type)
}

// MBR partition types: Azure's NTFS partition, and Linux.
const (
	mbrTypeNTFS  = 0x07
	mbrTypeLinux = "83"
)

// setLinuxType retypes an NTFS MBR partition 1 as Linux, as WALinuxAgent
// does before it formats.
func (d *Disk) setLinuxType(ctx context.Context, dev string) error {
	f, err := os.Open(d.host(dev))
	if err != nil {
		return fmt.Errorf("resource disk: %w", err)
	}
	mbr := make([]byte, 512)
	_, err = io.ReadFull(f, mbr)
	f.Close()
	if err != nil || mbr[510] != 0x55 || mbr[511] != 0xaa || mbr[446+4] != mbrTypeNTFS {
		return nil
	}
	if _, err := d.Sys.Run(ctx, "sfdisk", []string{"--part-type", dev, "1", mbrTypeLinux}, nil); err != nil {
		return fmt.Errorf("resource disk %s: setting partition 1 to Linux: %w", dev, err)
	}
	return nil
}

// swap makes sure a swap file of size bytes is active at file.
func (d *Disk) swap(ctx context.Context, file string, size int64) error {
	active, err := d.swapActive(file)
	if err != nil {
		return err
	}
	info, statErr := os.Stat(d.host(file))
	if statErr == nil && info.Size() == size && active {
		return nil
	}
	if statErr == nil && info.Size() != size {
		d.log().Info("resizing the swap file", "file", file, "from", info.Size(), "to", size)
		if active {
			if _, err := d.Sys.Run(ctx, "swapoff", []string{file}, nil); err != nil {
				return fmt.Errorf("swap file %s has the wrong size and cannot be turned off: %w", file, err)
			}
		}
		if err := os.Remove(d.host(file)); err != nil {
			return fmt.Errorf("swap file: %w", err)
		}
		statErr = fs.ErrNotExist
	}
	if statErr != nil {
		if err := allocate(d.host(file), size); err != nil {
			return fmt.Errorf("swap file %s: %w", file, err)
		}
		if _, err := d.Sys.Run(ctx, "mkswap", []string{file}, nil); err != nil {
			return fmt.Errorf("swap file %s: %w", file, err)
		}
	}
	if _, err := d.Sys.Run(ctx, "swapon", []string{file}, nil); err != nil {
		return fmt.Errorf("swap file %s: %w", file, err)
	}
	d.log().Info("swap on the resource disk", "file", file, "mib", size>>20)
	return nil
}

// swapActive tells whether /proc/swaps lists file.
func (d *Disk) swapActive(file string) (bool, error) {
	b, err := os.ReadFile(d.host("/proc/swaps"))
	if err != nil {
		return false, fmt.Errorf("reading the active swap: %w", err)
	}
	for _, line := range bytes.Split(b, []byte("\n"))[1:] {
		if f := strings.Fields(string(line)); len(f) > 0 && unescapeMount(f[0]) == file {
			return true, nil
		}
	}
	return false, nil
}

// allocate makes a file of size bytes with every block allocated (swapon
// refuses holes), readable by root only. A file it could not finish is
// removed.
func allocate(name string, size int64) (err error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(name)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if fallocate(f, size) == nil {
		return nil
	}
	// Filesystems without fallocate: write zeros.
	zeros := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(zeros)) {
		if _, err := f.Write(zeros[:min(left, int64(len(zeros)))]); err != nil {
			return err
		}
	}
	return nil
}

func (d *Disk) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

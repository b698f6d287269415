package resourcedisk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/raw/probe"
)

// system runs the disk tools for real on the test root's device files
// (regular files: mkfs, mkswap and sfdisk need no root for those) and
// emulates what needs the kernel: mount and swapon add their line to the
// root's /proc files, and a partition appears as a file when sfdisk makes it.
type system struct {
	root  string
	calls []string
}

func (s *system) Run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, error) {
	s.calls = append(s.calls, strings.TrimSpace(name+" "+strings.Join(args, " ")))
	host := make([]string, len(args))
	for i, a := range args {
		host[i] = a
		if strings.HasPrefix(a, "/") {
			host[i] = filepath.Join(s.root, a)
		}
	}
	switch name {
	case "mount":
		return nil, appendLine(filepath.Join(s.root, "proc/self/mounts"), fmt.Sprintf("%s %s %s rw 0 0", args[len(args)-2], args[len(args)-1], args[1]))
	case "swapon":
		return nil, appendLine(filepath.Join(s.root, "proc/swaps"), args[0]+"\tfile\t1024\t0\t-2")
	case "swapoff":
		b, _ := os.ReadFile(filepath.Join(s.root, "proc/swaps"))
		return nil, os.WriteFile(filepath.Join(s.root, "proc/swaps"), bytes.ReplaceAll(b, []byte(args[0]+"\t"), []byte("gone\t")), 0o644)
	}
	cmd := exec.CommandContext(ctx, name, host...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %v: %s", name, err, out)
	}
	if name == "sfdisk" && len(args) == 2 { // the kernel would show the new partition
		return out, makeFile(s.root, args[1]+"1", 32<<20)
	}
	return out, nil
}

func appendLine(name, line string) error {
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintln(f, line)
	return err
}

func makeFile(root, name string, size int64) error {
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Truncate(size)
}

// vm makes a root with a Gen1 resource disk /dev/sdb as sysfs shows it, an
// NTFS-typed MBR partition 1 (the partition itself blank) and empty /proc
// tables.
func vm(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	dev := filepath.Join(root, "sys/bus/vmbus/devices/00000000-0001-8899-0000-000000000000")
	must(os.MkdirAll(filepath.Join(dev, "host3/target3:0:1/3:0:1:0/block/sdb"), 0o755))
	must(os.WriteFile(filepath.Join(dev, "device_id"), []byte("{00000000-0001-8899-0000-000000000000}\n"), 0o644))
	other := filepath.Join(root, "sys/bus/vmbus/devices/00000000-0000-8899-0000-000000000000")
	must(os.MkdirAll(filepath.Join(other, "host2/target2:0:0/2:0:0:0/block/sda"), 0o755))
	must(os.WriteFile(filepath.Join(other, "device_id"), []byte("{00000000-0000-8899-0000-000000000000}\n"), 0o644))
	must(makeFile(root, "/dev/sdb", 34<<20))
	mbr := make([]byte, 512)
	mbr[446+4], mbr[510], mbr[511] = mbrTypeNTFS, 0x55, 0xaa
	f, err := os.OpenFile(filepath.Join(root, "dev/sdb"), os.O_WRONLY, 0)
	must(err)
	_, err = f.WriteAt(mbr, 0)
	f.Close()
	must(err)
	must(makeFile(root, "/dev/sdb1", 32<<20))
	must(os.MkdirAll(filepath.Join(root, "proc/self"), 0o755))
	must(os.WriteFile(filepath.Join(root, "proc/self/mounts"), []byte("/dev/sda1 / ext4 rw 0 0\nproc /proc proc rw 0 0\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, "proc/swaps"), []byte("Filename\tType\tSize\tUsed\tPriority\n"), 0o644))
	return root
}

func config() Config {
	return Config{Format: true, Filesystem: "ext4", MountPoint: "/mnt/resource", EnableSwap: true, SwapSizeMB: 8}
}

func fsType(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, _ := f.Stat()
	r, err := probe.Probe(f, info.Size())
	if err != nil {
		t.Fatal(err)
	}
	return r.Type
}

func TestFormatMountAndSwapThenNothingTheSecondTime(t *testing.T) {
	testimage.RequireTools(t, "mkfs.ext4", "mkswap", "sfdisk")
	root := vm(t)
	sys := &system{root: root}
	d := &Disk{Root: root, Sys: sys, Config: config()}
	if err := d.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"sfdisk --part-type /dev/sdb 1 83",
		"mkfs.ext4 -F /dev/sdb1",
		"mount -t ext4 /dev/sdb1 /mnt/resource",
		"mkswap /mnt/resource/swapfile",
		"swapon /mnt/resource/swapfile",
	}
	if strings.Join(sys.calls, "\n") != strings.Join(want, "\n") {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(sys.calls, "\n"), strings.Join(want, "\n"))
	}
	if got := fsType(t, filepath.Join(root, "dev/sdb1")); got != probe.Ext4 {
		t.Fatalf("the partition holds %q after mkfs.ext4", got)
	}
	mbr, _ := os.ReadFile(filepath.Join(root, "dev/sdb"))
	if mbr[446+4] != 0x83 {
		t.Fatalf("partition 1 has type %#x, want Linux", mbr[446+4])
	}
	swap := filepath.Join(root, "mnt/resource/swapfile")
	info, err := os.Stat(swap)
	if err != nil || info.Size() != 8<<20 || info.Mode().Perm() != 0o600 {
		t.Fatalf("swap file: %v %v", info, err)
	}
	if got := fsType(t, swap); got != probe.Swap {
		t.Fatalf("the swap file holds %q after mkswap", got)
	}
	if _, err := os.Stat(filepath.Join(root, "mnt/resource", warningFileName)); err != nil {
		t.Fatal("no data loss warning on the disk")
	}

	sys.calls = nil
	if err := d.Setup(context.Background()); err != nil || len(sys.calls) != 0 {
		t.Fatalf("second boot: %v, calls %q", err, sys.calls)
	}

	// A new size: the old file goes, a new one is made.
	d.Config.SwapSizeMB = 4
	if err := d.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Join(sys.calls, ";") != "swapoff /mnt/resource/swapfile;mkswap /mnt/resource/swapfile;swapon /mnt/resource/swapfile" {
		t.Fatalf("resize calls %q", sys.calls)
	}
	if info, _ := os.Stat(swap); info.Size() != 4<<20 {
		t.Fatalf("swap file is %d bytes", info.Size())
	}
}

func TestFormattedDiskIsMountedNotFormatted(t *testing.T) {
	testimage.RequireTools(t, "mkfs.ext4")
	root := vm(t)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", filepath.Join(root, "dev/sdb1")).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	sys := &system{root: root}
	c := config()
	c.EnableSwap, c.MountOptions, c.Filesystem = false, "noatime", "xfs"
	if err := (&Disk{Root: root, Sys: sys, Config: c}).Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Join(sys.calls, ";") != "mount -t ext4 -o noatime /dev/sdb1 /mnt/resource" {
		t.Fatalf("calls %q", sys.calls)
	}
}

func TestBlankDiskIsPartitioned(t *testing.T) {
	testimage.RequireTools(t, "mkfs.ext4", "sfdisk")
	root := vm(t)
	os.Remove(filepath.Join(root, "dev/sdb1"))
	sys := &system{root: root}
	c := config()
	c.EnableSwap = false
	if err := (&Disk{Root: root, Sys: sys, Config: c, PartitionWait: time.Second}).Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(sys.calls) < 1 || sys.calls[0] != "sfdisk --quiet /dev/sdb" {
		t.Fatalf("calls %q", sys.calls)
	}
	out, err := exec.Command("sfdisk", "--dump", filepath.Join(root, "dev/sdb")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "type=83") {
		t.Fatalf("partition table after sfdisk: %v\n%s", err, out)
	}
}

func TestFindingTheDisk(t *testing.T) {
	// Gen2: LUN 1 of the synthetic SCSI controller, not LUN 0 (the OS disk).
	root := t.TempDir()
	ctl := filepath.Join(root, "sys/bus/vmbus/devices/f8b3781a-1e82-4818-a1c3-63d806ec15bb")
	os.MkdirAll(filepath.Join(ctl, "host0/target0:0:0/0:0:0:0/block/sda"), 0o755)
	os.MkdirAll(filepath.Join(ctl, "host0/target0:0:0/0:0:0:1/block/sdb"), 0o755)
	os.WriteFile(filepath.Join(ctl, "device_id"), []byte("{f8b3781a-1e82-4818-a1c3-63d806ec15bb}\n"), 0o644)
	d := &Disk{Root: root}
	if dev, err := d.find(); err != nil || dev != "/dev/sdb" {
		t.Fatalf("gen2: %q %v", dev, err)
	}
	// udev's link wins.
	os.MkdirAll(filepath.Join(root, "dev/disk/azure"), 0o755)
	makeFile(root, "/dev/nvme1n1", 1<<20)
	os.Symlink("../../nvme1n1", filepath.Join(root, "dev/disk/azure/resource"))
	if dev, err := d.find(); err != nil || dev != "/dev/nvme1n1" {
		t.Fatalf("azure link: %q %v", dev, err)
	}
	if _, err := (&Disk{Root: t.TempDir()}).find(); err != ErrNoResourceDisk {
		t.Fatalf("no disk: %v", err)
	}
}

func TestFormatOffDoesNothing(t *testing.T) {
	sys := &system{root: t.TempDir()}
	if err := (&Disk{Root: sys.root, Sys: sys}).Setup(context.Background()); err != nil || len(sys.calls) != 0 {
		t.Fatalf("%v %q", err, sys.calls)
	}
}

// Only a blank or NTFS partition is formatted: now that formatting is the
// default, a swap area (or LUKS, LVM) there is not lost.
func TestForeignDataIsNotFormatted(t *testing.T) {
	testimage.RequireTools(t, "mkswap")
	root := vm(t)
	if out, err := exec.Command("mkswap", filepath.Join(root, "dev/sdb1")).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	sys := &system{root: root}
	err := (&Disk{Root: root, Sys: sys, Config: config()}).Setup(context.Background())
	if !errors.Is(err, ErrNotResourceDiskData) || !strings.Contains(err.Error(), "/dev/sdb1 holds swap") {
		t.Fatalf("err %v", err)
	}
	if len(sys.calls) != 0 {
		t.Errorf("calls %q, want none", sys.calls)
	}
	if got := fsType(t, filepath.Join(root, "dev/sdb1")); got != probe.Swap {
		t.Errorf("the partition holds %q", got)
	}
}

package agent

import (
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/agent/resourcedisk"
)

// The resource disk keys are WALinuxAgent's, with its shipped waagent.conf's
// defaults: formatted and mounted at /mnt/resource, no swap.
func TestResourceDiskConfig(t *testing.T) {
	c, problems := ParseConfig([]byte(DefaultConfigText))
	want := resourcedisk.Config{Format: true, Filesystem: "ext4", MountPoint: "/mnt/resource"}
	if len(problems) != 0 || c.ResourceDisk() != want {
		t.Fatalf("defaults: %+v %v", c.ResourceDisk(), problems)
	}
	c, problems = ParseConfig([]byte("ResourceDisk.Format=y\nResourceDisk.Filesystem=xfs\nResourceDisk.MountPoint=/mnt\n" +
		"ResourceDisk.MountOptions=noatime,nodev\nResourceDisk.EnableSwap=y\nResourceDisk.SwapSizeMB=2048\n"))
	want = resourcedisk.Config{Format: true, Filesystem: "xfs", MountPoint: "/mnt", MountOptions: "noatime,nodev", EnableSwap: true, SwapSizeMB: 2048}
	if len(problems) != 0 || c.ResourceDisk() != want {
		t.Fatalf("set: %+v %v", c.ResourceDisk(), problems)
	}
	if c, _ := ParseConfig([]byte("ResourceDisk.Format=n\n")); c.ResourceDisk().Format {
		t.Error("ResourceDisk.Format=n does not turn formatting off")
	}
	c, problems = ParseConfig([]byte("ResourceDisk.EnableSwap=maybe\nResourceDisk.MountOptions=a b\n"))
	if len(problems) != 2 || c.ResourceDisk().EnableSwap || c.ResourceDisk().MountOptions != "" || !strings.Contains(problems[0].Error(), "ResourceDisk.EnableSwap") {
		t.Fatalf("bad values: %+v %v", c.ResourceDisk(), problems)
	}
}

package guest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/rootfs/write"
)

func TestOverlayModesAndSymlinksAreApplied(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "usr/sbin"), 0o755)
	os.WriteFile(filepath.Join(dir, "usr/sbin/tool"), []byte("same"), 0o644)
	g, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	o := write.NewOverlay(g.Root)
	o.Read("usr/sbin/tool")
	o.WriteMode("usr/sbin/tool", []byte("same"), 0o755) // only the mode differs
	o.Symlink("etc/wants/tool.service", "/usr/lib/tool.service")
	changes := o.Changes()
	if len(changes) != 2 {
		t.Fatalf("changes %+v", changes)
	}
	if err := g.Apply(changes, "fix"); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(dir, "usr/sbin/tool")); err != nil || info.Mode().Perm() != 0o755 {
		t.Fatalf("mode: %v %v", info.Mode(), err)
	}
	if got, err := os.Readlink(filepath.Join(dir, "etc/wants/tool.service")); err != nil || got != "/usr/lib/tool.service" {
		t.Fatalf("symlink %q %v", got, err)
	}
	again := write.NewOverlay(g.Root)
	again.Read("usr/sbin/tool")
	again.WriteMode("usr/sbin/tool", []byte("same"), 0o755)
	again.Symlink("etc/wants/tool.service", "/usr/lib/tool.service")
	if c := again.Changes(); len(c) != 0 {
		t.Fatalf("nothing should change the second time: %+v", c)
	}
}

// A change to the root of a linear LV lands at the LV's place on the disk;
// one to an XFS root on LVM is refused, naming fix --root.
func TestLogicalVolumesOfAChange(t *testing.T) {
	g, err := Open(testimage.Path(t, "disk-debian-lvm"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	v, err := g.volumeAt("/", "fix")
	if err != nil || v.Name != "vg0/root" || v.Offset <= 1<<20 {
		t.Fatalf("root volume %s at %d: %v", v.Name, v.Offset, err)
	}
	rhel, err := Open(testimage.Path(t, "disk-rhel-lvm"))
	if err != nil {
		t.Fatal(err)
	}
	defer rhel.Close()
	if err := rhel.CheckWritable([]write.Change{{Path: "/etc/fstab", New: []byte("x")}}, "fix"); err == nil || !strings.Contains(err.Error(), "fix --root") {
		t.Fatalf("a change to an XFS root on LVM: %v", err)
	}
}

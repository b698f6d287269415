package lint

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOverlayModesAndSymlinksAreApplied(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "usr/sbin"), 0o755)
	os.WriteFile(filepath.Join(dir, "usr/sbin/tool"), []byte("same"), 0o644)
	target, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	o := NewOverlay(target.Guest.Root)
	o.Read("usr/sbin/tool")
	o.WriteMode("usr/sbin/tool", []byte("same"), 0o755) // only the mode differs
	o.Symlink("etc/wants/tool.service", "/usr/lib/tool.service")
	plan := &Plan{Changes: o.Changes()}
	if len(plan.Changes) != 2 {
		t.Fatalf("changes %+v", plan.Changes)
	}
	if err := plan.Apply(target); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(dir, "usr/sbin/tool")); err != nil || info.Mode().Perm() != 0o755 {
		t.Fatalf("mode: %v %v", info.Mode(), err)
	}
	if got, err := os.Readlink(filepath.Join(dir, "etc/wants/tool.service")); err != nil || got != "/usr/lib/tool.service" {
		t.Fatalf("symlink %q %v", got, err)
	}
	again := NewOverlay(target.Guest.Root)
	again.Read("usr/sbin/tool")
	again.WriteMode("usr/sbin/tool", []byte("same"), 0o755)
	again.Symlink("etc/wants/tool.service", "/usr/lib/tool.service")
	if c := again.Changes(); len(c) != 0 {
		t.Fatalf("nothing should change the second time: %+v", c)
	}
}

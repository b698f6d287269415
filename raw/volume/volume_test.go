package volume

import (
	"os"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/raw"
)

func layoutOf(t *testing.T, recipe string) *Layout {
	t.Helper()
	f, err := os.Open(testimage.Path(t, recipe))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	l, err := List(raw.NewFile(f, st.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func byName(l *Layout) map[string]Volume {
	m := map[string]Volume{}
	for _, v := range l.Volumes {
		m[v.Name] = v
	}
	return m
}

func TestDebianMBR(t *testing.T) {
	l := layoutOf(t, "disk-debian-mbr")
	v := byName(l)
	if len(l.Volumes) != 1 || v["p1"].FS.Type != "ext4" || v["p1"].FS.UUID != "6b8f4c64-1c1e-4f0e-9a0b-00000000d12a" || v["p1"].Offset != raw.MiB {
		t.Fatalf("volumes = %+v, warnings %v", l.Volumes, l.Warnings)
	}
}

func TestRHELWithLVM(t *testing.T) {
	l := layoutOf(t, "disk-rhel-lvm")
	v := byName(l)
	want := map[string]string{"p1": "vfat", "p2": "ext4", "p3": "LVM2_member", "rhel/root": "xfs", "rhel/swap": "swap"}
	for name, typ := range want {
		if v[name].FS.Type != typ {
			t.Errorf("%s is %q, want %q", name, v[name].FS.Type, typ)
		}
	}
	if len(l.VGs) != 1 || l.VGs[0].Name != "rhel" || len(l.Warnings) != 0 {
		t.Fatalf("VGs %+v, warnings %v", l.VGs, l.Warnings)
	}
	if v["rhel/root"].FS.UUID != "7b0a0000-0000-4000-8000-0000000000ff" || v["p1"].FS.UUID != "5A1E-0001" {
		t.Errorf("UUIDs: root %s, esp %s", v["rhel/root"].FS.UUID, v["p1"].FS.UUID)
	}
}

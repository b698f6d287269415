package volume

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/raw/lvm"
	"github.com/vhdprep/vhdprep/raw/probe"
)

func open(t *testing.T, path string) raw.Disk {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	return raw.NewFile(f, st.Size())
}

func layoutOf(t *testing.T, recipe string) *Layout {
	t.Helper()
	l, err := List(open(t, testimage.Path(t, recipe)))
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

// blkid is the oracle: what `blkid -p` says of a volume's first bytes,
// copied into a sparse file of the volume's size.
func blkid(t *testing.T, v Volume) map[string]string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vol")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, io.NewSectionReader(v.R, 0, min(v.Size, 1<<20))); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(v.Size); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("blkid", "-p", "-o", "export", path).Output()
	kv := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, val, ok := strings.Cut(line, "="); ok {
			kv[k] = val
		}
	}
	return kv
}

func TestDebianMBR(t *testing.T) {
	l := layoutOf(t, "disk-debian-mbr")
	v := byName(l)
	if len(l.Volumes) != 1 || v["p1"].FS.Type != "ext4" || v["p1"].FS.UUID != "6b8f4c64-1c1e-4f0e-9a0b-00000000d12a" || v["p1"].Offset != raw.MiB {
		t.Fatalf("volumes = %+v, warnings %v", l.Volumes, l.Warnings)
	}
}

func TestRHELWithLVM(t *testing.T) {
	testimage.RequireTools(t, "blkid")
	l := layoutOf(t, "disk-rhel-lvm")
	v := byName(l)
	want := map[string]probe.Result{
		"p1":        {Type: "vfat", Version: "FAT16", Label: "EFI", UUID: "5A1E-0001"},
		"p2":        {Type: "xfs", Version: "5", Label: "boot", UUID: "7b0a0000-0000-4000-8000-00000000b007"},
		"p3":        {Type: "LVM2_member", Version: "LVM2 001", UUID: v["p3"].FS.UUID},
		"rhel/root": {Type: "xfs", Version: "5", Label: "root", UUID: "7b0a0000-0000-4000-8000-0000000000ff"},
		"rhel/swap": {Type: "swap", Version: "1", Label: "swap", UUID: "7b0a0000-0000-4000-8000-00000000005a"},
	}
	if len(l.Volumes) != len(want) {
		t.Errorf("%d volumes, want %d: %+v", len(l.Volumes), len(want), l.Volumes)
	}
	for name, fs := range want {
		if v[name].FS != fs {
			t.Errorf("%s is %+v, want %+v", name, v[name].FS, fs)
		}
		if b := blkid(t, v[name]); b["TYPE"] != fs.Type || b["UUID"] != fs.UUID || b["LABEL"] != fs.Label {
			t.Errorf("%s: blkid says %v, we say %+v", name, b, fs)
		}
	}
	if len(l.VGs) != 1 || l.VGs[0].Name != "rhel" || len(l.Warnings) != 0 {
		t.Fatalf("VGs %+v, warnings %v", l.VGs, l.Warnings)
	}
	root := v["rhel/root"]
	if root.VG != "rhel" || root.LV != "root" || root.Partition != nil || root.Size != 320<<20 {
		t.Errorf("root LV = %+v", root)
	}
	if p3 := v["p3"]; p3.Partition == nil || p3.Partition.Number != 3 || p3.Offset != 97*raw.MiB {
		t.Errorf("p3 = %+v", p3)
	}
}

// A disk that is a PV from its first sector (no partition table) is one
// "disk" volume whose LVs are listed.
func TestWholeDiskPV(t *testing.T) {
	testimage.RequireTools(t, "mkswap")
	dir := t.TempDir()
	swap, pv := filepath.Join(dir, "swap"), filepath.Join(dir, "pv")
	os.WriteFile(swap, nil, 0o644)
	os.Truncate(swap, 4<<20)
	for _, args := range [][]string{
		{"mkswap", "-q", "-U", "aaaaaaaa-0000-4000-8000-000000000001", swap},
		{"go", "run", "./testdata/images/lvmgen", "-out", pv, "-size", "16M", "-vg", "data", "-lv", "swap=" + swap},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = testimage.RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	l, err := List(open(t, pv))
	if err != nil {
		t.Fatal(err)
	}
	v := byName(l)
	if len(l.Volumes) != 2 || v["disk"].FS.Type != "LVM2_member" || v["data/swap"].FS.UUID != "aaaaaaaa-0000-4000-8000-000000000001" {
		t.Fatalf("volumes %+v, warnings %v", l.Volumes, l.Warnings)
	}
}

// A PV whose metadata is damaged costs its LVs, with a warning, not the
// rest of the disk.
func TestCorruptPVIsAWarning(t *testing.T) {
	path := testimage.Copy(t, "disk-rhel-lvm")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("{{{"), 97*raw.MiB+4096+600); err != nil { // inside the VG's metadata text
		t.Fatal(err)
	}
	l, err := List(open(t, path))
	if err != nil {
		t.Fatal(err)
	}
	v := byName(l)
	if len(l.Warnings) != 1 || !strings.Contains(l.Warnings[0], "p3") || v["p2"].FS.Type != "xfs" || len(l.VGs) != 0 || len(l.Volumes) != 3 {
		t.Fatalf("volumes %+v, warnings %q", l.Volumes, l.Warnings)
	}
}

// A disk image cut short inside the PV: the partitions before it are
// still listed, and each LV that needs the missing bytes is warned about.
func TestTruncatedDisk(t *testing.T) {
	path := testimage.Copy(t, "disk-rhel-lvm")
	if err := os.Truncate(path, 297*raw.MiB); err != nil { // 200 MiB into the PV
		t.Fatal(err)
	}
	l, err := List(open(t, path))
	if err != nil {
		t.Fatal(err)
	}
	v := byName(l)
	if v["p1"].FS.Type != "vfat" || v["p2"].FS.Type != "xfs" || v["p3"].FS.Type != "LVM2_member" || len(l.VGs) != 1 {
		t.Fatalf("volumes %+v", l.Volumes)
	}
	var truncated int
	for _, w := range l.Warnings {
		if strings.Contains(w, "rhel/") && strings.Contains(w, "truncated") {
			truncated++
		}
	}
	if truncated != 2 || len(l.Volumes) != 3 {
		t.Fatalf("want both LVs warned about, got volumes %d, warnings %q", len(l.Volumes), l.Warnings)
	}
}

// badSector is a disk whose reads fail at one offset, as a damaged image
// or an unreadable cluster would.
type badSector struct {
	raw.Disk
	at int64
}

var errBadSector = errors.New("bad sector")

func (b badSector) ReadAt(p []byte, off int64) (int, error) {
	if off <= b.at && b.at < off+int64(len(p)) {
		return 0, errBadSector
	}
	return b.Disk.ReadAt(p, off)
}

// A volume that cannot be read is listed untyped, with a warning, and the
// rest of the disk is still read.
func TestUnreadableVolume(t *testing.T) {
	d := badSector{open(t, testimage.Path(t, "disk-rhel-lvm")), 33 * raw.MiB} // p2's first sector
	l, err := List(d)
	if err != nil {
		t.Fatal(err)
	}
	v := byName(l)
	if v["p2"].FS.Type != "" || v["rhel/root"].FS.Type != "xfs" || len(l.Warnings) != 1 || !strings.Contains(l.Warnings[0], "p2") || !strings.Contains(l.Warnings[0], "bad sector") {
		t.Fatalf("volumes %+v, warnings %q", l.Volumes, l.Warnings)
	}
}

func TestLVsThatAreNotOneByteRangeHaveNoPlaceOnDisk(t *testing.T) {
	linear := func(start int64) lvm.Segment {
		return lvm.Segment{StartExtent: start, ExtentCount: 4, Type: "striped", Stripes: []lvm.Stripe{{PV: "pv0", StartExtent: start}}}
	}
	for name, c := range map[string]struct {
		segs []lvm.Segment
		want string
	}{
		"two segments": {[]lvm.Segment{linear(0), linear(4)}, "has 2 segments"},
		"striped": {[]lvm.Segment{{ExtentCount: 4, Type: "striped", StripeSize: 65536,
			Stripes: []lvm.Stripe{{PV: "pv0"}, {PV: "pv1"}}}}, "is striped over 2 stripes"},
		"on another disk": {[]lvm.Segment{linear(0)}, "not a partition of this disk"},
	} {
		vg := &lvm.VG{Name: "vg", ExtentSize: 4 << 20, PVs: []lvm.PVInfo{{Name: "pv0", ID: "elsewhere"}}, LVs: []lvm.LV{{Name: "root", Segments: c.segs}}}
		_, err := (&Layout{VGs: []*lvm.VG{vg}}).OnDisk(Volume{Name: "vg/root", VG: "vg", LV: "root"})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A linear LV of one segment is one run of the disk: its ext4 superblock
// is where OnDisk says the LV starts.
func TestLinearLVOnDisk(t *testing.T) {
	d := open(t, testimage.Path(t, "disk-debian-lvm"))
	l, err := List(d)
	if err != nil {
		t.Fatal(err)
	}
	root := byName(l)["vg0/root"]
	off, err := l.OnDisk(root)
	if err != nil || off <= raw.MiB {
		t.Fatalf("vg0/root on disk at %d: %v", off, err)
	}
	magic := make([]byte, 2)
	if _, err := d.ReadAt(magic, off+1024+56); err != nil || magic[0] != 0x53 || magic[1] != 0xef {
		t.Fatalf("no ext4 superblock at %d: % x %v", off, magic, err)
	}
}

package lvm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/raw/probe"
)

const rootUUID = "11111111-2222-3333-4444-555555555555"

// The test PV, built once per test process: a 20 MiB ext4 "root" LV and an
// 8 MiB swap LV, written by the lvmgen generator (not by this package).
var testPV struct {
	once sync.Once
	img  []byte
	err  error
}

// pvImage returns the test PV, shared between tests: copy before changing it.
func pvImage(t testing.TB) []byte {
	t.Helper()
	testimage.RequireTools(t, "mkfs.ext4", "mkswap", "go")
	repo := testimage.RepoRoot(t)
	testPV.once.Do(func() { testPV.img, testPV.err = buildPV(repo) })
	if testPV.err != nil {
		t.Fatal(testPV.err)
	}
	return testPV.img
}

func buildPV(repo string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "lvm-test-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	root, swap, pv := filepath.Join(dir, "root"), filepath.Join(dir, "swap"), filepath.Join(dir, "pv")
	for _, f := range []struct {
		path string
		size int64
	}{{root, 20 << 20}, {swap, 8 << 20}} {
		if err := os.WriteFile(f.path, nil, 0o644); err != nil {
			return nil, err
		}
		if err := os.Truncate(f.path, f.size); err != nil {
			return nil, err
		}
	}
	for _, args := range [][]string{
		{"mkfs.ext4", "-q", "-F", "-U", rootUUID, root},
		{"mkswap", "-q", swap},
		{"go", "run", "./testdata/images/lvmgen", "-out", pv, "-size", "32M", "-vg", "rhel", "-lv", "root=" + root, "-lv", "swap=" + swap},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: %v\n%s", args[0], err, out)
		}
	}
	return os.ReadFile(pv)
}

func pvBytes(b []byte) *io.SectionReader {
	return io.NewSectionReader(bytes.NewReader(b), 0, int64(len(b)))
}

func TestReadPVAndOpenLVs(t *testing.T) {
	img := pvImage(t)
	pv, err := ReadPV(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	vg := pv.VG
	if vg == nil || vg.Name != "rhel" || vg.SeqNo != 3 || vg.ExtentSize != 4<<20 || len(vg.LVs) != 2 || len(vg.PVs) != 1 {
		t.Fatalf("VG = %+v", vg)
	}
	if vg.PVs[0].ID != pv.UUID {
		t.Fatalf("the metadata's PV ID %s differs from the label's %s", vg.PVs[0].ID, pv.UUID)
	}
	pvs := map[string]*io.SectionReader{pv.UUID: pvBytes(img)}
	r, size, err := vg.Open("root", pvs)
	if err != nil {
		t.Fatal(err)
	}
	if size != 20<<20 {
		t.Fatalf("root LV is %d bytes", size)
	}
	if res, _ := probe.Probe(r, size); res.Type != "ext4" || res.UUID != rootUUID {
		t.Fatalf("root LV probes as %+v", res)
	}
	r, size, err = vg.Open("swap", pvs)
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := probe.Probe(r, size); res.Type != "swap" {
		t.Fatalf("swap LV probes as %+v", res)
	}
	if _, _, err := vg.Open("home", pvs); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing LV: %v", err)
	}
	if _, _, err := vg.Open("root", map[string]*io.SectionReader{}); err == nil || !strings.Contains(err.Error(), "spans several disks") {
		t.Fatalf("LV on a PV that is not here: %v", err)
	}
	// The swap LV's extents start past 21 MiB: a PV cut at 16 MiB holds
	// the root LV's superblock but not the swap LV.
	cut := map[string]*io.SectionReader{pv.UUID: pvBytes(img[:16<<20])}
	if _, _, err := vg.Open("swap", cut); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("LV past the end of a truncated PV: %v", err)
	}
}

// LVM's own pvck reads the same VG from the same bytes.
func TestPvckAgrees(t *testing.T) {
	testimage.RequireTools(t, "pvck")
	img := pvImage(t)
	path := filepath.Join(t.TempDir(), "pv")
	os.WriteFile(path, img, 0o644)
	out, _ := exec.Command("pvck", "--dump", "metadata", path).CombinedOutput()
	if !strings.Contains(string(out), "vgname rhel seqno 3") || strings.Contains(string(out), "CHECK") {
		t.Fatalf("pvck:\n%s", out)
	}
}

func TestCorruptionIsCaught(t *testing.T) {
	img := pvImage(t)
	for name, off := range map[string]int{
		"label CRC":      512 + 100, // inside the PV header the label CRC covers
		"mda header CRC": 4096 + 30,
		"metadata text":  4096 + 512 + 40,
	} {
		c := append([]byte{}, img...)
		c[off] ^= 0x55
		if _, err := ReadPV(bytes.NewReader(c), int64(len(c))); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
	if _, err := ReadPV(bytes.NewReader(make([]byte, 8192)), 8192); !errors.Is(err, ErrNoLabel) {
		t.Errorf("blank device: %v", err)
	}
}

// Metadata that runs past the end of its area continues after the header.
func TestMetadataWrapsAround(t *testing.T) {
	text := []byte("vg0 {\nid = \"x\"\nseqno = 9\nextent_size = 8192\n}\n")
	const areaSize = 2048
	dev := make([]byte, 8192)
	start := int64(areaSize - 20) // leaves 20 bytes before the end
	copy(dev[4096+start:], text[:20])
	copy(dev[4096+512:], text[20:])
	mda := dev[4096:]
	copy(mda[4:], mdaMagic)
	le := binary.LittleEndian
	le.PutUint64(mda[24:], 4096)
	le.PutUint64(mda[32:], areaSize)
	le.PutUint64(mda[40:], uint64(start))
	le.PutUint64(mda[48:], uint64(len(text)))
	le.PutUint32(mda[56:], crc(text))
	le.PutUint32(mda[0:], crc(mda[4:512]))
	got, err := readMetadata(bytes.NewReader(dev), int64(len(dev)), locn{4096, areaSize})
	if err != nil || !bytes.Equal(got, text) {
		t.Fatalf("wrapped metadata = %q, %v", got, err)
	}
}

const stripedVG = `s { id = "v" seqno = 1 extent_size = 8
physical_volumes { pv0 { id = "A" pe_start = 0 pe_count = 4 } pv1 { id = "B" pe_start = 0 pe_count = 4 } }
logical_volumes { data { segment1 { start_extent = 0 extent_count = 4 type = "striped" stripe_count = 2 stripe_size = 2
stripes = [ "pv0", 0, "pv1", 0 ] } } } }`

func TestStripedLV(t *testing.T) {
	vg, err := ParseVG([]byte(stripedVG))
	if err != nil {
		t.Fatal(err)
	}
	// Extents are 4 KiB, stripes 1 KiB: the LV alternates A and B per KiB.
	a, b := bytes.Repeat([]byte{'A'}, 16<<10), bytes.Repeat([]byte{'B'}, 16<<10)
	r, size, err := vg.Open("data", map[string]*io.SectionReader{"A": pvBytes(a), "B": pvBytes(b)})
	if err != nil || size != 16<<10 {
		t.Fatalf("open: %v, size %d", err, size)
	}
	buf := make([]byte, 4096)
	r.ReadAt(buf, 512)
	if string(buf[0:512]) != strings.Repeat("A", 512) || string(buf[512:1536]) != strings.Repeat("B", 1024) || buf[1536] != 'A' {
		t.Fatal("striping maps the wrong PV")
	}
}

func TestParseRejectsHostileText(t *testing.T) {
	deep := strings.Repeat("a {", 100) + strings.Repeat("}", 100)
	for name, text := range map[string]string{
		"deep":        deep,
		"unbalanced":  "vg { id = \"x\"",
		"two VGs":     "a { seqno = 1 extent_size = 8 } b { seqno = 1 extent_size = 8 }",
		"bad extents": `vg { seqno = 1 extent_size = 8 logical_volumes { l { segment1 { start_extent = 0 extent_count = -5 type = "striped" } } } }`,
		"no seqno":    "vg { extent_size = 8 }",
		"twice":       "vg { seqno = 1 extent_size = 8 logical_volumes { l { } l { } } }",
	} {
		if _, err := ParseVG([]byte(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Metadata that parses but maps an LV where no PV has it is refused when
// the LV is opened.
func TestOpenRejectsBadMappings(t *testing.T) {
	vg := func(seg string) string {
		return `v { seqno = 1 extent_size = 8 physical_volumes { pv0 { id = "A" pe_start = 0 pe_count = 4 } }
logical_volumes { l { segment1 { start_extent = 0 type = "striped" ` + seg + ` } } } }`
	}
	pvs := map[string]*io.SectionReader{"A": pvBytes(make([]byte, 16<<10))}
	for name, seg := range map[string]string{
		"past the PV":      `extent_count = 3 stripes = [ "pv0", 2 ]`,
		"overflowing":      `extent_count = 3 stripes = [ "pv0", 9223372036854775807 ]`,
		"unknown PV":       `extent_count = 1 stripes = [ "pv9", 0 ]`,
		"uneven stripes":   `extent_count = 3 stripe_size = 2 stripes = [ "pv0", 0, "pv0", 2 ]`,
		"no stripe size":   `extent_count = 2 stripes = [ "pv0", 0, "pv0", 2 ]`,
		"no stripes":       `extent_count = 1`,
		"thin, not linear": `extent_count = 1 stripes = [ "pv0", 0 ] } segment2 { start_extent = 1 extent_count = 1 type = "thin"`,
	} {
		v, err := ParseVG([]byte(vg(seg)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, _, err := v.Open("l", pvs); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

// A metadata area LVM was told to ignore is skipped, not parsed.
func TestIgnoredMetadataArea(t *testing.T) {
	img := compactPV(pvImage(t), nil)
	mda := img[compactMDA : compactMDA+512]
	binary.LittleEndian.PutUint32(mda[40+20:], rawLocnIgnored)
	binary.LittleEndian.PutUint32(mda[0:], crc(mda[4:]))
	pv, err := ReadPV(bytes.NewReader(img), int64(len(img)))
	if err != nil || pv.VG != nil {
		t.Fatalf("ignored area: VG %+v, %v", pv, err)
	}
}

func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte("vg0 {\nid = \"x\"\nseqno = 1\nextent_size = 8192\nphysical_volumes { pv0 { id = \"a\" pe_start = 2048 pe_count = 10 } }\nlogical_volumes { root { segment1 { start_extent = 0 extent_count = 5 type = \"striped\" stripe_count = 1 stripes = [ \"pv0\", 0 ] } } }\n}\n"))
	f.Add([]byte(stripedVG))
	f.Fuzz(func(t *testing.T, b []byte) {
		vg, err := ParseVG(b)
		if err != nil {
			return
		}
		pvs := map[string]*io.SectionReader{}
		for _, p := range vg.PVs {
			pvs[p.ID] = pvBytes(make([]byte, 1<<16))
		}
		for _, lv := range vg.LVs {
			if r, size, err := vg.Open(lv.Name, pvs); err == nil {
				readEnds(r, size)
			}
		}
	})
}

// readEnds reads both ends of an LV, which must not panic whatever the
// metadata said.
func readEnds(r io.ReaderAt, size int64) {
	buf := make([]byte, 4096)
	r.ReadAt(buf, 0)
	r.ReadAt(buf, max(0, size-1000))
}

// compactMDA is where compactPV puts the metadata area.
const compactMDA = 512

// compactPV rewrites a PV as its label (moved to sector 0), its metadata
// area right after, shrunk to hold just the text, and no data: a fuzz seed
// small enough for the fuzzer's minimizer. A nil text keeps the PV's own.
func compactPV(img, text []byte) []byte {
	le := binary.LittleEndian
	if text == nil {
		text = img[4096+512:][:le.Uint64(img[4096+48:])]
	}
	b := make([]byte, compactMDA+512+len(text))
	label, mda := b[:512], b[compactMDA:compactMDA+512]
	copy(label, img[512:1024])
	copy(mda, img[4096:4608])
	copy(b[compactMDA+512:], text)
	le.PutUint64(label[8:], 0)              // the label's own sector
	le.PutUint64(label[32+72:], compactMDA) // the metadata area's place and size
	le.PutUint64(label[32+80:], uint64(len(b)-compactMDA))
	le.PutUint64(mda[24:], compactMDA)
	le.PutUint64(mda[32:], uint64(len(b)-compactMDA))
	le.PutUint64(mda[48:], uint64(len(text)))
	fixCRCs(b)
	return b
}

// fixCRCs recomputes the checksums of a compact PV (whatever its fields
// now say), so the fuzzer can explore past them.
func fixCRCs(b []byte) {
	if len(b) < compactMDA+512 {
		return
	}
	le := binary.LittleEndian
	label, mda := b[:512], b[compactMDA:compactMDA+512]
	if off, n := le.Uint64(mda[40:]), le.Uint64(mda[48:]); off < uint64(len(b)-compactMDA) && n <= uint64(len(b)-compactMDA)-off {
		le.PutUint32(mda[56:], crc(b[compactMDA+off:][:n]))
	}
	le.PutUint32(mda[0:], crc(mda[4:]))
	le.PutUint32(label[16:], crc(label[20:]))
}

func FuzzReadPV(f *testing.F) {
	img := pvImage(f)
	pv, err := ReadPV(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		f.Fatal(err)
	}
	// A VG whose one-sector extents lie inside the seed itself, so that
	// opened LVs read real bytes.
	small := fmt.Sprintf(`vg { id = "v" seqno = 1 extent_size = 1
physical_volumes { pv0 { id = "%s" pe_start = 0 pe_count = 3 } }
logical_volumes { lv { segment1 { start_extent = 0 extent_count = 2 type = "striped" stripe_count = 1 stripes = [ "pv0", 1 ] } } } }`, pv.UUID)
	for _, seed := range [][]byte{compactPV(img, nil), compactPV(img, []byte(small))} {
		if pv, err := ReadPV(bytes.NewReader(seed), int64(len(seed))); err != nil || pv.VG == nil {
			f.Fatalf("a compact seed does not read: %v", err)
		}
		f.Add(false, seed)
		f.Add(true, seed)
	}
	f.Fuzz(func(t *testing.T, fix bool, b []byte) {
		if fix {
			fixCRCs(b)
		}
		pv, err := ReadPV(bytes.NewReader(b), int64(len(b)))
		if err != nil || pv.VG == nil {
			return
		}
		for _, lv := range pv.VG.LVs {
			if r, size, err := pv.VG.Open(lv.Name, map[string]*io.SectionReader{pv.UUID: pvBytes(b)}); err == nil {
				readEnds(r, size)
			}
		}
	})
}

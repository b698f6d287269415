package vhd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

func TestFooterRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	f, err := NewFixedFooter(30<<30, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != FooterSize || string(b[:8]) != "conectix" || string(b[28:32]) != "win " || string(b[36:40]) != "Wi2k" {
		t.Fatalf("encoded footer head: %q", b[:40])
	}
	if got := binary.BigEndian.Uint64(b[16:]); got != 0xFFFFFFFFFFFFFFFF {
		t.Fatalf("data offset %#x", got)
	}
	g, err := ParseFooter(b)
	if err != nil {
		t.Fatal(err)
	}
	if *g != *f {
		t.Fatalf("round trip:\n got %+v\nwant %+v", g, f)
	}
	if errs := g.Validate(); len(errs) != 0 {
		t.Fatalf("a fresh footer is invalid: %v", errs)
	}
	if g.QemuSize() != 30<<30 || !g.Timestamp.Equal(now) {
		t.Fatalf("QemuSize %d, timestamp %v", g.QemuSize(), g.Timestamp)
	}
	f2, _ := NewFixedFooter(30<<30, now)
	if f2.UniqueID == f.UniqueID {
		t.Fatal("two footers share a unique ID")
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	f, _ := NewFixedFooter(20<<20, time.Now())
	b, _ := f.MarshalBinary()
	b[11] = 0                               // features without the reserved bit
	binary.BigEndian.PutUint32(b[12:], 0x2) // version
	binary.BigEndian.PutUint64(b[16:], 512) // data offset of a dynamic disk
	binary.BigEndian.PutUint32(b[60:], 9)   // disk type
	g, err := ParseFooter(b)                // checksum now stale too
	if err != nil {
		t.Fatal(err)
	}
	if errs := g.Validate(); len(errs) != 4 {
		t.Fatalf("want 4 problems (checksum, features, version, disk type), got %d: %v", len(errs), errs)
	}
	if _, err := ParseFooter(make([]byte, 512)); !errors.Is(err, ErrNoCookie) {
		t.Fatalf("zero footer: %v", err)
	}
	if _, err := ParseFooter(b[:100]); !errors.Is(err, ErrShort) {
		t.Fatalf("short footer: %v", err)
	}
	if _, err := NewFixedFooter(1000, time.Now()); !errors.Is(err, ErrSize) {
		t.Fatalf("size not a multiple of 512: %v", err)
	}
}

// For footers qemu-img writes (creator "qemu", geometry rounded up so the
// disk grows to C*H*S), QemuSize predicts exactly what qemu-img reports.
// qemu's geometry is its own (rounded up); ours is the specification's.
func TestCHSAgainstQemu(t *testing.T) {
	testimage.RequireTools(t, "qemu-img")
	dir := t.TempDir()
	for _, size := range []int64{20 << 20, 100 << 20, 1 << 30, 31<<30 + 3<<20, 127 << 30, 200 << 30} {
		path := filepath.Join(dir, "q.vhd")
		os.Remove(path)
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=dynamic", path, itoa(size)).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img create: %v %s", err, out)
		}
		fh, _ := os.Open(path)
		st, _ := fh.Stat()
		f, err := ReadFooter(fh, st.Size())
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		if errs := f.Validate(); len(errs) != 0 {
			t.Errorf("size %d: qemu's footer invalid: %v", size, errs)
		}
		var info struct {
			VirtualSize int64 `json:"virtual-size"`
		}
		out, _ := exec.Command("qemu-img", "info", "--output", "json", path).Output()
		if err := jsonUnmarshal(out, &info); err != nil || info.VirtualSize != f.QemuSize() {
			t.Errorf("size %d: qemu-img says %d, QemuSize %d (%v)", size, info.VirtualSize, f.QemuSize(), err)
		}
	}
}

// Values worked by hand from the specification's algorithm.
func TestCHSKnownValues(t *testing.T) {
	for size, want := range map[int64]Geometry{
		20 << 20:  {602, 4, 17},     // 40960 sectors / 17 = 2409 -> 4 heads
		100 << 20: {1003, 12, 17},   // 204800 / 17 = 12047 -> 12 heads
		1 << 30:   {2080, 16, 63},   // too many cylinders for 17 and 31 sectors
		1 << 40:   {65535, 16, 255}, // clamped to the maximum
	} {
		if got := CHS(size); got != want {
			t.Errorf("CHS(%d) = %+v, want %+v", size, got, want)
		}
	}
}

// patterned returns a raw disk image with data blocks, holes, and partial
// sectors, and its path.
func patterned(t *testing.T, size int64) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	for _, off := range []int64{0, 3<<20 + 512, 5<<20 - 1000, size - 700} {
		for i := int64(0); i < 70000 && off+i < size; i++ {
			data[off+i] = byte(i*7 + off>>9)
		}
	}
	path := filepath.Join(t.TempDir(), "src.raw")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func TestDynamicReadsWhatQemuWrote(t *testing.T) {
	testimage.RequireTools(t, "qemu-img")
	const size = 9<<20 + 3*512
	src, want := patterned(t, size)
	dyn := filepath.Join(t.TempDir(), "d.vhd")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", src, dyn).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	fh, _ := os.Open(dyn)
	defer fh.Close()
	st, _ := fh.Stat()
	d, err := OpenDynamic(fh, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if d.Size() != size {
		t.Fatalf("size %d, want %d", d.Size(), size)
	}
	got := make([]byte, size)
	if n, err := d.ReadAt(got, 0); n != size || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("dynamic VHD bytes differ from the raw source")
	}
	// Unaligned reads across block and sector boundaries.
	for _, off := range []int64{511, 2<<20 - 3, 5<<20 - 1001} {
		buf := make([]byte, 5000)
		d.ReadAt(buf, off)
		if !bytes.Equal(buf, want[off:off+5000]) {
			t.Fatalf("unaligned read at %d differs", off)
		}
	}
	exts, _ := d.Extents()
	covered := func(i int64) bool {
		for _, e := range exts {
			if i >= e.Offset && i < e.End() {
				return true
			}
		}
		return false
	}
	var total int64
	for _, e := range exts {
		total += e.Length
	}
	for i, b := range want {
		if b != 0 && !covered(int64(i)) {
			t.Fatalf("non-zero byte at %d outside every extent %v", i, exts)
		}
	}
	if total >= size {
		t.Fatalf("extents cover the whole disk (%d bytes): unallocated blocks not skipped", total)
	}
}

// hostile builds a dynamic VHD header by hand.
func hostile(diskType DiskType, size int64, entries, blockSize uint32, batOffset uint64) []byte {
	f, _ := NewFixedFooter(size, time.Now())
	f.DiskType, f.DataOffset = diskType, 512
	fb, _ := f.MarshalBinary()
	h := make([]byte, headerSize)
	copy(h, headerCookie)
	binary.BigEndian.PutUint64(h[8:], 0xFFFFFFFFFFFFFFFF)
	binary.BigEndian.PutUint64(h[16:], batOffset)
	binary.BigEndian.PutUint32(h[24:], headerVersion)
	binary.BigEndian.PutUint32(h[28:], entries)
	binary.BigEndian.PutUint32(h[32:], blockSize)
	name := []byte{0, 'p', 0, 'a', 0, 'r', 0, 'e', 0, 'n', 0, 't', 0, '.', 0, 'v', 0, 'h', 0, 'd'}
	copy(h[64:], name)
	binary.BigEndian.PutUint32(h[36:], checksum(h, 36))
	img := append(append(append([]byte{}, fb...), h...), bytes.Repeat([]byte{0xff}, 4096)...)
	return append(img, fb...)
}

func TestDynamicRefusesBadInput(t *testing.T) {
	cases := map[string]struct {
		img  []byte
		want error
	}{
		"differencing":         {hostile(DiskDifferencing, 1<<20, 1, 2<<20, 1536), ErrDifferencing},
		"10 TB in a tiny file": {hostile(DiskDynamic, 10<<40, 5<<20, 2<<20, 1536), ErrBAT},
		"bat past the end":     {hostile(DiskDynamic, 1<<20, 1, 2<<20, 1<<30), ErrBAT},
		"block size 3000":      {hostile(DiskDynamic, 1<<20, 1, 3000, 1536), ErrHeader},
		"block past the end": {func() []byte {
			b := hostile(DiskDynamic, 1<<20, 1, 2<<20, 1536)
			binary.BigEndian.PutUint32(b[1536:], 7)
			return b
		}(), ErrBAT},
		"too short": {make([]byte, 600), ErrHeader},
	}
	for name, c := range cases {
		_, err := OpenDynamic(bytes.NewReader(c.img), int64(len(c.img)))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
	}
	_, err := OpenDynamic(bytes.NewReader(cases["differencing"].img), int64(len(cases["differencing"].img)))
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("parent.vhd")) {
		t.Errorf("differencing error does not name the parent: %v", err)
	}
}

package vhd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/raw"
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
	be := binary.BigEndian
	if len(b) != FooterSize || string(b[:8]) != "conectix" || string(b[28:32]) != "win " || string(b[36:40]) != "Wi2k" {
		t.Fatalf("encoded footer head: %q", b[:40])
	}
	if be.Uint32(b[8:]) != 2 || be.Uint32(b[12:]) != 0x00010000 || be.Uint64(b[16:]) != 0xFFFFFFFFFFFFFFFF || be.Uint32(b[60:]) != 2 {
		t.Fatalf("features, version, data offset or disk type wrong: % x", b[8:24])
	}
	if be.Uint64(b[40:]) != 30<<30 || be.Uint64(b[48:]) != 30<<30 {
		t.Fatalf("sizes: % x", b[40:56])
	}
	if got := be.Uint32(b[24:]); got != uint32(now.Sub(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))/time.Second) {
		t.Fatalf("timestamp %d", got)
	}
	if b[68+6]>>4 != 4 || b[68+8]>>6 != 2 {
		t.Fatalf("unique ID %x is not a version 4 UUID", b[68:84])
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

func TestChecksum(t *testing.T) {
	// Only the cookie is non-zero: the sum is that of "conectix", 861.
	b := make([]byte, FooterSize)
	copy(b, "conectix")
	if got := checksum(b, 64); got != 0xFFFFFCA2 {
		t.Fatalf("checksum %08x, want fffffca2", got)
	}
	// The checksum field itself does not count.
	binary.BigEndian.PutUint32(b[64:], 0x12345678)
	if got := checksum(b, 64); got != 0xFFFFFCA2 {
		t.Fatalf("checksum counts its own field: %08x", got)
	}

	f, _ := NewFixedFooter(20<<20, time.Now())
	good, _ := f.MarshalBinary()
	bad := bytes.Clone(good)
	bad[100]++ // a reserved byte: nothing else changes
	g, err := ParseFooter(bad)
	if err != nil {
		t.Fatalf("a bad checksum must still decode (info shows it): %v", err)
	}
	errs := g.Validate()
	if len(errs) != 1 || !errors.Is(errs[0], ErrChecksum) {
		t.Fatalf("Validate = %v, want one ErrChecksum", errs)
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	f, _ := NewFixedFooter(20<<20, time.Now())
	b, _ := f.MarshalBinary()
	b[11] = 0                               // features without the reserved bit
	binary.BigEndian.PutUint32(b[12:], 0x2) // version
	binary.BigEndian.PutUint64(b[16:], 512) // data offset of a dynamic disk
	binary.BigEndian.PutUint64(b[48:], 700) // current size not whole sectors
	g, err := ParseFooter(b)                // checksum now stale too
	if err != nil {
		t.Fatal(err)
	}
	errs := g.Validate()
	var invalid, sum int
	for _, err := range errs {
		switch {
		case errors.Is(err, ErrInvalid):
			invalid++
		case errors.Is(err, ErrChecksum):
			sum++
		}
	}
	if len(errs) != 5 || invalid != 4 || sum != 1 {
		t.Fatalf("want checksum, features, version, data offset, size; got %d: %v", len(errs), errs)
	}
	binary.BigEndian.PutUint32(b[60:], 9) // disk type
	g, _ = ParseFooter(b)
	if errs := g.Validate(); !strings.Contains(errs[len(errs)-2].Error(), "disk type is 9") {
		t.Fatalf("disk type 9 not named: %v", errs)
	}
	if _, err := ParseFooter(make([]byte, 512)); !errors.Is(err, ErrNoCookie) {
		t.Fatalf("zero footer: %v", err)
	}
	if _, err := ParseFooter(b[:100]); !errors.Is(err, ErrShort) {
		t.Fatalf("short footer: %v", err)
	}
	if _, err := ReadFooter(bytes.NewReader(b[:300]), 300); !errors.Is(err, ErrShort) {
		t.Fatalf("300-byte file: %v", err)
	}
}

func TestFooterSizes(t *testing.T) {
	for _, size := range []int64{0, -512, 1<<20 - 1, 1<<20 + 1, 1000} {
		if _, err := NewFixedFooter(size, time.Now()); !errors.Is(err, ErrSize) {
			t.Errorf("NewFixedFooter(%d) = %v, want ErrSize", size, err)
		}
	}
	for _, size := range []int64{512, 1<<20 - 512, 1 << 20, 1<<20 + 512, 20 << 20} {
		f, err := NewFixedFooter(size, time.Now())
		if err != nil || f.CurrentSize != size || f.OriginalSize != size || f.Geometry != CHS(size) {
			t.Errorf("NewFixedFooter(%d) = %+v, %v", size, f, err)
		}
	}
	// Timestamps outside the field's range are clamped, not wrapped.
	f, _ := NewFixedFooter(1<<20, time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC))
	b, _ := f.MarshalBinary()
	if ts := binary.BigEndian.Uint32(b[24:]); ts != 0 {
		t.Fatalf("a 1990 timestamp encodes as %d", ts)
	}
}

// Values worked by hand from the specification's algorithm.
func TestCHSKnownValues(t *testing.T) {
	for size, want := range map[int64]Geometry{
		1 << 20:     {30, 4, 17},      // 2048 sectors / 17 = 120 -> 4 heads (the minimum)
		20 << 20:    {602, 4, 17},     // 40960 / 17 = 2409 -> 3 heads, raised to 4
		100 << 20:   {1003, 12, 17},   // 204800 / 17 = 12047 -> 12 heads
		200 << 20:   {825, 16, 31},    // 409600 / 17 = 24094 -> 24 heads > 16: 31 sectors
		500 << 20:   {1015, 16, 63},   // 1024000 / 31 = 33032 cylinders*heads: too many for 31
		1 << 30:     {2080, 16, 63},   // too many cylinders for 17 and 31 sectors
		127 << 30:   {65278, 16, 255}, // at least 65535*16*63 sectors: 255 per track
		1 << 40:     {65535, 16, 255}, // clamped to the maximum
		1<<20 - 512: {30, 4, 17},
	} {
		if got := CHS(size); got != want {
			t.Errorf("CHS(%d) = %+v, want %+v", size, got, want)
		}
	}
}

// vhdprep's footers read back in qemu-img with exactly the size written,
// including sizes whose geometry addresses less, and up to qemu's own limit
// of 2040 GiB.
func TestOurVHDsReadBackInQemu(t *testing.T) {
	testimage.RequireTools(t, "qemu-img")
	for _, size := range []int64{1<<20 - 512, 1 << 20, 1<<20 + 512, 20 << 20, 100 << 20, 1 << 30, 127 << 30, 200 << 30, 2040 << 30} {
		f, err := NewFixedFooter(size, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if got := qemuSize(t, writeFixed(t, f)); got != size || f.QemuSize() != size {
			t.Errorf("size %d: qemu-img reads %d, QemuSize %d", size, got, f.QemuSize())
		}
	}
	// The creator is what makes it so: the same 20 MiB footer from "vpc "
	// reads as its geometry, which QemuSize predicts.
	f, _ := NewFixedFooter(20<<20, time.Now())
	if f.Geometry.Size() == 20<<20 {
		t.Fatal("20 MiB no longer a size whose CHS rounding differs")
	}
	f.CreatorApp = "vpc "
	if got := qemuSize(t, writeFixed(t, f)); got != f.Geometry.Size() || f.QemuSize() != got {
		t.Errorf("creator vpc: qemu-img reads %d, geometry %d, QemuSize %d", got, f.Geometry.Size(), f.QemuSize())
	}
	// qemu takes the current size when C*H*S is the maximum geometry's,
	// whatever the fields.
	f.Geometry = Geometry{65535, 255, 16}
	if got := qemuSize(t, writeFixed(t, f)); got != 20<<20 || f.QemuSize() != got {
		t.Errorf("maximum C*H*S: qemu-img reads %d, QemuSize %d", got, f.QemuSize())
	}
}

// VHDs qemu-img writes, fixed and dynamic, with and without force_size:
// vhdprep reads their footers as valid, reports their true size, and
// predicts the size qemu-img derives; without force_size qemu grows the
// disk to its geometry, which is the specification's CHS of that size.
func TestReadsQemuVHDs(t *testing.T) {
	testimage.RequireTools(t, "qemu-img")
	dir := t.TempDir()
	for _, sub := range []string{"fixed", "dynamic"} {
		for _, force := range []string{"off", "on"} {
			for _, size := range []int64{1 << 20, 20 << 20, 100<<20 + 512, 1 << 30, 31<<30 + 3<<20, 200 << 30} {
				path := filepath.Join(dir, sub+force+itoa(size)+".vhd")
				qemuImg(t, "create", "-q", "-f", "vpc", "-o", "subformat="+sub+",force_size="+force, path, itoa(size))
				fh, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				st, _ := fh.Stat()
				f, err := ReadFooter(fh, st.Size())
				if err != nil {
					t.Fatal(err)
				}
				name := sub + " force_size=" + force + " " + itoa(size)
				if errs := f.Validate(); len(errs) != 0 {
					t.Errorf("%s: qemu's footer invalid: %v", name, errs)
				}
				if got := qemuSize(t, path); got != f.QemuSize() {
					t.Errorf("%s: qemu-img reads %d, QemuSize %d", name, got, f.QemuSize())
				}
				switch {
				case force == "on":
					if f.CurrentSize != size || f.Geometry != maxGeometry || f.CreatorApp != "qem2" {
						t.Errorf("%s: size %d, geometry %+v, creator %q", name, f.CurrentSize, f.Geometry, f.CreatorApp)
					}
				case f.Geometry != CHS(f.CurrentSize) || f.CurrentSize < size:
					t.Errorf("%s: size %d, geometry %+v, CHS says %+v", name, f.CurrentSize, f.Geometry, CHS(f.CurrentSize))
				case size < 127<<30 && f.CurrentSize != f.Geometry.Size():
					t.Errorf("%s: size %d is not its geometry's %d", name, f.CurrentSize, f.Geometry.Size())
				}
				if sub == "dynamic" {
					d, err := OpenDynamic(fh, st.Size())
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					exts, _ := d.Extents()
					if d.Size() != f.CurrentSize || len(exts) != 0 {
						t.Errorf("%s: size %d, extents %v of an empty disk", name, d.Size(), exts)
					}
				}
				fh.Close()
				os.Remove(path)
			}
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
	src, data := patterned(t, size)
	for _, force := range []string{"on", "off"} {
		dyn := filepath.Join(t.TempDir(), "d.vhd")
		qemuImg(t, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size="+force, src, dyn)
		fh, _ := os.Open(dyn)
		defer fh.Close()
		st, _ := fh.Stat()
		d, err := OpenDynamic(fh, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		// Without force_size qemu grows the disk to its geometry.
		if d.Size() != qemuSize(t, dyn) || d.Size() < size || (force == "on" && d.Size() != size) {
			t.Fatalf("force_size=%s: size %d, qemu-img says %d", force, d.Size(), qemuSize(t, dyn))
		}
		want := append(bytes.Clone(data), make([]byte, d.Size()-size)...)
		got := make([]byte, d.Size()+100)
		if n, err := d.ReadAt(got, 0); n != int(d.Size()) || err != io.EOF {
			t.Fatalf("ReadAt past the end = %d, %v; want %d, EOF", n, err, d.Size())
		}
		if !bytes.Equal(got[:d.Size()], want) {
			t.Fatal("dynamic VHD bytes differ from the raw source")
		}
		// Unaligned reads across block and sector boundaries.
		for _, off := range []int64{511, 2<<20 - 3, 5<<20 - 1001, size - 5000} {
			buf := make([]byte, 5000)
			if n, err := d.ReadAt(buf, off); n != len(buf) || err != nil {
				t.Fatalf("ReadAt(%d) = %d, %v", off, n, err)
			}
			if !bytes.Equal(buf, want[off:off+5000]) {
				t.Fatalf("unaligned read at %d differs", off)
			}
		}
		exts, _ := d.Extents()
		covered := func(i int64) bool { return inExtents(exts, i) }
		for i, b := range want {
			if b != 0 && !covered(int64(i)) {
				t.Fatalf("non-zero byte at %d outside every extent %v", i, exts)
			}
		}
		// Block 3 (6-8 MiB) holds only zeros: qemu leaves it unallocated.
		if covered(6<<20) || covered(8<<20-1) {
			t.Fatalf("extents %v cover the unallocated block at 6 MiB", exts)
		}
	}
}

// A dynamic VHD built by hand with small blocks, and qemu-img reading it:
// the same bytes, so the layout (bitmap size, BAT units) is understood alike.
func TestDynamicSmallBlocksAgreeWithQemu(t *testing.T) {
	testimage.RequireTools(t, "qemu-img")
	const size, bs = 64 << 10, 4096
	blocks := map[int][]byte{}
	for _, i := range []int{0, 3, 4, 15} {
		blocks[i] = bytes.Repeat([]byte{byte(i + 1), 0xA5}, bs/2)
	}
	im := buildDynamic(DiskDynamic, size, bs, blocks)
	path := filepath.Join(t.TempDir(), "small.vhd")
	os.WriteFile(path, im.img, 0o644)
	out := filepath.Join(t.TempDir(), "small.raw")
	qemuImg(t, "convert", "-f", "vpc", "-O", "raw", path, out)
	want, _ := os.ReadFile(out)

	d, err := OpenDynamic(bytes.NewReader(im.img), int64(len(im.img)))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, size)
	if n, err := d.ReadAt(got, 0); n != size || err != nil {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	if len(want) != size || !bytes.Equal(got, want) {
		t.Fatalf("our bytes differ from qemu-img's (%d bytes)", len(want))
	}
	exts, _ := d.Extents()
	wantExts := []raw.Extent{{Offset: 0, Length: 4096}, {Offset: 12288, Length: 8192}, {Offset: 61440, Length: 4096}}
	if !slices.Equal(exts, wantExts) {
		t.Fatalf("extents %v, want %v", exts, wantExts)
	}
}

// Sectors the bitmap does not mark read as zeros, whatever the file holds
// there; reads past the end stop at the size.
func TestDynamicBitmap(t *testing.T) {
	const size, bs = 16 << 10, 4096
	im := buildDynamic(DiskDynamic, size, bs, map[int][]byte{1: bytes.Repeat([]byte{7}, bs)})
	im.img[im.blockAt[1]] = 0b10100000 // sectors 0 and 2 of block 1 written
	d, err := OpenDynamic(bytes.NewReader(im.img), int64(len(im.img)))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 3*bs)
	if n, err := d.ReadAt(got, 100); n != len(got) || err != nil {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	for i, b := range got {
		off := int64(i) + 100
		want := byte(0)
		if off >= bs && off < 2*bs && ((off-bs)/512 == 0 || (off-bs)/512 == 2) {
			want = 7
		}
		if b != want {
			t.Fatalf("byte %d = %d, want %d", off, b, want)
		}
	}
	if n, err := d.ReadAt(make([]byte, 10), size-4); n != 4 || err != io.EOF {
		t.Fatalf("read across the end = %d, %v", n, err)
	}
	if n, err := d.ReadAt(make([]byte, 10), size); n != 0 || err != io.EOF {
		t.Fatalf("read at the end = %d, %v", n, err)
	}
	if _, err := d.ReadAt(make([]byte, 10), -1); err == nil {
		t.Fatal("negative offset accepted")
	}
}

// hostile is a one-block dynamic image whose header fields a test then
// overwrites: header at 512, BAT at 1536.
func hostile(diskType DiskType, size int64, entries, blockSize uint32, batOffset uint64) []byte {
	img := buildDynamic(diskType, 512, 512, map[int][]byte{0: {1}}).img
	editFooters(img, func(f *Footer) { f.CurrentSize = size })
	h := img[FooterSize : FooterSize+headerSize]
	binary.BigEndian.PutUint64(h[16:], batOffset)
	binary.BigEndian.PutUint32(h[28:], entries)
	binary.BigEndian.PutUint32(h[32:], blockSize)
	binary.BigEndian.PutUint32(h[36:], checksum(h, 36))
	return img
}

func TestDynamicRefusesBadInput(t *testing.T) {
	cases := map[string]struct {
		img  []byte
		want error
	}{
		"differencing":         {hostile(DiskDifferencing, 512, 1, 512, 1536), ErrDifferencing},
		"10 TB in a tiny file": {hostile(DiskDynamic, 10<<40, 5<<20, 2<<20, 1536), ErrBAT},
		"too few entries":      {hostile(DiskDynamic, 10<<20, 4, 2<<20, 1536), ErrBAT},
		"bat past the end":     {hostile(DiskDynamic, 512, 1, 512, 1<<30), ErrBAT},
		"block size 3000":      {hostile(DiskDynamic, 512, 1, 3000, 1536), ErrHeader},
		"block size 1 GiB":     {hostile(DiskDynamic, 512, 1, 1<<30, 1536), ErrHeader},
		"block past the end": {func() []byte {
			b := hostile(DiskDynamic, 1<<20, 1, 2<<20, 1536)
			binary.BigEndian.PutUint32(b[1536:], 7)
			return b
		}(), ErrBAT},
		"header checksum": {func() []byte {
			b := hostile(DiskDynamic, 512, 1, 512, 1536)
			b[FooterSize+200]++
			return b
		}(), ErrHeader},
		"header cookie": {func() []byte {
			b := hostile(DiskDynamic, 512, 1, 512, 1536)
			b[FooterSize] = 'X'
			return b
		}(), ErrHeader},
		"header past the end": {func() []byte {
			b := hostile(DiskDynamic, 512, 1, 512, 1536)
			editFooters(b, func(f *Footer) { f.DataOffset = 1 << 40 })
			return b
		}(), ErrHeader},
		"fixed footer at the start": {func() []byte {
			b := hostile(DiskDynamic, 512, 1, 512, 1536)
			f, _ := NewFixedFooter(512, time.Now())
			fb, _ := f.MarshalBinary()
			copy(b, fb)
			return b
		}(), ErrHeader},
		"too short":   {make([]byte, 600), ErrHeader},
		"no footer":   {make([]byte, 4096), ErrNoCookie},
		"zero blocks": {hostile(DiskDynamic, 512, 0, 512, 1536), ErrBAT},
	}
	for name, c := range cases {
		_, err := OpenDynamic(bytes.NewReader(c.img), int64(len(c.img)))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is not one line: %q", name, err)
		}
	}
	diff := cases["differencing"].img
	_, err := OpenDynamic(bytes.NewReader(diff), int64(len(diff)))
	if err == nil || !strings.Contains(err.Error(), `"parent.vhd"`) || !strings.Contains(err.Error(), "qemu-img convert") {
		t.Errorf("differencing error does not name the parent and the fix: %v", err)
	}
}

// A 10 TB disk claimed by a small file allocates nothing near its claim.
func TestDynamicHugeClaimDoesNotAllocate(t *testing.T) {
	img := hostile(DiskDynamic, 10<<40, 1<<30/4, 2<<20, 1536) // a 1 GiB BAT
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := OpenDynamic(bytes.NewReader(img), int64(len(img)))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrBAT) {
		t.Fatalf("err = %v", err)
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 1<<20 {
		t.Fatalf("opening allocated %d bytes", grown)
	}
}

// A qemu-made dynamic VHD cut short anywhere is an error, never a panic or
// a silent short disk.
func TestDynamicTruncated(t *testing.T) {
	testimage.RequireTools(t, "qemu-img")
	src, _ := patterned(t, 5<<20)
	dyn := filepath.Join(t.TempDir(), "d.vhd")
	qemuImg(t, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", src, dyn)
	full, _ := os.ReadFile(dyn)
	for _, n := range []int{0, 511, 512, 1000, 1536, 2000, 2560, 4096, len(full) / 2, len(full) - 513, len(full) - 512 - 100} {
		cut := full[:n]
		d, err := OpenDynamic(bytes.NewReader(cut), int64(len(cut)))
		if err == nil {
			t.Errorf("%d of %d bytes: opened (size %d)", n, len(full), d.Size())
		}
	}
	// Losing only the trailing footer copy loses nothing the reader needs.
	if _, err := OpenDynamic(bytes.NewReader(full[:len(full)-512]), int64(len(full)-512)); err != nil {
		t.Errorf("without the trailing footer: %v", err)
	}
}

func TestDynamicBATIsReadLazily(t *testing.T) {
	const fileSize = 17 << 30
	head := hostile(DiskDynamic, 2040<<30, ^uint32(0), 512, 1536)
	page := bytes.Repeat([]byte{0xff}, batPageEntries*4) // the first page: no block allocated
	name := filepath.Join(t.TempDir(), "huge-bat.vhd")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(fileSize)
	f.WriteAt(head[:1536], 0)
	f.WriteAt(page, 1536)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d, err := OpenDynamic(f, fileSize)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if _, err := d.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, make([]byte, 4096)) {
		t.Fatalf("reading the first (unallocated) block: %v", err)
	}
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 4<<20 {
		t.Fatalf("opening and one read allocated %d bytes", grown)
	}
	if _, err := d.ReadAt(buf, 1<<40); !errors.Is(err, ErrBAT) || !strings.Contains(err.Error(), "overlaps") {
		t.Fatalf("reading a block whose entry lies in a hole: %v", err)
	}
}

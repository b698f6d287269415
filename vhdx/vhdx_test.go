package vhdx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/disktest"
)

func open(t testing.TB, path string) *Image {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	im, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// Dynamic and fixed images of every block size qemu-img writes read as
// qemu-img reads them, and a dynamic one's extents leave out the blocks
// never written.
func TestReadsWhatQemuWrote(t *testing.T) {
	const size = 9<<20 + 3*512
	dir := t.TempDir()
	src, want := disktest.Source(t, dir, size)
	for _, sub := range []string{"dynamic", "fixed"} {
		for _, bs := range []string{"1M", "2M", "8M", "32M", "256M"} {
			t.Run(sub+"-"+bs, func(t *testing.T) {
				img := filepath.Join(dir, sub+bs+".vhdx")
				disktest.Qemu(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat="+sub+",block_size="+bs, src, img)
				if oracle := disktest.QemuRaw(t, "vhdx", img); !bytes.Equal(oracle, want) {
					t.Fatal("qemu-img itself reads another disk")
				}
				im := open(t, img)
				disktest.AssertSame(t, im, want)
				if im.Info().Type != sub {
					t.Fatalf("type %q, want %q", im.Info().Type, sub)
				}
			})
		}
	}
}

// Images laid out as small as the format allows (disktest.VHDX: the
// metadata and BAT at the first MiBs, the last block cut where the disk
// ends, the empty log's region past the file's end) read as qemu-img reads
// them.
func TestReadsCompactLayout(t *testing.T) {
	dir := t.TempDir()
	_, want := disktest.Source(t, dir, 5<<20+3*512)
	for _, fixed := range []bool{false, true} {
		for _, bs := range []int64{1 << 20, 2 << 20} {
			path := filepath.Join(dir, fmt.Sprintf("c-%v-%d.vhdx", fixed, bs))
			if err := os.WriteFile(path, disktest.VHDX(want, bs, fixed), 0o644); err != nil {
				t.Fatal(err)
			}
			if oracle := disktest.QemuRaw(t, "vhdx", path); !bytes.Equal(oracle, want) {
				t.Fatal("qemu-img reads another disk: the test's writer is wrong")
			}
			disktest.AssertSame(t, open(t, path), want)
		}
	}
}

// compact is a small dynamic image with data in its first block, and
// edit applied to it: the header at at is rewritten with its CRC-32C
// (at 0: none is).
func compact(t testing.TB, at int, edit func(b []byte)) []byte {
	t.Helper()
	data := make([]byte, 3<<20)
	copy(data, "first block")
	copy(data[2<<20:], "third block")
	b := disktest.VHDX(data, 1<<20, false)
	edit(b)
	if at != 0 {
		h := b[at : at+headerCRCLen]
		binary.LittleEndian.PutUint32(h[4:], checksum(h, 4))
	}
	return b
}

// metaItem is the offset in b of a metadata item of a compact image.
func metaItem(b []byte, g [16]byte) int {
	le := binary.LittleEndian
	meta := 0
	for i := range int(le.Uint32(b[regionAt+8:])) {
		if e := b[regionAt+16+32*i:]; [16]byte(e[:16]) == metadataGUID {
			meta = int(le.Uint64(e[16:]))
		}
	}
	for i := range int(le.Uint16(b[meta+10:])) {
		if e := b[meta+32+32*i:]; [16]byte(e[:16]) == g {
			return meta + int(le.Uint32(e[16:]))
		}
	}
	return -1
}

// The current header is the valid one with the higher sequence number: a
// damaged second header leaves the first, a first with a higher sequence
// number is current, and of two identical ones the first is.
func TestHeaderFallback(t *testing.T) {
	le := binary.LittleEndian
	for name, c := range map[string]struct {
		at   int
		edit func(b []byte)
		want int
	}{
		"second current": {0, func([]byte) {}, 2},
		"second damaged": {0, func(b []byte) { b[header2At+100] ^= 1 }, 1},
		"first newer":    {header1At, func(b []byte) { le.PutUint64(b[header1At+8:], 3) }, 1},
		"first damaged":  {0, func(b []byte) { b[header1At] = 'x' }, 2},
		"identical":      {header1At, func(b []byte) { le.PutUint64(b[header1At+8:], 2) }, 1}, // as Disk2VHD writes them
	} {
		t.Run(name, func(t *testing.T) {
			b := compact(t, c.at, c.edit)
			im, err := Open(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if im.Info().CurrentHeader != c.want {
				t.Fatalf("current header %d, want %d", im.Info().CurrentHeader, c.want)
			}
			p := make([]byte, 11)
			if _, err := im.ReadAt(p, 2<<20); err != nil || string(p) != "third block" {
				t.Fatalf("read %q, %v", p, err)
			}
		})
	}
}

// Images that need their log replayed, differencing images and damaged
// ones are refused, each with its reason and what to do.
func TestRefuses(t *testing.T) {
	le := binary.LittleEndian
	for name, c := range map[string]struct {
		at   int
		edit func(b []byte)
		err  error
		want string
	}{
		"log":            {header2At, func(b []byte) { b[header2At+0x30] = 7 }, ErrLog, "qemu-img check -r all"},
		"differencing":   {0, func(b []byte) { b[metaItem(b, fileParamsGUID)+4] |= paramsParent }, ErrDifferencing, "merge it first"},
		"both headers":   {0, func(b []byte) { b[header1At+8]++; b[header2At+8]++ }, ErrCorrupt, "neither header"},
		"same sequence":  {header1At, func(b []byte) { le.PutUint64(b[header1At+8:], 2); b[header1At+32] = 9 }, ErrCorrupt, "same sequence number 2"},
		"header version": {header2At, func(b []byte) { le.PutUint16(b[header2At+0x42:], 2); b[header1At] = 0 }, ErrCorrupt, "neither header"},
		"region CRC":     {0, func(b []byte) { b[regionAt+100] ^= 1 }, ErrCorrupt, "region table"},
		"block size":     {0, func(b []byte) { le.PutUint32(b[metaItem(b, fileParamsGUID):], 3<<20) }, ErrCorrupt, "block size"},
		"sector size":    {0, func(b []byte) { le.PutUint32(b[metaItem(b, logicalSecGUID):], 1024) }, ErrCorrupt, "logical sector size 1024"},
		"no size":        {0, func(b []byte) { le.PutUint64(b[metaItem(b, virtualSizeGUID):], 0) }, ErrCorrupt, "virtual size 0"},
		"partial block":  {0, func(b []byte) { b[2<<20] = blockPartial }, ErrCorrupt, "partially present"},
		"block state":    {0, func(b []byte) { b[2<<20] = 4 }, ErrCorrupt, "unknown state 4"},
		"block in BAT":   {0, func(b []byte) { le.PutUint64(b[2<<20:], 2<<20|blockPresent) }, ErrCorrupt, "overlaps"},
		"not vhdx":       {0, func(b []byte) { b[0] = 'V' }, ErrNotVHDX, "not a VHDX"},
	} {
		t.Run(name, func(t *testing.T) {
			b := compact(t, c.at, c.edit)
			_, err := Open(bytes.NewReader(b), int64(len(b)))
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want %v mentioning %q", err, c.err, c.want)
			}
		})
	}
	b := compact(t, 0, func([]byte) {})
	b = b[:len(b)-4096]
	im, err := Open(bytes.NewReader(b), int64(len(b)))
	if err == nil {
		_, err = im.Extents()
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("a cut image: err = %v", err)
	}
}

package vdi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/disktest"
	"github.com/vhdprep/vhdprep/raw"
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

// Dynamic and fixed images qemu-img writes read as qemu-img reads them,
// and a dynamic one's extents leave out the blocks never written.
func TestReadsWhatQemuWrote(t *testing.T) {
	const size = 9<<20 + 3*512 // a partial last block
	dir := t.TempDir()
	src, want := disktest.Source(t, dir, size)
	for _, tc := range []struct {
		name, static, typ string
	}{
		{"dynamic", "off", "dynamic"},
		{"fixed", "on", "fixed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(dir, tc.name+".vdi")
			disktest.Qemu(t, "convert", "-f", "raw", "-O", "vdi", "-o", "static="+tc.static, src, img)
			if oracle := disktest.QemuRaw(t, "vdi", img); !bytes.Equal(oracle, want) {
				t.Fatal("qemu-img itself reads another disk")
			}
			im := open(t, img)
			disktest.AssertSame(t, im, want)
			if im.Info().Type != tc.typ || im.Info().BlockSize != 1<<20 || im.Info().Blocks != 10 {
				t.Fatalf("info %+v", im.Info())
			}
			exts, _ := im.Extents()
			var data int64
			for _, e := range exts {
				data += e.Length
			}
			if tc.static == "off" && data > 6<<20 {
				t.Fatalf("extents cover %d bytes: unallocated blocks are not holes (%v)", data, exts)
			}
		})
	}
}

// patch returns a copy of a dynamic image with the header or block map
// changed by edit.
func patch(t *testing.T, edit func(b []byte)) []byte {
	t.Helper()
	dir := t.TempDir()
	src, _ := disktest.Source(t, dir, 4<<20)
	img := filepath.Join(dir, "d.vdi")
	disktest.Qemu(t, "convert", "-f", "raw", "-O", "vdi", src, img)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	edit(b)
	return b
}

// A discarded block (0xfffffffe) reads as zeros and is a hole.
func TestDiscardedBlockIsHole(t *testing.T) {
	b := patch(t, func(b []byte) {
		bmap := binary.LittleEndian.Uint32(b[0x154:])
		binary.LittleEndian.PutUint32(b[bmap:], blockDiscarded)
	})
	im, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 4096)
	if _, err := im.ReadAt(p, 0); err != nil || bytes.ContainsFunc(p, func(r rune) bool { return r != 0 }) {
		t.Fatalf("discarded block 0 reads %v, err %v; want zeros", p[:8], err)
	}
	if exts, _ := im.Extents(); len(exts) == 0 || exts[0].Offset == 0 {
		t.Fatalf("extents %v include the discarded block 0", exts)
	}
}

// Damaged and unsupported images are refused, each with its reason.
func TestRefuses(t *testing.T) {
	le := binary.LittleEndian
	for name, c := range map[string]struct {
		edit func(b []byte) []byte
		err  error
		want string
	}{
		"version":      {func(b []byte) []byte { le.PutUint32(b[0x44:], 0x00010000); return b }, ErrUnsupported, "1.0"},
		"differencing": {func(b []byte) []byte { le.PutUint32(b[0x4c:], typeDiff); b[0x1b8] = 0xab; return b }, ErrDifferencing, "000000ab-"},
		"block size":   {func(b []byte) []byte { le.PutUint32(b[0x178:], 1000); return b }, ErrCorrupt, "block size 1000"},
		"huge size":    {func(b []byte) []byte { le.PutUint64(b[0x170:], 1<<60); return b }, ErrUnsupported, "virtual size"},
		"map too long": {func(b []byte) []byte { le.PutUint32(b[0x180:], 1<<30); le.PutUint64(b[0x170:], 1<<40); return b }, ErrCorrupt, "block map of"},
		"truncated":    {func(b []byte) []byte { return b[:len(b)-4096] }, ErrCorrupt, "truncated"},
		"header cut":   {func(b []byte) []byte { return b[:300] }, ErrCorrupt, "inside the header"},
		"not vdi":      {func(b []byte) []byte { le.PutUint32(b[0x40:], 0); return b }, ErrNotVDI, "not a VDI"},
	} {
		t.Run(name, func(t *testing.T) {
			b := c.edit(patch(t, func([]byte) {}))
			_, err := Open(bytes.NewReader(b), int64(len(b)))
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want %v mentioning %q", err, c.err, c.want)
			}
		})
	}
}

// A block map claiming 2^30 blocks in a sparse file costs a few pages of
// memory, not 4 GiB, to open and to read from.
func TestHugeSparseMapIsBounded(t *testing.T) {
	b := patch(t, func(b []byte) {})
	le := binary.LittleEndian
	le.PutUint32(b[0x180:], 1<<26)
	le.PutUint64(b[0x170:], 1<<46)
	le.PutUint32(b[0x158:], 1<<29) // the data after the map
	// The header and four entries, then zeros: every other block at 0.
	r := &sparse{b: b[:headerLen+16], size: 1 << 40}
	im, err := Open(r, r.size)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 512)
	for _, off := range []int64{0, 1 << 45, 1<<46 - 512} {
		if _, err := im.ReadAt(p, off); err != nil {
			t.Fatalf("ReadAt(%d): %v", off, err)
		}
	}
	if r.read > 1<<20 {
		t.Fatalf("read %d bytes of the file for three sectors", r.read)
	}
}

// sparse is b followed by zeros up to size, counting the bytes read.
type sparse struct {
	b    []byte
	size int64
	read int64
}

func (s *sparse) ReadAt(p []byte, off int64) (int, error) {
	s.read += int64(len(p))
	clear(p)
	if off < int64(len(s.b)) {
		copy(p, s.b[off:])
	}
	return len(p), nil
}

var _ raw.Disk = (*Image)(nil)

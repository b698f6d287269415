package qcow2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vhdprep/vhdprep/internal/disktest"
	"github.com/vhdprep/vhdprep/internal/testimage"
)

// source writes a raw image with data runs, holes and a partial last
// cluster, and returns its path and bytes.
func source(t *testing.T, size int64) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	for _, off := range []int64{0, 70000, 3<<20 + 512, size - 1500} {
		for i := int64(0); i < 100000 && off+i < size; i++ {
			data[off+i] = byte(i*13 + off>>9 + 1)
		}
	}
	path := filepath.Join(t.TempDir(), "src.raw")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func qemu(t testing.TB, tool string, args ...string) {
	t.Helper()
	testimage.RequireTools(t, tool)
	if out, err := exec.Command(tool, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
}

func open(t testing.TB, path string) *Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	im, err := Open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// assertTight checks that no block in the extents is all zeros: qemu-img
// convert writes nothing for zeros (in its 4 KiB detection unit or the
// cluster, whichever is larger), so the extents must not list them.
func assertTight(t *testing.T, im *Image, want []byte) {
	t.Helper()
	exts, err := im.Extents()
	if err != nil {
		t.Fatal(err)
	}
	unit := max(im.clusterSize, 4096)
	for _, e := range exts {
		for b := e.Offset / unit * unit; b < e.End(); b += unit {
			if !slices.ContainsFunc(want[b:min(b+unit, int64(len(want)))], func(b byte) bool { return b != 0 }) {
				t.Fatalf("extent %+v holds the all-zero block at %d", e, b)
			}
		}
	}
}

func TestReadsWhatQemuWrote(t *testing.T) {
	const size = 6<<20 + 3*512 // not a whole MiB, and a partial last cluster
	src, want := source(t, size)
	for _, tc := range []struct {
		name    string
		version int
		opts    []string
	}{
		{"v3", 3, []string{"-o", "compat=1.1"}},
		{"v2", 2, []string{"-o", "compat=0.10"}},
		{"zlib", 3, []string{"-c"}},
		{"zlib-v2", 2, []string{"-c", "-o", "compat=0.10"}},
		{"zstd", 3, []string{"-c", "-o", "compression_type=zstd"}},
		{"cluster-512", 3, []string{"-o", "cluster_size=512"}},
		{"cluster-64k", 3, []string{"-o", "cluster_size=64k"}},
		{"cluster-2M", 3, []string{"-o", "cluster_size=2M"}},
		{"zlib-512", 3, []string{"-c", "-o", "cluster_size=512"}},
		{"zstd-512", 3, []string{"-c", "-o", "compression_type=zstd,cluster_size=512"}},
		{"zlib-2M", 3, []string{"-c", "-o", "cluster_size=2M"}},
		{"zstd-2M", 3, []string{"-c", "-o", "compression_type=zstd,cluster_size=2M"}},
		{"zlib-4k", 3, []string{"-c", "-o", "cluster_size=4096"}},
		{"prealloc-meta", 3, []string{"-o", "preallocation=metadata"}},
		{"prealloc-meta-v2", 2, []string{"-o", "preallocation=metadata,compat=0.10"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "i.qcow2")
			qemu(t, "qemu-img", append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, tc.opts...), src, img)...)
			im := open(t, img)
			if im.Version() != tc.version {
				t.Errorf("Version() = %d, want %d", im.Version(), tc.version)
			}
			disktest.AssertSame(t, im, want)
			if !strings.HasPrefix(tc.name, "prealloc") {
				assertTight(t, im, want)
			}
		})
	}
}

func TestZeroClustersAndHoles(t *testing.T) {
	src, want := source(t, 8<<20)
	img := filepath.Join(t.TempDir(), "z.qcow2")
	qemu(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", src, img)
	// Zero the first cluster with the v3 zero flag, as qemu-io does.
	qemu(t, "qemu-io", "-f", "qcow2", "-c", "write -z 0 64k", img)
	clear(want[:64<<10])
	im := open(t, img)
	disktest.AssertSame(t, im, want)
	exts, _ := im.Extents()
	if len(exts) == 0 || exts[0].Offset == 0 {
		t.Fatalf("the zeroed cluster is still an extent: %v", exts)
	}
	var total int64
	for _, e := range exts {
		total += e.Length
	}
	if total > 2<<20 {
		t.Fatalf("extents cover %d bytes of an 8 MiB image with ~400 KiB of data", total)
	}
}

// TestInternalSnapshot reads the current state of an image whose older
// state lives in an internal snapshot sharing its clusters.
func TestInternalSnapshot(t *testing.T) {
	src, want := source(t, 4<<20)
	img := filepath.Join(t.TempDir(), "s.qcow2")
	qemu(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", src, img)
	qemu(t, "qemu-img", "snapshot", "-c", "before", img)
	qemu(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0xaa 32k 64k", img)
	copy(want[32<<10:96<<10], bytes.Repeat([]byte{0xaa}, 64<<10))
	disktest.AssertSame(t, open(t, img), want)
}

func TestRefusesWhatItCannotRead(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	qemu(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "4M")
	child := filepath.Join(dir, "child.qcow2")
	qemu(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", child)
	ext := filepath.Join(dir, "ext.qcow2")
	qemu(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", ext, "4M")
	// Encryption by hand: qemu-img takes seconds to make a LUKS image.
	b, _ := os.ReadFile(base)
	aes, luks := filepath.Join(dir, "aes.qcow2"), filepath.Join(dir, "luks.qcow2")
	for path, method := range map[string]uint32{aes: 1, luks: 2} {
		binary.BigEndian.PutUint32(b[32:], method)
		os.WriteFile(path, b, 0o644)
	}

	for path, want := range map[string]error{child: ErrBackingFile, ext: ErrUnsupported, luks: ErrUnsupported, aes: ErrUnsupported} {
		f, _ := os.Open(path)
		st, _ := f.Stat()
		_, err := Open(f, st.Size())
		f.Close()
		if !errors.Is(err, want) {
			t.Fatalf("%s: err = %v, want %v", filepath.Base(path), err, want)
		}
		if !strings.Contains(err.Error(), "qemu-img convert") {
			t.Errorf("%s: the error does not say how to convert the image: %v", filepath.Base(path), err)
		}
		if want == ErrBackingFile && !strings.Contains(err.Error(), "base.qcow2") {
			t.Errorf("backing-file error does not name the backing file: %v", err)
		}
	}
}

func TestCorruptHeaders(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "g.qcow2")
	qemu(t, "qemu-img", "create", "-q", "-f", "qcow2", good, "4M")
	b, _ := os.ReadFile(good)
	mutate := func(f func(h []byte)) []byte { c := append([]byte{}, b...); f(c); return c }
	for name, img := range map[string][]byte{
		"truncated":        b[:40],
		"cluster bits 30":  mutate(func(h []byte) { binary.BigEndian.PutUint32(h[20:], 30) }),
		"10 TB in 200 KiB": mutate(func(h []byte) { binary.BigEndian.PutUint64(h[24:], 10<<40) }),
		"L1 past the end":  mutate(func(h []byte) { binary.BigEndian.PutUint64(h[40:], 1<<40) }),
		"version 9":        mutate(func(h []byte) { binary.BigEndian.PutUint32(h[4:], 9) }),
		"unknown incompat": mutate(func(h []byte) { binary.BigEndian.PutUint64(h[72:], 1<<40) }),
	} {
		if _, err := Open(bytes.NewReader(img), int64(len(img))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestConcurrentRandomReads reads odd-sized pieces at odd offsets from many
// goroutines at once, across cluster edges and the end of the disk, with
// caches smaller than the image so that they evict.
func TestConcurrentRandomReads(t *testing.T) {
	const size = 5<<20 + 1234
	src, want := source(t, size)
	img := filepath.Join(t.TempDir(), "r.qcow2")
	qemu(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-c", "-o", "cluster_size=4k", src, img)
	im := open(t, img)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range 300 {
				off := rng.Int64N(size + 100)
				p := make([]byte, rng.IntN(3*4096))
				n, err := im.ReadAt(p, off)
				end := min(off+int64(len(p)), size)
				if off >= size {
					end = off
				}
				if wantN := int(end - off); n != wantN || (n < len(p) && err != io.EOF) || (n == len(p) && err != nil && end < size) {
					t.Errorf("ReadAt(%d bytes at %d) = %d, %v; want %d bytes", len(p), off, n, err, wantN)
					return
				}
				if !bytes.Equal(p[:n], want[off:end]) {
					t.Errorf("ReadAt(%d bytes at %d) returned other bytes than the source", len(p), off)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestHugeVirtualSize opens a 10 TiB disk in a file of a few hundred KiB:
// nothing may be allocated by the virtual size.
func TestHugeVirtualSize(t *testing.T) {
	img := filepath.Join(t.TempDir(), "h.qcow2")
	qemu(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "10T")
	qemu(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 7T 4k", img)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	im := open(t, img)
	exts, err := im.Extents()
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("Open and Extents allocated %d bytes for a 10 TiB disk", got)
	}
	if im.Size() != 10<<40 || len(exts) != 1 || exts[0].Offset != 7<<40 || exts[0].Length != 64<<10 {
		t.Fatalf("size %d, extents %v; want 10 TiB and the one cluster at 7 TiB", im.Size(), exts)
	}
	p := make([]byte, 8192)
	if _, err := im.ReadAt(p, 7<<40-4096); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p[:4096], make([]byte, 4096)) || !bytes.Equal(p[4096:], bytes.Repeat([]byte{0x5a}, 4096)) {
		t.Error("the bytes around the written 4 KiB at 7 TiB are wrong")
	}
}

// TestFeatureBits: the dirty bit only says the refcounts may be stale, which
// reading does not need; the corrupt bit and unknown bits are refused.
func TestFeatureBits(t *testing.T) {
	src, want := source(t, 2<<20)
	img := filepath.Join(t.TempDir(), "f.qcow2")
	qemu(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", src, img)
	b, _ := os.ReadFile(img)
	set := func(bits uint64) []byte {
		c := slices.Clone(b)
		binary.BigEndian.PutUint64(c[72:], binary.BigEndian.Uint64(c[72:])|bits)
		return c
	}
	dirty := set(incompatDirty)
	im, err := Open(bytes.NewReader(dirty), int64(len(dirty)))
	if err != nil {
		t.Fatalf("dirty image refused: %v", err)
	}
	disktest.AssertSame(t, im, want)
	for bits, wantErr := range map[uint64]error{incompatCorrupt: ErrCorrupt, 1 << 5: ErrUnsupported, incompatExtData: ErrUnsupported} {
		c := set(bits)
		if _, err := Open(bytes.NewReader(c), int64(len(c))); !errors.Is(err, wantErr) {
			t.Errorf("incompatible bits %#x: err = %v, want %v", bits, err, wantErr)
		}
	}
	// zstd flagged, but a v3 header too short to say so.
	c := set(incompatCompr)
	binary.BigEndian.PutUint32(c[100:], v3MinHeaderLen)
	if _, err := Open(bytes.NewReader(c), int64(len(c))); !errors.Is(err, ErrCorrupt) {
		t.Errorf("compression bit without the type: err = %v", err)
	}
}

// TestCorruptTables points L1 and L2 entries where they must not go; every
// case is an error from Extents or ReadAt, never a panic or a wrong read.
func TestCorruptTables(t *testing.T) {
	src, _ := source(t, 4<<20)
	img := filepath.Join(t.TempDir(), "c.qcow2")
	qemu(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4k", src, img)
	b, _ := os.ReadFile(img)
	be := binary.BigEndian
	l1 := be.Uint64(b[40:])
	l2 := be.Uint64(b[l1:]) & offsetMask
	for name, patch := range map[string]func(c []byte){
		"L2 table past the end": func(c []byte) { be.PutUint64(c[l1:], uint64(len(c))<<1) },
		"L2 table unaligned":    func(c []byte) { be.PutUint64(c[l1:], l2+512) },
		"L2 table used twice":   func(c []byte) { be.PutUint64(c[l1+8:], l2) },
		"data past the end":     func(c []byte) { be.PutUint64(c[l2:], uint64(len(c))+4096) },
		"data unaligned":        func(c []byte) { be.PutUint64(c[l2:], be.Uint64(c[l2:])+512) },
		"compressed past end":   func(c []byte) { be.PutUint64(c[l2:], l2Compressed|uint64(len(c))) },
		"compressed garbage":    func(c []byte) { be.PutUint64(c[l2:], l2Compressed|l1) },
	} {
		c := slices.Clone(b)
		patch(c)
		im, err := Open(bytes.NewReader(c), int64(len(c)))
		if err != nil {
			t.Fatalf("%s: Open: %v", name, err)
		}
		_, errExt := im.Extents()
		_, errRead := im.ReadAt(make([]byte, 8192), 0)
		if !errors.Is(errExt, ErrCorrupt) && !errors.Is(errRead, ErrCorrupt) {
			t.Errorf("%s: Extents: %v, ReadAt: %v; want %v", name, errExt, errRead, ErrCorrupt)
		}
	}
}

func TestNotQcow2(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("QF"), bytes.Repeat([]byte{0}, 4096), []byte("conectix")} {
		if _, err := Open(bytes.NewReader(b), int64(len(b))); !errors.Is(err, ErrNotQcow2) {
			t.Errorf("%q: err = %v, want %v", b[:min(len(b), 8)], err, ErrNotQcow2)
		}
	}
}

package qcow2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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

// assertSame reads the whole image and compares it with want, and checks
// every non-zero byte lies inside an extent.
func assertSame(t *testing.T, im *Image, want []byte) {
	t.Helper()
	if im.Size() != int64(len(want)) {
		t.Fatalf("size %d, want %d", im.Size(), len(want))
	}
	got := make([]byte, len(want))
	if n, err := im.ReadAt(got, 0); n != len(want) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("first difference at byte %d: %#x, want %#x", i, got[i], want[i])
			}
		}
	}
	exts, err := im.Extents()
	if err != nil {
		t.Fatal(err)
	}
	j := 0
	for i, b := range want {
		for j < len(exts) && int64(i) >= exts[j].End() {
			j++
		}
		if b != 0 && (j == len(exts) || int64(i) < exts[j].Offset) {
			t.Fatalf("non-zero byte %d outside every extent", i)
		}
	}
}

func TestReadsWhatQemuWrote(t *testing.T) {
	const size = 6<<20 + 3*512 // not a whole MiB, and a partial last cluster
	src, want := source(t, size)
	for name, opts := range map[string][]string{
		"v3":              {},
		"v2":              {"-o", "compat=0.10"},
		"zlib":            {"-c"},
		"zlib-v2":         {"-c", "-o", "compat=0.10"},
		"zstd":            {"-c", "-o", "compression_type=zstd"},
		"cluster-512":     {"-o", "cluster_size=512"},
		"cluster-2M":      {"-o", "cluster_size=2M"},
		"zstd-2M":         {"-c", "-o", "compression_type=zstd,cluster_size=2M"},
		"prealloc-meta":   {"-o", "preallocation=metadata"},
		"zlib-cluster-4k": {"-c", "-o", "cluster_size=4096"},
	} {
		t.Run(name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "i.qcow2")
			qemu(t, "qemu-img", append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, opts...), src, img)...)
			assertSame(t, open(t, img), want)
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
	assertSame(t, im, want)
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

func TestRefusesWhatItCannotRead(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	qemu(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "4M")
	child := filepath.Join(dir, "child.qcow2")
	qemu(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", child)
	ext := filepath.Join(dir, "ext.qcow2")
	qemu(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", ext, "4M")
	enc := filepath.Join(dir, "enc.qcow2")
	b, _ := os.ReadFile(base)
	binary.BigEndian.PutUint32(b[32:], 1) // crypt_method AES
	os.WriteFile(enc, b, 0o644)

	for path, want := range map[string]error{child: ErrBackingFile, ext: ErrUnsupported, enc: ErrUnsupported} {
		f, _ := os.Open(path)
		st, _ := f.Stat()
		_, err := Open(f, st.Size())
		f.Close()
		if !errors.Is(err, want) {
			t.Errorf("%s: err = %v, want %v", filepath.Base(path), err, want)
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

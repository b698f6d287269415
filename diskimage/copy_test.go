package diskimage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/disktest"
	"github.com/vhdprep/vhdprep/progress"
	"github.com/vhdprep/vhdprep/qcow2"
	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/vmdk"
)

// compressibleSource writes a sparse raw file of size bytes holding data
// that deflates to about half at each offset in at, and returns its path.
func compressibleSource(t *testing.T, dir string, size int64, n int, at ...int64) string {
	t.Helper()
	src := filepath.Join(dir, "src.raw")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	data := make([]byte, n)
	for i := range data {
		data[i] = "abcdefghijklmnop"[rng.IntN(16)]
	}
	for _, off := range at {
		if _, err := f.WriteAt(data[:min(int64(n), size-off)], off); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// qcow2Compressed returns the file offset of the compressed data of the
// guest cluster holding byte guest of the qcow2 image at path, read from
// its L1 and L2 tables as qemu's docs/interop/qcow2.txt lays them out
// (written out here, not taken from package qcow2). The cluster must be a
// compressed one.
func qcow2Compressed(t *testing.T, path string, guest int64) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	bits := be.Uint32(b[20:])
	clusterSize := int64(1) << bits
	l1, vc := int64(be.Uint64(b[40:])), guest/clusterSize
	l2 := int64(be.Uint64(b[l1+8*(vc/(clusterSize/8)):]) & 0x00fffffffffffe00)
	if l2 == 0 {
		t.Fatalf("guest cluster %d has no L2 table", vc)
	}
	e := be.Uint64(b[l2+8*(vc%(clusterSize/8)):])
	if e&(1<<62) == 0 {
		t.Fatalf("guest cluster %d is not compressed (L2 entry %#x)", vc, e)
	}
	x := 62 - (bits - 8)
	return int64(e & (1<<x - 1))
}

// corruptAt overwrites n bytes of the file at path at off with 0xff: no
// deflate stream (its first block would be of the reserved type 3) and no
// zstd frame (a wrong magic) begins so.
func corruptAt(t *testing.T, path string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	for i := range b {
		b[i] = 0xff
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// convertWithin runs Convert, failing the test if it takes longer than a
// minute: an error in one worker must not leave the others waiting.
func convertWithin(t *testing.T, opts ConvertOptions) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Convert(context.Background(), opts)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatalf("convert %s did not return within a minute: a worker's error left the copy hanging", opts.Input)
		return nil
	}
}

// A compressed qcow2 cluster that does not decompress, in the middle of a
// disk whose chunks are read by several workers at once, fails the convert
// with ErrCorrupt on one line naming the input and the cluster's offset,
// and the partial output is removed. Were the worker's error lost, the
// convert would succeed with a hole where the cluster was.
func TestConvertCorruptCompressedClusterInParallel(t *testing.T) {
	dir := t.TempDir()
	const size = 48 * raw.MiB
	src := compressibleSource(t, dir, size, 40*raw.MiB, 4*raw.MiB)
	for name, opts := range map[string]string{
		"zlib":    "compression_type=zlib",
		"zstd-2M": "compression_type=zstd,cluster_size=2M",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "disk.qcow2")
			qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", "-c", "-o", opts, src, img)
			// Well inside the data, with chunks in flight on either side.
			bad := qcow2Compressed(t, img, 24*raw.MiB)
			corruptAt(t, img, bad, 64)

			err := convertWithin(t, ConvertOptions{Input: img, Output: filepath.Join(dir, "out.vhd")})
			if !errors.Is(err, qcow2.ErrCorrupt) {
				t.Fatalf("convert of an image with a corrupt compressed cluster: err = %v, want %v", err, qcow2.ErrCorrupt)
			}
			msg := err.Error()
			for _, want := range []string{img, "does not decompress", "offset " + strconv.FormatInt(bad, 10)} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			assertOnly(t, dir, "disk.qcow2")
		})
	}
}

// readCounter is a file read through io.ReaderAt that counts the reads
// starting at each offset of interest.
type readCounter struct {
	r     io.ReaderAt
	mu    sync.Mutex
	reads map[int64]int // offset of interest: reads starting there
}

func (c *readCounter) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	if n, ok := c.reads[off]; ok {
		c.reads[off] = n + 1
	}
	c.mu.Unlock()
	return c.r.ReadAt(p, off)
}

// unitReads is a disk that a copy reads through, which records every
// read that starts or ends inside one of the disk's units (raw.Granular):
// such a unit is decompressed for each of the reads that share it.
type unitReads struct {
	raw.Disk
	unit  int64
	mu    sync.Mutex
	split []raw.Extent
}

func (u *unitReads) Granularity() int64 { return u.unit }

func (u *unitReads) ReadAt(p []byte, off int64) (int, error) {
	end := off + int64(len(p))
	if off%u.unit != 0 || end%u.unit != 0 && end != u.Size() {
		u.mu.Lock()
		u.split = append(u.split, raw.Extent{Offset: off, Length: int64(len(p))})
		u.mu.Unlock()
	}
	return u.Disk.ReadAt(p, off)
}

// copyCounting copies d's data into a file with copyReading, as convert
// does, and returns the file's bytes. It fails the test unless d says its
// unit (raw.Granular) and the copy reads it in whole units only.
func copyCounting(t *testing.T, d raw.Disk) []byte {
	t.Helper()
	g, ok := d.(raw.Granular)
	if !ok || g.Granularity() <= 0 {
		t.Fatalf("%T does not say the unit it decompresses (raw.Granular)", d)
	}
	u := &unitReads{Disk: d, unit: g.Granularity()}
	defer func() {
		if len(u.split) > 0 {
			t.Errorf("%d reads of the copy cut a %d-byte unit, the first at %d, %d bytes", len(u.split), u.unit, u.split[0].Offset, u.split[0].Length)
		}
	}()
	d = u
	out, err := os.Create(filepath.Join(t.TempDir(), "out.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := out.Truncate(d.Size()); err != nil {
		t.Fatal(err)
	}
	exts, err := d.Extents()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := copyReading(context.Background(), out, d, raw.Clip(exts, d.Size()), progress.Discard); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertReadOnce fails the test unless each offset of interest was read
// exactly once.
func assertReadOnce(t *testing.T, c *readCounter, what string) {
	t.Helper()
	var twice, never int
	for _, n := range c.reads {
		switch {
		case n == 0:
			never++
		case n > 1:
			twice++
		}
	}
	if twice > 0 || never > 0 {
		t.Errorf("of %d %s, %d were decompressed more than once and %d never", len(c.reads), what, twice, never)
	}
}

// Convert's chunks hold whole compressed clusters: a 2 MiB qcow2 cluster
// (above the 1 MiB chunk) is read, and so decompressed, once, not once for
// each half; so is a VMDK grain whose size does not divide 1 MiB (3
// sectors here), between holes at grains that are not a chunk's multiple.
// The count is of reads of each cluster's (grain's) compressed bytes in
// the file, which are read once for each decompression.
func TestCopyDecompressesEachUnitOnce(t *testing.T) {
	t.Run("qcow2-2M", func(t *testing.T) {
		dir := t.TempDir()
		const size = 24*raw.MiB + 3*512
		src := compressibleSource(t, dir, size, 11*raw.MiB, 0, 12*raw.MiB+4096)
		img := filepath.Join(dir, "disk.qcow2")
		qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", "-c", "-o", "compression_type=zstd,cluster_size=2M", src, img)
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, _ := f.Stat()
		c := &readCounter{r: f, reads: map[int64]int{}}
		im, err := qcow2.Open(c, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		exts, err := im.Extents()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range exts {
			for off := e.Offset; off < e.End(); off += 2 * raw.MiB {
				c.reads[qcow2Compressed(t, img, off)] = 0
			}
		}
		want, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(copyCounting(t, im), want) {
			t.Fatal("the copy differs from the source")
		}
		assertReadOnce(t, c, "compressed clusters")
	})
	t.Run("vmdk-stream-3-sector-grains", func(t *testing.T) {
		const grainSectors = 3
		grain := int64(grainSectors * 512)
		data := make([]byte, 3000*grain)
		rng := rand.New(rand.NewPCG(7, 8))
		for g := range int64(len(data)) / grain {
			if g%700 < 5 { // holes, a few grains each
				continue
			}
			for i := g * grain; i < (g+1)*grain; i++ {
				data[i] = "abcdefghijklmnop"[rng.IntN(16)]
			}
		}
		b := disktest.VMDK(data, grainSectors, 512, true)
		c := &readCounter{r: bytes.NewReader(b), reads: map[int64]int{}}
		for _, off := range vmdkStreamGrains(t, b) {
			if off != 0 {
				c.reads[off] = 0
			}
		}
		im, err := vmdk.Open(c, int64(len(b)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(copyCounting(t, im), data) {
			t.Fatal("the copy differs from the source")
		}
		assertReadOnce(t, c, "deflated grains")
	})
}

// vmdkStreamHeader returns the header of a streamOptimized VMDK that says
// where its grain directory is: the first sector's, or where that says
// "at the end" (VMware's exports) the footer's, the middle of the last
// three sectors (VMware's Virtual Disk Format 1.1, written out here, not
// taken from package vmdk).
func vmdkStreamHeader(b []byte) []byte {
	if binary.LittleEndian.Uint64(b[56:]) != ^uint64(0) {
		return b[:512] // qemu-img's: the header is written last
	}
	return b[len(b)-2*512 : len(b)-512]
}

// vmdkStreamGrains lists the file offset of each grain of a
// streamOptimized VMDK, by grain, 0 for one not stored, from its grain
// directory.
func vmdkStreamGrains(t *testing.T, b []byte) []int64 {
	t.Helper()
	le := binary.LittleEndian
	h := vmdkStreamHeader(b)
	gtes := int64(le.Uint32(h[44:]))
	gd := int64(le.Uint64(h[56:])) * 512
	capacity, grainSectors := int64(le.Uint64(h[12:])), int64(le.Uint64(h[20:]))
	offs := make([]int64, (capacity+grainSectors-1)/grainSectors)
	stored := false
	for g := range int64(len(offs)) {
		gt := int64(le.Uint32(b[gd+4*(g/gtes):])) * 512
		if gt == 0 {
			continue
		}
		if s := int64(le.Uint32(b[gt+4*(g%gtes):])); s > 1 {
			offs[g], stored = s*512, true
		}
	}
	if !stored {
		t.Fatal("no grains found")
	}
	return offs
}

// A deflated grain of a streamOptimized VMDK qemu-img made that does not
// inflate, in the middle of a disk whose chunks are read by several workers
// at once, fails the convert with ErrCorrupt on one line naming the input
// and the grain's offset, and the partial output is removed.
func TestConvertCorruptGrainInParallel(t *testing.T) {
	dir := t.TempDir()
	src := compressibleSource(t, dir, 48*raw.MiB, 40*raw.MiB, 4*raw.MiB)
	img := filepath.Join(dir, "disk.vmdk")
	qemuImg(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", src, img)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	grain := int64(binary.LittleEndian.Uint64(vmdkStreamHeader(b)[20:])) * 512
	bad := vmdkStreamGrains(t, b)[24*raw.MiB/grain]
	if bad == 0 {
		t.Fatal("the grain at 24 MiB is not stored")
	}
	// Past the grain's marker (its sector and length), its zlib header.
	corruptAt(t, img, bad+12, 64)
	os.Remove(src)

	err = convertWithin(t, ConvertOptions{Input: img, Output: filepath.Join(dir, "out.vhd")})
	if !errors.Is(err, vmdk.ErrCorrupt) {
		t.Fatalf("convert of a stream with a corrupt grain: err = %v, want %v", err, vmdk.ErrCorrupt)
	}
	msg := err.Error()
	for _, want := range []string{img, "does not inflate", "offset " + strconv.FormatInt(bad, 10)} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	assertOnly(t, dir, "disk.vmdk")
}

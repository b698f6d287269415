package vmdk

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/vhdprep/vhdprep/internal/disktest"
	"github.com/vhdprep/vhdprep/raw"
)

// openPath opens the VMDK at path with its directory for extents.
func openPath(t testing.TB, path string) *Image {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	im, err := Open(bytes.NewReader(b), int64(len(b)), root.FS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { im.Close() })
	return im
}

// dataBytes is how much of the disk the extents cover.
func dataBytes(t testing.TB, d raw.Disk) int64 {
	t.Helper()
	exts, err := d.Extents()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range exts {
		n += e.Length
	}
	return n
}

// Every subformat qemu-img writes reads as qemu-img reads it, and the
// sparse ones' extents leave out the grains never written.
func TestReadsWhatQemuWrote(t *testing.T) {
	const size = 9<<20 + 3*512 // a partial last grain
	dir := t.TempDir()
	src, want := disktest.Source(t, dir, size)
	for _, sub := range []string{"monolithicSparse", "streamOptimized", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"} {
		t.Run(sub, func(t *testing.T) {
			sd := filepath.Join(dir, sub)
			if err := os.Mkdir(sd, 0o755); err != nil {
				t.Fatal(err)
			}
			img := filepath.Join(sd, "disk.vmdk")
			disktest.Qemu(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+sub, src, img)
			if oracle := disktest.QemuRaw(t, "vmdk", img); !bytes.Equal(oracle, want) {
				t.Fatal("qemu-img itself reads another disk")
			}
			im := openPath(t, img)
			disktest.AssertSame(t, im, want)
			if im.Info().CreateType != sub {
				t.Fatalf("create type %q, want %q", im.Info().CreateType, sub)
			}
			if n := dataBytes(t, im); n > 2<<20 && sub != "monolithicFlat" && sub != "twoGbMaxExtentFlat" {
				t.Fatalf("extents cover %d bytes: unallocated grains are not holes", n)
			}
		})
	}
}

// Images made here as VMware writes them, which qemu-img cannot write,
// read as qemu-img reads them: a stream whose tables follow their grains
// behind markers and whose footer names the grain directory, as OVAs and
// vSphere exports hold; hosted sparse extents with a redundant directory,
// with small grains and tables, and with grains of zeros.
func TestReadsWhatVMwareWrites(t *testing.T) {
	dir := t.TempDir()
	_, data := disktest.Source(t, dir, 5<<20+512*7)
	for name, img := range map[string][]byte{
		"stream":         makeSparse(data, 128, 512, true),
		"stream-small":   makeSparse(data, 8, 16, true),
		"hosted":         makeSparse(data, 128, 512, false),
		"hosted-small":   makeSparse(data, 1, 4, false),
		"hosted-zeroing": withZeroGrain(makeSparse(data, 128, 512, false)),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".vmdk")
			if err := os.WriteFile(path, img, 0o644); err != nil {
				t.Fatal(err)
			}
			want := data
			if name == "hosted-zeroing" {
				want = bytes.Clone(data)
				clear(want[:64<<10])
			}
			if oracle := disktest.QemuRaw(t, "vmdk", path); !bytes.Equal(oracle, want) {
				t.Fatal("qemu-img reads another disk: the test's writer is wrong")
			}
			disktest.AssertSame(t, openPath(t, path), want)
		})
	}
}

// A descriptor joining extents of every kind reads as qemu-img reads it:
// flat files at offsets (one sparse on disk), a hosted sparse extent, and
// the names resolved beside the descriptor. A comment stands before the
// extent lines, as VMware writes it: qemu 7.2 reads an extent line that
// follows a blank line twice.
func TestDescriptorJoinsExtents(t *testing.T) {
	dir := t.TempDir()
	_, data := disktest.Source(t, dir, 6<<20)
	part := func(i int) []byte { return data[i<<20 : (i+2)<<20] }
	// a.bin holds 512 bytes before its extent; b.vmdk is hosted sparse.
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.bin", append(make([]byte, 512), part(0)...))
	write("b.vmdk", makeSparse(part(2), 128, 512, false))
	write("c-flat.vmdk", part(4))
	write("disk.vmdk", []byte(DescriptorMagic+"\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n\n# Extent description\n"+
		"RW 4096 FLAT \"a.bin\" 1\nRW 4096 SPARSE \"b.vmdk\"\nRW 4096 VMFS \"c-flat.vmdk\"\n\nddb.adapterType = \"lsilogic\"\n"))
	path := filepath.Join(dir, "disk.vmdk")
	if oracle := disktest.QemuRaw(t, "vmdk", path); !bytes.Equal(oracle, data) {
		t.Fatal("qemu-img reads another disk")
	}
	im := openPath(t, path)
	disktest.AssertSame(t, im, data)
	info := im.Info()
	if len(info.Extents) != 3 || info.Extents[0].Offset != 512 || info.Extents[1].Sparse == nil || info.DDB["adapterType"] != "lsilogic" {
		t.Fatalf("info %+v", info)
	}
}

// A ZERO extent, which qemu does not read, reads as zeros and is a hole.
func TestZeroExtent(t *testing.T) {
	desc := DescriptorMagic + "\ncreateType=\"custom\"\nRW 8 ZERO\n"
	im, err := Open(bytes.NewReader([]byte(desc)), int64(len(desc)), nil)
	if err != nil {
		t.Fatal(err)
	}
	disktest.AssertSame(t, im, make([]byte, 8*512))
	if n := dataBytes(t, im); n != 0 {
		t.Fatalf("a ZERO extent has %d bytes of extents", n)
	}
}

var _ raw.Disk = (*Image)(nil)

package vmdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/vhdprep/vhdprep/internal/disktest"
	"github.com/vhdprep/vhdprep/internal/testimage"
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

// Every subformat qemu-img writes reads as qemu-img reads it, and its data
// extents are the ranges qemu-img maps as data: grains never written and
// a flat file's holes are holes.
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
			disktest.AssertQemuExtents(t, im, "vmdk", img)
			if im.Info().CreateType != sub {
				t.Fatalf("create type %q, want %q", im.Info().CreateType, sub)
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
		"stream":         disktest.VMDK(data, 128, 512, true),
		"stream-small":   disktest.VMDK(data, 8, 16, true),
		"hosted":         disktest.VMDK(data, 128, 512, false),
		"hosted-small":   disktest.VMDK(data, 1, 4, false),
		"hosted-zeroing": disktest.VMDKZeroGrain(disktest.VMDK(data, 128, 512, false)),
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
			im := openPath(t, path)
			disktest.AssertSame(t, im, want)
			disktest.AssertQemuExtents(t, im, "vmdk", path)
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
	write("b.vmdk", disktest.VMDK(part(2), 128, 512, false))
	write("c-flat.vmdk", part(4))
	write("disk.vmdk", []byte(DescriptorMagic+"\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n\n# Extent description\n"+
		"RW 4096 FLAT \"a.bin\" 1\nRW 4096 SPARSE \"b.vmdk\"\nRW 4096 VMFS \"c-flat.vmdk\"\n\nddb.adapterType = \"lsilogic\"\n"))
	path := filepath.Join(dir, "disk.vmdk")
	if oracle := disktest.QemuRaw(t, "vmdk", path); !bytes.Equal(oracle, data) {
		t.Fatal("qemu-img reads another disk")
	}
	im := openPath(t, path)
	disktest.AssertSame(t, im, data)
	disktest.AssertQemuExtents(t, im, "vmdk", path)
	info := im.Info()
	if len(info.Extents) != 3 || info.Extents[0].Offset != 512 || info.Extents[1].Sparse == nil || info.DDB["adapterType"] != "lsilogic" {
		t.Fatalf("info %+v", info)
	}
}

// Extents qemu skips are read as the specification has them: a ZERO
// extent reads as zeros and is a hole, and a read-only (RDONLY) extent
// reads as any other; so with lines ending in CR LF.
func TestExtentsQemuSkips(t *testing.T) {
	flat := bytes.Repeat([]byte("flat"), 1024)
	desc := DescriptorMagic + "\ncreateType=\"custom\"\nRW 8 ZERO\nRDONLY 8 FLAT \"f.bin\" 0\n"
	// A descriptor edited on Windows ends its lines in CR LF.
	for _, d := range []string{desc, strings.ReplaceAll(desc, "\n", "\r\n")} {
		im, err := openBytes([]byte(d), fstest.MapFS{"f.bin": {Data: flat}})
		if err != nil {
			t.Fatal(err)
		}
		disktest.AssertSame(t, im, append(make([]byte, 8*512), flat...))
		if exts, _ := im.Extents(); len(exts) != 1 || exts[0].Offset != 8*512 {
			t.Fatalf("extents %v; want only the flat extent's", exts)
		}
	}
}

var _ raw.Disk = (*Image)(nil)

// small is a disk of a few grains with data in some, for the images the
// refusal tests damage.
func small() []byte {
	data := make([]byte, 1<<20)
	for i := range 300 << 10 {
		data[i] = byte(i*7 + 1)
	}
	copy(data[900<<10:], "the end")
	return data
}

// openBytes opens an image held in memory, extents from dir.
func openBytes(b []byte, dir fstest.MapFS) (*Image, error) {
	if dir == nil {
		return Open(bytes.NewReader(b), int64(len(b)), nil)
	}
	return Open(bytes.NewReader(b), int64(len(b)), dir)
}

// A damaged primary grain table is read from the redundant directory's
// copy, which VMware keeps for this; with both damaged the read fails.
func TestRedundantDirectory(t *testing.T) {
	data := small()
	b := disktest.VMDK(data, 128, 512, false)
	le := binary.LittleEndian
	gd, rgd := le.Uint64(b[56:]), le.Uint64(b[48:])
	le.PutUint32(b[gd*sectorSize:], 0xfffffff0)
	im, err := openBytes(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	disktest.AssertSame(t, im, data)
	le.PutUint32(b[rgd*sectorSize:], 0xfffffff0)
	im, err = openBytes(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := im.ReadAt(make([]byte, 512), 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("with both tables damaged, err = %v", err)
	}
}

// Damaged and unsupported images are refused, each with its reason, when
// opened or at the latest when their data extents are listed.
func TestRefuses(t *testing.T) {
	le := binary.LittleEndian
	hosted := func() []byte { return disktest.VMDK(small(), 128, 512, false) }
	stream := func() []byte { return disktest.VMDK(small(), 128, 512, true) }
	desc := func(lines string) []byte {
		return []byte(DescriptorMagic + "\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n" + lines)
	}
	files := fstest.MapFS{"f.bin": {Data: make([]byte, 4096)}, "s.vmdk": {Data: hosted()}}
	for name, c := range map[string]struct {
		b    []byte
		err  error
		want string
	}{
		"header cut":    {hosted()[:300], ErrCorrupt, "inside the header"},
		"truncated":     {hosted()[:300<<10], ErrCorrupt, "truncated"},
		"text mode":     {func() []byte { b := hosted(); b[75] = '\n'; return b }(), ErrCorrupt, "binary mode"},
		"version":       {func() []byte { b := hosted(); le.PutUint32(b[4:], 4); return b }(), ErrUnsupported, "version 4"},
		"compression":   {func() []byte { b := hosted(); le.PutUint16(b[77:], 2); return b }(), ErrUnsupported, "compression"},
		"grain size":    {func() []byte { b := hosted(); le.PutUint64(b[20:], 0); return b }(), ErrCorrupt, "grain size 0"},
		"table entries": {func() []byte { b := hosted(); le.PutUint32(b[44:], 1000); return b }(), ErrCorrupt, "1000 entries"},
		"directory":     {func() []byte { b := hosted(); le.PutUint64(b[56:], 1<<40); return b }(), ErrCorrupt, "grain directory"},
		"huge":          {func() []byte { b := hosted(); le.PutUint64(b[12:], 1<<50); return b }(), ErrUnsupported, "capacity"},
		"stream cut":    {func() []byte { b := stream(); return b[:len(b)-512] }(), ErrCorrupt, "truncated"},
		"marker": {func() []byte {
			b := stream()
			le.PutUint64(b[le.Uint64(b[64:])*sectorSize:], 99)
			return b
		}(), ErrCorrupt, "marked as sector 99"},
		"deflate": {func() []byte {
			b := stream()
			copy(b[le.Uint64(b[64:])*sectorSize+markerLen+2:], "garbage!")
			return b
		}(), ErrCorrupt, "does not inflate"},
		"embedded parent": {bytes.Replace(hosted(), []byte("parentCID=ffffffff"), []byte("parentCID=0000abcd"), 1), ErrDifferencing, "0000abcd"},
		"parent":          {bytes.Replace(desc("parentFileNameHint=\"base.vmdk\"\nRW 8 FLAT \"f.bin\" 0\n"), []byte("=ffffffff"), []byte("=12345678"), 1), ErrDifferencing, `"base.vmdk"`},
		"cowd":            {append([]byte(cowdMagic), make([]byte, 2048)...), ErrUnsupported, "COWD"},
		"sesparse":        {append([]byte(seSparseMagic), make([]byte, 2048)...), ErrUnsupported, "seSparse"},
		"rdm":             {desc("RW 8 VMFSRDM \"lun.vmdk\"\n"), ErrUnsupported, "raw device"},
		"delta":           {desc("RW 8 SESPARSE \"d.vmdk\"\n"), ErrUnsupported, "delta"},
		"up":              {desc("RW 8 FLAT \"../f.bin\" 0\n"), ErrUnsupported, "beside their descriptor"},
		"absolute":        {desc("RW 8 FLAT \"/etc/passwd\" 0\n"), ErrUnsupported, "beside their descriptor"},
		"missing":         {desc("RW 8 FLAT \"g.bin\" 0\n"), fs.ErrNotExist, `"g.bin"`},
		"flat short":      {desc("RW 8 FLAT \"f.bin\" 1\n"), ErrCorrupt, "truncated"},
		"sparse size":     {desc("RW 8 SPARSE \"s.vmdk\"\n"), ErrCorrupt, "its header"},
		"bad line":        {desc("RW many FLAT \"f.bin\" 0\n"), ErrCorrupt, "sectors"},
		"no extent":       {desc(""), ErrCorrupt, "no extent"},
		"not vmdk":        {[]byte("hello, world"), ErrNotVMDK, "not a VMDK"},
	} {
		t.Run(name, func(t *testing.T) {
			im, err := openBytes(c.b, files)
			if err == nil {
				_, err = im.Extents()
			}
			if err == nil {
				_, err = im.ReadAt(make([]byte, 64<<10), 0)
			}
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want %v mentioning %q", err, c.err, c.want)
			}
		})
	}
}

// A symbolic link beside the descriptor that leads out of its directory
// is refused when the directory is an os.Root, as diskimage opens it.
func TestExtentLinkOutside(t *testing.T) {
	outside, dir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "f.bin")); err != nil {
		t.Fatal(err)
	}
	desc := DescriptorMagic + "\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"f.bin\" 0\n"
	if err := os.WriteFile(filepath.Join(dir, "disk.vmdk"), []byte(desc), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := Open(strings.NewReader(desc), int64(len(desc)), root.FS()); err == nil || !strings.Contains(err.Error(), "f.bin") {
		t.Fatalf("err = %v; want the link refused", err)
	}
}

// A disk qemu-img splits into 2 GB extents, with data across the first
// boundary and in the last extent, reads as qemu-img reads it: the same
// data extents, and in them the same bytes.
func TestSplitExtents(t *testing.T) {
	testimage.RequireTools(t, "qemu-io")
	for _, sub := range []string{"twoGbMaxExtentSparse", "twoGbMaxExtentFlat"} {
		t.Run(sub, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "disk.vmdk")
			disktest.Qemu(t, "create", "-f", "vmdk", "-o", "subformat="+sub, img, "5G")
			out, err := exec.Command("qemu-io", "-f", "vmdk",
				"-c", "write -P 0x5a 0 64k", "-c", "write -P 0xa5 2047M 2M", "-c", "write -P 0x3c 4700M 128k", img).CombinedOutput()
			if err != nil {
				t.Fatalf("qemu-io: %v\n%s", err, out)
			}
			im := openPath(t, img)
			if len(im.Info().Extents) != 3 || im.Size() != 5<<30 {
				t.Fatalf("%d extents, %d bytes", len(im.Info().Extents), im.Size())
			}
			disktest.AssertQemuExtents(t, im, "vmdk", img)
			oracle := filepath.Join(dir, "oracle.raw")
			disktest.Qemu(t, "convert", "-f", "vmdk", "-O", "raw", img, oracle)
			f, err := os.Open(oracle)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			exts, _ := im.Extents()
			for _, e := range exts {
				got, want := make([]byte, e.Length), make([]byte, e.Length)
				if _, err := im.ReadAt(got, e.Offset); err != nil {
					t.Fatal(err)
				}
				if _, err := f.ReadAt(want, e.Offset); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("the extent at %d differs from qemu-img's", e.Offset)
				}
			}
		})
	}
}

package initrd

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// image reads the initramfs a testdata/images recipe builds.
func image(t testing.TB, recipe string) []byte {
	t.Helper()
	b, err := os.ReadFile(testimage.Path(t, recipe))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type walked struct {
	seg  Segment
	e    Entry
	data string
}

// walkAll walks b, keeping every entry with its data.
func walkAll(t *testing.T, b []byte) []walked {
	t.Helper()
	var out []walked
	err := Walk(bytes.NewReader(b), int64(len(b)), func(seg Segment, e Entry, content io.Reader) error {
		data, err := io.ReadAll(content)
		if err != nil {
			return err
		}
		if int64(len(data)) != e.Size && !e.Mode.IsDir() && e.Mode&fs.ModeSymlink == 0 {
			t.Errorf("%s: read %d bytes, size %d", e.Name, len(data), e.Size)
		}
		out = append(out, walked{seg, e, string(data)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWalkLayers(t *testing.T) {
	b := image(t, "initrd-layers")
	entries := walkAll(t, b)
	want := []string{None, None, Gzip, XZ, LZMA, Zstd, Bzip2, LZ4}
	found := map[string]walked{}
	for _, w := range entries {
		found[w.e.Name] = w
	}
	var prev int64 = -1
	for i, comp := range want {
		name := "seg/" + string(rune('0'+i)) + ".txt"
		w, ok := found[name]
		if !ok {
			t.Fatalf("segment %d (%s): %s missing; walked %d entries", i, comp, name, len(entries))
		}
		if w.seg.Compression != comp || w.data != "segment "+string(rune('0'+i))+"\n" || !w.e.Mode.IsRegular() {
			t.Errorf("%s: segment %+v, data %q, mode %v", name, w.seg, w.data, w.e.Mode)
		}
		if w.seg.Offset <= prev {
			t.Errorf("%s: segment offset %d after %d", name, w.seg.Offset, prev)
		}
		prev = w.seg.Offset
	}
	if entries[0].seg.Offset != 0 {
		t.Errorf("first segment at %d", entries[0].seg.Offset)
	}
	// Each segment's offset holds its compression's magic.
	for _, w := range entries {
		if c := compressionOf(b[w.seg.Offset:]); w.seg.Compression != None && c != w.seg.Compression {
			t.Errorf("segment %+v starts with % x", w.seg, b[w.seg.Offset:w.seg.Offset+4])
		}
	}
}

// TestWalkMatchesCpio compares Walk with GNU cpio listing the same archive.
func TestWalkMatchesCpio(t *testing.T) {
	testimage.RequireTools(t, "cpio", "gzip")
	b := image(t, "initrd-nostorvsc-gzip")
	cmd := exec.Command("sh", "-c", "gzip -dc | cpio -it --quiet")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, l := range strings.Fields(string(out)) {
		want = append(want, cleanName(l))
	}
	for _, w := range walkAll(t, b) {
		got = append(got, w.e.Name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Walk listed\n%q\ncpio lists\n%q", got, want)
	}
}

func TestWalkEntries(t *testing.T) {
	b := image(t, "initrd-dracut-xz")
	byName := map[string]walked{}
	for _, w := range walkAll(t, b) {
		if _, dup := byName[w.e.Name]; !dup { // "." is in both archives
			byName[w.e.Name] = w
		}
	}
	for name, want := range map[string]struct {
		comp   string
		mode   fs.FileMode
		target string
	}{
		".":                                     {None, fs.ModeDir | 0o755, ""},
		"early_cpio":                            {None, 0o644, ""},
		"kernel/x86/microcode/GenuineIntel.bin": {None, 0o644, ""},
		"init":                                  {XZ, 0o755, ""},
		"bin/ash":                               {XZ, fs.ModeSymlink | 0o777, "sh"},
		"lib":                                   {XZ, fs.ModeSymlink | 0o777, "usr/lib"},
		"usr/lib/modules":                       {XZ, fs.ModeDir | 0o755, ""},
	} {
		w, ok := byName[name]
		if !ok {
			t.Errorf("%s: not walked", name)
			continue
		}
		if w.seg.Compression != want.comp || w.e.Mode != want.mode || w.e.LinkTarget != want.target {
			t.Errorf("%s: %s %v %q, want %s %v %q", name, w.seg.Compression, w.e.Mode, w.e.LinkTarget, want.comp, want.mode, want.target)
		}
	}
	if w := byName["init"]; w.data != "#!/bin/sh\nexec /sbin/init \"$@\"\n" {
		t.Errorf("init = %q", w.data)
	}
}

func TestModules(t *testing.T) {
	hv := []string{"hv_vmbus", "hv_storvsc", "hv_netvsc"}
	for _, c := range []struct {
		recipe   string
		segments []string
		version  string
		modules  []string
		path     string // of hv_vmbus
	}{
		{"initrd-dracut-xz", []string{None, XZ}, "5.14.0-362.el9.x86_64", hv, "usr/lib/modules/5.14.0-362.el9.x86_64/kernel/drivers/hv/hv_vmbus.ko.xz"},
		{"initrd-debian-zstd", []string{None, Zstd}, "6.1.0-13-cloud-amd64", hv, "lib/modules/6.1.0-13-cloud-amd64/kernel/drivers/hv/hv_vmbus.ko"},
		{"initrd-arch-lz4", []string{LZ4}, "6.6.1-arch1-1", hv, "usr/lib/modules/6.6.1-arch1-1/kernel/drivers/hv/hv_vmbus.ko.zst"},
		{"initrd-nostorvsc-gzip", []string{Gzip}, "6.1.0-13-amd64", []string{"hv_vmbus", "hv_netvsc"}, "lib/modules/6.1.0-13-amd64/kernel/drivers/hv/hv_vmbus.ko.gz"},
	} {
		t.Run(c.recipe, func(t *testing.T) {
			b := image(t, c.recipe)
			inv, err := Modules(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			var comps []string
			for _, s := range inv.Segments {
				comps = append(comps, s.Compression)
			}
			if !slices.Equal(comps, c.segments) {
				t.Errorf("segments %v, want %v", comps, c.segments)
			}
			for _, m := range hv {
				if got, want := inv.Has(c.version, m), slices.Contains(c.modules, m); got != want {
					t.Errorf("Has(%s) = %v, want %v", m, got, want)
				}
				if inv.Has("6.0.0-other", m) {
					t.Errorf("Has(6.0.0-other, %s): a module counts only for its own kernel", m)
				}
			}
			km := inv.Kernels[c.version]
			if len(inv.Kernels) != 1 || km == nil {
				t.Fatalf("kernels %v, want only %s", inv.Kernels, c.version)
			}
			if km.Files["hv_vmbus"] != c.path || !inv.Has(c.version, "xfs") || len(km.Files) != len(c.modules)+1 {
				t.Errorf("modules %v", km.Files)
			}
			if !km.HasModulesDep || !reflect.DeepEqual(km.Builtin, map[string]bool{"ext4": true, "crc32c_generic": true}) {
				t.Errorf("modules.dep %v, builtin %v", km.HasModulesDep, km.Builtin)
			}
			if !inv.Has(c.version, "crc32c-generic") || inv.Has(c.version, "hv_balloon") {
				t.Errorf("Has folds dashes and knows built-ins: %+v", km)
			}
			if !inv.Programs["sh"] || !inv.Programs["ash"] || inv.Programs["hostname"] {
				t.Errorf("programs %v, want sh and ash (a symlink), not etc/hostname", inv.Programs)
			}
		})
	}
}

func TestModulesLayers(t *testing.T) {
	b := image(t, "initrd-layers")
	inv, err := Modules(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "hv_vmbus", "hv_storvsc", "hv_netvsc"} {
		if !inv.Has("6.1.0", m) {
			t.Errorf("%s missing from %v", m, inv.Kernels["6.1.0"])
		}
	}
	if km := inv.Kernels["6.1.0"]; len(inv.Segments) != 8 || km.HasModulesDep || len(km.Builtin) != 0 {
		t.Errorf("inventory %+v", inv)
	}
}

func TestWalkStops(t *testing.T) {
	b := image(t, "initrd-layers")
	n := 0
	err := Walk(bytes.NewReader(b), int64(len(b)), func(Segment, Entry, io.Reader) error { n++; return fs.SkipAll })
	if err != nil || n != 1 {
		t.Fatalf("SkipAll: %v after %d entries", err, n)
	}
	mine := errors.New("mine")
	err = Walk(bytes.NewReader(b), int64(len(b)), func(s Segment, e Entry, _ io.Reader) error {
		if s.Compression == Zstd {
			return mine
		}
		return nil
	})
	if err != mine {
		t.Fatalf("fn's error came back as %v", err)
	}
}

// cpioOf builds a cpio archive of one file with the real cpio.
func cpioOf(t *testing.T, format, name, data string) []byte {
	t.Helper()
	testimage.RequireTools(t, "cpio")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cpio", "-o", "-H", format, "--quiet")
	cmd.Dir, cmd.Stdin = dir, strings.NewReader(name+"\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compress pipes b through a real compressor.
func compress(t *testing.T, b []byte, tool string, args ...string) []byte {
	t.Helper()
	testimage.RequireTools(t, tool)
	cmd := exec.Command(tool, args...)
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWalkErrors(t *testing.T) {
	newc := cpioOf(t, "newc", "f", "hello")
	crc := cpioOf(t, "crc", "f", "hello")
	badSum := bytes.Replace(crc, []byte("hello"), []byte("jello"), 1)
	xzed := compress(t, newc, "xz", "--check=crc32")
	lzmaed := compress(t, newc, "xz", "--format=lzma")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, c := range []struct {
		name string
		in   []byte
		want error
		msg  string
	}{
		{"odc", cpioOf(t, "odc", "f", "x"), ErrHeader, "cpio -H newc"},
		{"bad hex", append([]byte("070701zzzzzzzz"), make([]byte, 200)...), ErrHeader, "field 0"},
		{"name size 0", []byte("070701" + strings.Repeat("0", 104)), ErrHeader, "name size 0"},
		{"truncated header", newc[:60], io.ErrUnexpectedEOF, "offset 0"},
		{"truncated data", newc[:115], io.ErrUnexpectedEOF, "runs past the end"},
		{"crc", badSum, ErrChecksum, `"f"`},
		{"misaligned after entry", cat(newc[:len(newc)-1], []byte{1}, newc), ErrPadding, "after a stored cpio entry"},
		{"junk in gzip", compress(t, cat(newc, []byte("junk")), "gzip"), ErrJunk, "gzip segment at offset 0"},
		{"misaligned in gzip", compress(t, cat([]byte{0}, newc), "gzip"), ErrPadding, "decompressed offset 1"},
		{"truncated gzip", compress(t, newc, "gzip")[:40], io.ErrUnexpectedEOF, "gzip segment"},
		{"truncated xz", xzed[:len(xzed)-20], io.ErrUnexpectedEOF, "xz segment"},
		{"unknown", []byte("PK\x03\x04"), ErrCompression, "50 4b 03 04"},
		{"lzo", []byte("\x89LZO\x00\r\n\x1a\n"), ErrCompression, "lzo"},
		{"xz dictionary", patchXZDict(t, xzed), nil, "dictionary of 4294967295 bytes"},
		{"lzma dictionary", cat(lzmaed[:1], []byte{0, 0, 0, 0xf0}, lzmaed[5:]), nil, "dictionary"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := Walk(bytes.NewReader(c.in), int64(len(c.in)), func(Segment, Entry, io.Reader) error { return nil })
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want %v mentioning %q", err, c.want, c.msg)
			}
			if testing.Verbose() {
				t.Log(err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

// patchXZDict sets the first block's LZMA2 dictionary property to 40
// (4 GiB - 1), as a hostile file would; the block header's CRC then fails,
// but only after the dictionary would have been allocated.
func patchXZDict(t *testing.T, xzed []byte) []byte {
	b := bytes.Clone(xzed)
	// Stream header (12), block header size, flags, filter ID 0x21, props size 1, dict.
	i := bytes.Index(b[xzStreamHeaderLen:], []byte{xzFilterLZMA2, 1})
	if i < 0 {
		t.Fatal("no LZMA2 filter in the xz block header")
	}
	b[xzStreamHeaderLen+i+2] = 40
	return b
}

func TestWalkBudget(t *testing.T) {
	b := image(t, "initrd-debian-zstd")
	w := &walker{r: bytes.NewReader(b), size: int64(len(b)), budget: 1000, fn: func(Segment, Entry, io.Reader) error { return nil }}
	if err := w.run(); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "zstd segment") {
		t.Fatalf("err = %v, want ErrTooLarge in the zstd segment", err)
	}
}

// A small file that unpacks to far more than any real initramfs (a zstd
// bomb: 300 MiB of zeros in a few KiB) stops at 32 times its size (at
// least 256 MiB), not at the 4 GiB that cost half a minute of CPU.
func TestBombBudgetFollowsTheFileSize(t *testing.T) {
	testimage.RequireTools(t, "cpio", "zstd")
	dir := t.TempDir()
	f, _ := os.Create(filepath.Join(dir, "zeros"))
	f.Truncate(300 << 20)
	f.Close()
	cmd := exec.Command("sh", "-c", "echo zeros | cpio -o -H newc --quiet | zstd -q -1 -c")
	cmd.Dir = dir
	bomb, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := budget(int64(len(bomb))); got != minBudget {
		t.Fatalf("budget of a %d-byte file = %d, want %d", len(bomb), got, minBudget)
	}
	if _, err := Modules(bytes.NewReader(bomb), int64(len(bomb))); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a %d-byte file unpacking to 300 MiB: %v, want ErrTooLarge", len(bomb), err)
	}
	if got := budget(1 << 30); got != 4<<30 {
		t.Fatalf("budget of a 1 GiB initramfs = %d, want the 4 GiB ceiling", got)
	}
}

package initrd

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// written is what TestWriterRoundTrip writes: every kind of entry.
var written = []struct {
	e    Entry
	data string
}{
	{Entry{Name: "usr", Mode: fs.ModeDir | 0o755, Ino: 1, Nlink: 2, ModTime: 1700000000}, ""},
	{Entry{Name: "usr/bin", Mode: fs.ModeDir | 0o755, Ino: 2, Nlink: 2}, ""},
	{Entry{Name: "usr/bin/sh", Mode: fs.ModeSetuid | 0o755, Size: 5, Ino: 3, UID: 1000, GID: 100, Nlink: 1, ModTime: 1700000001}, "shell"},
	{Entry{Name: "bin", Mode: fs.ModeSymlink | 0o777, LinkTarget: "usr/bin", Ino: 4, Nlink: 1}, ""},
	{Entry{Name: "dev/console", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, Ino: 5, Nlink: 1, Rdev: [2]uint32{5, 1}}, ""},
	{Entry{Name: "dev/sda", Mode: fs.ModeDevice | 0o660, Ino: 6, Nlink: 1, Rdev: [2]uint32{8, 0}}, ""},
	{Entry{Name: "run/fifo", Mode: fs.ModeNamedPipe | 0o644, Ino: 7, Nlink: 1}, ""},
	{Entry{Name: "a/odd-size", Mode: 0o644, Size: 3, Ino: 8, Nlink: 1}, "abc"},
	{Entry{Name: "a/empty", Mode: 0o600, Ino: 9, Nlink: 1}, ""},
}

func writeArchive(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	w := NewWriter(&b)
	for _, x := range written {
		if err := w.WriteHeader(x.e); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, x.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestWriterRoundTrip reads back with Walk, and with GNU cpio, what a
// Writer writes.
func TestWriterRoundTrip(t *testing.T) {
	b := writeArchive(t)
	got := walkAll(t, b)
	if len(got) != len(written) {
		t.Fatalf("walked %d entries, wrote %d", len(got), len(written))
	}
	for i, x := range written {
		want := x.e
		if want.Mode&fs.ModeSymlink != 0 {
			want.Size = int64(len(want.LinkTarget))
		}
		if got[i].e != want || got[i].data != x.data && want.Mode.IsRegular() {
			t.Errorf("entry %d: read %+v %q, wrote %+v %q", i, got[i].e, got[i].data, want, x.data)
		}
	}

	testimage.RequireTools(t, "cpio")
	cmd := exec.Command("cpio", "-itv", "--quiet")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -itv: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, prefix := range []string{"drwxr-xr-x", "drwxr-xr-x", "-rwsr-xr-x", "lrwxrwxrwx", "crw-------", "brw-rw----", "prw-r--r--", "-rw-r--r--", "-rw-------"} {
		if i >= len(lines) || !strings.HasPrefix(lines[i], prefix) || !strings.HasSuffix(lines[i], written[i].e.Name+linkSuffix(written[i].e)) {
			t.Errorf("cpio lists entry %d as %q, want %s ... %s", i, lines[min(i, len(lines)-1)], prefix, written[i].e.Name)
		}
	}
}

func linkSuffix(e Entry) string {
	if e.LinkTarget != "" {
		return " -> " + e.LinkTarget
	}
	return ""
}

func TestWriterRefuses(t *testing.T) {
	w := NewWriter(io.Discard)
	if err := w.WriteHeader(Entry{Name: "f", Mode: 0o644, Size: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("abc")); !errors.Is(err, ErrWriteTooLong) {
		t.Errorf("3 bytes into 2: %v, want ErrWriteTooLong", err)
	}
	w.Write([]byte("a"))
	if err := w.Close(); !errors.Is(err, ErrMissingData) {
		t.Errorf("Close with a byte missing: %v, want ErrMissingData", err)
	}
	for _, name := range []string{"", "a\x00b", strings.Repeat("x", maxPathLen)} {
		if err := NewWriter(io.Discard).WriteHeader(Entry{Name: name, Mode: 0o644}); !errors.Is(err, ErrName) {
			t.Errorf("name of %d bytes: %v, want ErrName", len(name), err)
		}
	}
}

// rewriteFixture is an initramfs as dracut and initramfs-tools build it:
// an early-microcode archive stored, then the main archive compressed by
// the real tool.
func rewriteFixture(t *testing.T, tool string, args ...string) (file []byte, early int) {
	t.Helper()
	testimage.RequireTools(t, "cpio")
	dir := t.TempDir()
	for name, data := range map[string]string{"early/kernel/x86/microcode/GenuineIntel.bin": "microcode", "main/init": "#!/bin/sh\n", "main/lib/modules/6.1.0/modules.dep": "old\n", "main/etc/keep": "kept"} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("lib", filepath.Join(dir, "main/lib64"))
	archive := func(d string) []byte {
		cmd := exec.Command("sh", "-c", "find . | sort | cpio -o -H newc -R 0:0 --quiet")
		cmd.Dir = filepath.Join(dir, d)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	e := archive("early")
	main := archive("main")
	if tool != "" {
		main = compress(t, main, tool, args...)
	}
	return append(e, main...), len(e)
}

// TestRewrite adds to and drops from the last archive of initramfs files
// compressed each way initrd writes, and has the guest's tools read the
// result: the real decompressor, and initramfs-tools' lsinitramfs, which
// sees only the last archive's first cpio stream.
func TestRewrite(t *testing.T) {
	for _, c := range []struct {
		name string
		tool string
		args []string
	}{
		{"none", "", nil},
		{"gzip", "gzip", []string{"-n", "-c"}},
		{"zstd", "zstd", []string{"-q", "-c", "-19"}},
		{"xz", "xz", []string{"--check=crc32", "-c"}},
		{"lzma", "xz", []string{"--format=lzma", "-c"}},
		{"lz4", "lz4", []string{"-l", "-q", "-c"}}, // Ubuntu 18.04-21.10's initramfs-tools default
	} {
		t.Run(c.name, func(t *testing.T) {
			in, early := rewriteFixture(t, c.tool, c.args...)
			var out bytes.Buffer
			keep := func(e Entry) bool { return e.Name != "lib/modules/6.1.0/modules.dep" }
			add := func(w *Writer) error {
				for _, e := range []Entry{
					{Name: "lib/modules/6.1.0/kernel", Mode: fs.ModeDir | 0o755},
					{Name: "lib/modules/6.1.0/kernel/hv_vmbus.ko", Mode: 0o644, Size: 4},
					{Name: "lib/modules/6.1.0/modules.dep", Mode: 0o644, Size: 4},
				} {
					if err := w.WriteHeader(e); err != nil {
						return err
					}
					if e.Mode.IsRegular() {
						io.WriteString(w, "new\n")
					}
				}
				return nil
			}
			if err := Rewrite(bytes.NewReader(in), int64(len(in)), &out, keep, add); err != nil {
				t.Fatal(err)
			}
			b := out.Bytes()
			if !bytes.Equal(b[:early], in[:early]) {
				t.Errorf("the early archive changed")
			}
			files := map[string]string{}
			var comp []string
			for _, w := range walkAll(t, b) {
				if w.e.Mode.IsRegular() {
					if _, dup := files[w.e.Name]; dup {
						t.Errorf("%s twice", w.e.Name)
					}
					files[w.e.Name] = w.data
				}
				if !slices.Contains(comp, w.seg.Compression) {
					comp = append(comp, w.seg.Compression)
				}
			}
			wantComp := []string{None}
			if c.tool != "" {
				wantComp = append(wantComp, map[string]string{"gzip": Gzip, "zstd": Zstd, "xz": XZ, "lzma": LZMA, "lz4": LZ4}[c.name])
			}
			if !slices.Equal(comp, wantComp) {
				t.Errorf("segments %v, want %v", comp, wantComp)
			}
			for name, want := range map[string]string{"init": "#!/bin/sh\n", "etc/keep": "kept", "lib/modules/6.1.0/modules.dep": "new\n", "lib/modules/6.1.0/kernel/hv_vmbus.ko": "new\n", "kernel/x86/microcode/GenuineIntel.bin": "microcode"} {
				if files[name] != want {
					t.Errorf("%s = %q, want %q", name, files[name], want)
				}
			}
			if c.tool != "" {
				compress(t, b[early:], c.tool, append(c.args[:len(c.args)-1:len(c.args)-1], "-t")...) // the real tool accepts the stream
			}
			path := filepath.Join(t.TempDir(), "initrd.img")
			os.WriteFile(path, b, 0o644)
			if c.name == "xz" {
				os.WriteFile(path+".xz", b[early:], 0o644)
				if out, _ := exec.Command("xz", "--robot", "--list", path+".xz").Output(); !strings.Contains(string(out), "CRC32") {
					t.Errorf("xz --list: %s; the kernel checks CRC32 only", out)
				}
			}
			if c.tool == "" {
				return // lsinitramfs fails on two stored archives, even GNU cpio's own
			}
			testimage.RequireTools(t, "lsinitramfs")
			list, err := exec.Command("lsinitramfs", path).CombinedOutput()
			if err != nil {
				t.Fatalf("lsinitramfs: %v\n%s", err, list)
			}
			for _, name := range []string{"lib/modules/6.1.0/kernel/hv_vmbus.ko", "etc/keep", "lib64"} {
				if !slices.Contains(strings.Fields(string(list)), name) {
					t.Errorf("lsinitramfs does not list %s:\n%s", name, list)
				}
			}
		})
	}
}

func TestRewriteRefusesWhatItCannotCompress(t *testing.T) {
	in, _ := rewriteFixture(t, "bzip2", "-c")
	err := Rewrite(bytes.NewReader(in), int64(len(in)), io.Discard, func(Entry) bool { return true }, func(*Writer) error { return nil })
	if !errors.Is(err, ErrRecompress) || !strings.Contains(err.Error(), "bzip2") {
		t.Errorf("Rewrite of a bzip2 initramfs: %v, want ErrRecompress naming bzip2", err)
	}
}

package kmod_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/kmod"
)

// elfModule builds the smallest relocatable ELF that depmod reads as a
// module: a .modinfo section with info, __ksymtab_strings naming the
// symbols it exports, and a symbol table with the symbols it uses
// (undefined), from which depmod works out its dependencies.
func elfModule(info, exports, uses []string) []byte {
	le := binary.LittleEndian
	join := func(ss []string) []byte {
		var b []byte
		for _, s := range ss {
			b = append(append(b, s...), 0)
		}
		return b
	}
	strtab := []byte{0}
	var symtab bytes.Buffer
	symtab.Write(make([]byte, 24)) // the null symbol
	for _, u := range uses {
		binary.Write(&symtab, le, struct {
			Name        uint32
			Info, Other uint8
			Shndx       uint16
			Value, Size uint64
		}{uint32(len(strtab)), 0x10, 0, 0, 0, 0}) // STB_GLOBAL, undefined
		strtab = append(append(strtab, u...), 0)
	}
	type section struct {
		name          string
		typ, link     uint32
		info, entsize uint64
		data          []byte
	}
	const strtabIndex = 4 // after null, .modinfo, __ksymtab_strings, .symtab
	secs := []section{
		{name: ".modinfo", typ: 1, data: join(info)},
		{name: "__ksymtab_strings", typ: 1, data: join(exports)},
		{name: ".symtab", typ: 2, link: strtabIndex, info: 1, entsize: 24, data: symtab.Bytes()},
		{name: ".strtab", typ: 3, data: strtab},
	}
	shstr := []byte{0}
	nameOff := make([]uint32, len(secs)+1)
	for i, s := range secs {
		nameOff[i] = uint32(len(shstr))
		shstr = append(append(shstr, s.name...), 0)
	}
	nameOff[len(secs)] = uint32(len(shstr))
	shstr = append(shstr, ".shstrtab\x00"...)
	secs = append(secs, section{name: ".shstrtab", typ: 3, data: shstr})

	const ehsize, shentsize = 64, 64
	var body bytes.Buffer
	dataOff := make([]uint64, len(secs))
	for i, s := range secs {
		for body.Len()%8 != 0 {
			body.WriteByte(0)
		}
		dataOff[i] = uint64(ehsize + body.Len())
		body.Write(s.data)
	}
	for body.Len()%8 != 0 {
		body.WriteByte(0)
	}
	shoff := uint64(ehsize + body.Len())

	var out bytes.Buffer
	out.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	binary.Write(&out, le, struct {
		Type, Machine              uint16
		Version                    uint32
		Entry, Phoff, Shoff        uint64
		Flags                      uint32
		Ehsize, Phentsize, Phnum   uint16
		Shentsize, Shnum, Shstrndx uint16
	}{1, 62, 1, 0, 0, shoff, 0, ehsize, 0, 0, shentsize, uint16(len(secs) + 1), uint16(len(secs))})
	out.Write(body.Bytes())
	out.Write(make([]byte, shentsize)) // the null section
	for i, s := range secs {
		binary.Write(&out, le, struct {
			Name, Type             uint32
			Flags, Addr, Off, Size uint64
			Link, Info             uint32
			Addralign, Entsize     uint64
		}{nameOff[i], s.typ, 0, 0, dataOff[i], uint64(len(s.data)), s.link, uint32(s.info), 8, s.entsize})
	}
	return out.Bytes()
}

// fixture is a small module tree with every kind of entry depmod writes:
// a diamond of dependencies, aliases with dashes and brackets, a soft
// dependency, a device node, and a symbol exported twice.
var fixture = []struct {
	path          string
	info          []string
	exports, uses []string
}{
	{"kernel/drivers/scsi/hv_storvsc.ko", []string{"depends=hv_vmbus,scsi_transport_fc", "alias=vmbus:d96ed83fd1e7d24f85fe3a98b59fac56", "alias=vmbus:32412632-86cb-44a2-9b5c-50d1417354f5"}, nil, []string{"vmbus_driver_unregister", "fc_attach_transport"}},
	{"kernel/drivers/hv/hv_vmbus.ko", []string{"depends=", "alias=acpi*:VMBUS:*", "alias=acpi*:VMBus:*"}, []string{"vmbus_driver_unregister", "__vmbus_driver_register"}, nil},
	{"kernel/drivers/scsi/scsi_transport_fc.ko", []string{"depends=scsi_common-x", "alias=scsi:t-0x[01]*"}, []string{"fc_attach_transport", "shared_sym"}, []string{"scsi_normalize_sense"}},
	{"kernel/drivers/scsi/scsi_common-x.ko", []string{"depends=", "softdep=pre: crc32c"}, []string{"scsi_normalize_sense", "shared_sym"}, nil},
	{"kernel/fs/fuse/fuse.ko", []string{"depends=", "alias=devname:fuse", "alias=char-major-10-229", "alias=fs-fuse"}, nil, nil},
	{"kernel/crypto/crc32c_generic.ko", []string{"depends=", "alias=crypto-crc32c", "alias=crc32c"}, nil, nil},
}

const fixtureVersion = "6.1.0-test"

// writeFixture writes the fixture's modules under root/lib/modules/VERSION
// and returns that directory and the modules read back.
func writeFixture(t *testing.T, root string) (string, []*kmod.Module) {
	t.Helper()
	dir := filepath.Join(root, "lib/modules", fixtureVersion)
	var mods []*kmod.Module
	for _, f := range fixture {
		b := elfModule(f.info, f.exports, f.uses)
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := kmod.Read(f.path, bytes.NewReader(b))
		if err != nil {
			t.Fatalf("Read(%s): %v", f.path, err)
		}
		mods = append(mods, m)
	}
	order := "kernel/drivers/hv/hv_vmbus.ko\nkernel/drivers/scsi/hv_storvsc.ko\n"
	if err := os.WriteFile(filepath.Join(dir, kmod.FileOrder), []byte(order), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, mods
}

func TestReadModinfoAndExports(t *testing.T) {
	b := elfModule([]string{"license=GPL", "depends=scsi_common-x,hv_vmbus", "alias=a-b[1-2]", "softdep=pre: crc32c", "weakdep=foo"}, []string{"s1", "s2"}, []string{"u1"})
	m, err := kmod.Read("kernel/x/my-mod.ko", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "my_mod" || m.Path != "kernel/x/my-mod.ko" {
		t.Errorf("name, path = %q, %q; want my_mod, kernel/x/my-mod.ko", m.Name, m.Path)
	}
	for _, c := range []struct {
		what      string
		got, want []string
	}{
		{"depends", m.Depends, []string{"scsi_common_x", "hv_vmbus"}},
		{"aliases", m.Aliases, []string{"a-b[1-2]"}},
		{"softdeps", m.SoftDeps, []string{"pre: crc32c"}},
		{"weakdeps", m.WeakDeps, []string{"foo"}},
		{"symbols", m.Symbols, []string{"s1", "s2"}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
}

func TestReadRefusesWhatIsNoModule(t *testing.T) {
	for name, c := range map[string]struct {
		path string
		data []byte
	}{
		"no suffix":   {"kernel/x/readme.txt", elfModule(nil, nil, nil)},
		"not ELF":     {"kernel/x/a.ko", []byte("#!/bin/sh\n")},
		"no modinfo":  {"kernel/x/a.ko", stripModinfo(elfModule(nil, nil, nil))},
		"corrupt xz":  {"kernel/x/a.ko.xz", []byte("\xfd7zXZ\x00garbage")},
		"corrupt gz":  {"kernel/x/a.ko.gz", []byte("\x1f\x8bgarbage")},
		"corrupt zst": {"kernel/x/a.ko.zst", []byte("\x28\xb5\x2f\xfdgarbage")},
	} {
		if _, err := kmod.Read(c.path, bytes.NewReader(c.data)); err == nil || !strings.Contains(err.Error(), c.path) {
			t.Errorf("%s: Read = %v, want an error naming %s", name, err, c.path)
		}
	}
	if _, err := kmod.Read("kernel/x/a.ko", bytes.NewReader([]byte("junk"))); !errors.Is(err, kmod.ErrNotModule) {
		t.Errorf("junk: %v, want ErrNotModule", err)
	}
}

// stripModinfo renames .modinfo so the file is ELF but no module.
func stripModinfo(b []byte) []byte {
	return bytes.Replace(b, []byte(".modinfo\x00"), []byte(".xodinfo\x00"), 1)
}

// TestReadCompressed reads modules compressed by the tools kernels'
// builds use, with the options they use (xz's CRC32 check, as the kernel
// requires), and finds what the uncompressed module holds.
func TestReadCompressed(t *testing.T) {
	testimage.RequireTools(t, "xz", "zstd", "gzip")
	plain := elfModule(fixture[2].info, fixture[2].exports, fixture[2].uses)
	want, err := kmod.Read("a.ko", bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	for suffix, argv := range map[string][]string{
		".ko.xz":  {"xz", "--check=crc32", "--lzma2=dict=1MiB", "-c"},
		".ko.zst": {"zstd", "-q", "-19", "-c"},
		".ko.gz":  {"gzip", "-n", "-9", "-c"},
	} {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdin = bytes.NewReader(plain)
		packed, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", argv[0], err)
		}
		got, err := kmod.Read("a"+suffix, bytes.NewReader(packed))
		if err != nil {
			t.Fatalf("%s: %v", suffix, err)
		}
		if got.Name != "a" || !slices.Equal(got.Depends, want.Depends) || !slices.Equal(got.Aliases, want.Aliases) || !slices.Equal(got.Symbols, want.Symbols) {
			t.Errorf("%s: read %+v, want %+v", suffix, got, want)
		}
	}
}

func TestDepmodRefusesACycle(t *testing.T) {
	mods := []*kmod.Module{
		{Name: "a", Path: "kernel/a.ko", Depends: []string{"b"}},
		{Name: "b", Path: "kernel/b.ko", Depends: []string{"a"}},
	}
	if _, err := kmod.Depmod(mods, nil); !errors.Is(err, kmod.ErrCycle) {
		t.Errorf("Depmod = %v, want ErrCycle", err)
	}
}

// TestDepmodAgreesWithDepmod writes the fixture's indexes and compares
// them with the host's depmod run on the same modules: the text files
// byte for byte, modules.dep as sets, and the binary indexes through the
// host's modprobe, which reads only them.
func TestDepmodAgreesWithDepmod(t *testing.T) {
	testimage.RequireTools(t, "depmod", "modprobe")
	host := t.TempDir()
	hostDir, _ := writeFixture(t, host)
	if out, err := exec.Command("depmod", "-b", host, fixtureVersion).CombinedOutput(); err != nil {
		t.Fatalf("depmod: %v\n%s", err, out)
	}
	ours := t.TempDir()
	ourDir, mods := writeFixture(t, ours)
	order, _ := os.ReadFile(filepath.Join(ourDir, kmod.FileOrder))
	files, err := kmod.Depmod(mods, order)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(ourDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	compareWithDepmod(t, hostDir, files)

	// Only the binary indexes: modprobe must resolve everything from them.
	for name := range files {
		if !strings.HasSuffix(name, ".bin") && name != kmod.FileSoftdep {
			os.Remove(filepath.Join(ourDir, name))
		}
	}
	for _, q := range []string{
		"hv_storvsc", "scsi-common-x", "fuse",
		"vmbus:d96ed83fd1e7d24f85fe3a98b59fac56", "acpi:VMBUS:", "scsi:t-0x1f", "devname:fuse", "char-major-10-229",
		"symbol:shared_sym", "symbol:vmbus_driver_unregister",
	} {
		want := testimage.ShowDepends(t, host, fixtureVersion, q)
		if got := testimage.ShowDepends(t, ours, fixtureVersion, q); got != want {
			t.Errorf("modprobe --show-depends %s: ours\n%s\ndepmod's\n%s", q, got, want)
		}
	}
}

// compareWithDepmod compares our text index files with depmod's in
// hostDir line for line. The order of lines is depmod's own where
// modules.order does not decide it (depmod lists modules it does not name
// in the order the directory yields them, and symbols by hash), so the
// lines compare as sets; in modules.dep ours must list a module's
// dependencies so that each is loaded before its users.
func compareWithDepmod(t *testing.T, hostDir string, files map[string][]byte) {
	t.Helper()
	for _, name := range []string{kmod.FileAlias, kmod.FileSoftdep, kmod.FileDevname, kmod.FileSymbols} {
		want, err := os.ReadFile(filepath.Join(hostDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(sortedLines(files[name]), sortedLines(want)) {
			t.Errorf("%s differs from depmod's:\nours\n%s\ndepmod's\n%s", name, files[name], want)
		}
	}
	want, err := os.ReadFile(filepath.Join(hostDir, kmod.FileDep))
	if err != nil {
		t.Fatal(err)
	}
	ourDeps, hostDeps := parseDep(files[kmod.FileDep]), parseDep(want)
	if len(ourDeps) != len(hostDeps) {
		t.Errorf("modules.dep lists %d modules, depmod's %d", len(ourDeps), len(hostDeps))
	}
	for mod, hd := range hostDeps {
		od, ok := ourDeps[mod]
		if !ok {
			t.Errorf("modules.dep has no line for %s", mod)
			continue
		}
		if !slices.Equal(sorted(od), sorted(hd)) {
			t.Errorf("%s needs %v, depmod says %v", mod, od, hd)
		}
		// Listed last loaded first: a module's own needs come after it.
		for i, d := range od {
			for _, dd := range ourDeps[d] {
				if j := slices.Index(od, dd); j < i {
					t.Errorf("%s: %s is listed before %s, which it needs", mod, d, dd)
				}
			}
		}
	}
}

func parseDep(b []byte) map[string][]string {
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		mod, rest, _ := strings.Cut(line, ":")
		deps[mod] = strings.Fields(rest)
	}
	return deps
}

func sortedLines(b []byte) []string {
	return sorted(strings.Split(string(b), "\n"))
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// TestDepmodOnDebianKernel runs both depmods on every module of Debian's
// cloud kernel.
func TestDepmodOnDebianKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("reads all of a kernel's modules")
	}
	testimage.RequireTools(t, "depmod", "modprobe")
	tree, version := testimage.DebianCloudKernel(t)
	dir := filepath.Join(tree, "lib/modules", version)
	var mods []*kmod.Module
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		m, err := kmod.Read(rel, f)
		mods = append(mods, m)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	order, _ := os.ReadFile(filepath.Join(dir, kmod.FileOrder))
	files, err := kmod.Depmod(mods, order)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("depmod", "-b", tree, version).CombinedOutput(); err != nil {
		t.Fatalf("depmod: %v\n%s", err, out)
	}
	compareWithDepmod(t, dir, files)

	ours := t.TempDir()
	ourDir := filepath.Join(ours, "lib/modules", version)
	if err := os.MkdirAll(ourDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "kernel"), filepath.Join(ourDir, "kernel")); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if strings.HasSuffix(name, ".bin") || name == kmod.FileSoftdep {
			if err := os.WriteFile(filepath.Join(ourDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Built-in modules' indexes are the kernel's, not Depmod's.
	for _, name := range []string{"modules.builtin.bin", "modules.builtin.alias.bin"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			if err := os.WriteFile(filepath.Join(ourDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, q := range []string{"hv_storvsc", "hv_netvsc", "hv_utils", "xfs", "btrfs", "nvme", "mlx5_ib", "symbol:vmbus_driver_unregister", "fs-xfs", "devname:btrfs-control"} {
		want := testimage.ShowDepends(t, tree, version, q)
		if got := testimage.ShowDepends(t, ours, version, q); got != want {
			t.Errorf("modprobe --show-depends %s: ours\n%s\ndepmod's\n%s", q, got, want)
		}
	}
	t.Logf("%d modules", len(mods))
}

// FuzzRead feeds module files that are not quite modules.
func FuzzRead(f *testing.F) {
	plain := elfModule(fixture[2].info, fixture[2].exports, fixture[2].uses)
	f.Add("a.ko", plain)
	f.Add("a.ko", stripModinfo(plain))
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(plain)
	w.Close()
	f.Add("a.ko.gz", gz.Bytes())
	f.Add("a.ko.xz", []byte("\xfd7zXZ\x00\x00\x01"))
	f.Add("a.ko.zst", []byte("\x28\xb5\x2f\xfd\x00\x00"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		m, err := kmod.Read(name, bytes.NewReader(data))
		if err == nil && m.Name == "" {
			t.Errorf("Read(%q) named no module", name)
		}
	})
}

package pkgdb

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// rpmDatabase builds packages with rpmbuild (no files; each description
// long enough that its header overflows an sqlite page, and enough of them
// that the table needs interior pages), records them in a fresh
// rpmdb.sqlite with rpm --justdb, and returns the database and what rpm
// itself lists ("name epoch:version-release" lines, sorted).
func rpmDatabase(t testing.TB, extra int) (db string, want []string) {
	t.Helper()
	testimage.RequireTools(t, "rpmbuild", "rpm")
	dir := t.TempDir()
	long := strings.Repeat("A description longer than an sqlite page. ", 200)
	var spec strings.Builder
	spec.WriteString("Name: vhdprep-test\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n%description\nx\n")
	pkgs := []string{"openssl-libs 1 1.0.1e 60.el7", "python3 0 3.6.8 21.el7", "python3-requests 0 2.6.0 10.el7"}
	for i := 0; i < extra; i++ {
		pkgs = append(pkgs, fmt.Sprintf("filler%d 0 %d.0 1", i, i))
	}
	for _, p := range pkgs {
		f := strings.Fields(p)
		fmt.Fprintf(&spec, "%%package -n %s\nEpoch: %s\nVersion: %s\nRelease: %s\nSummary: s\n%%description -n %s\n%s\n%%files -n %s\n", f[0], f[1], f[2], f[3], f[0], long, f[0])
	}
	specFile := filepath.Join(dir, "test.spec")
	if err := os.WriteFile(specFile, []byte(spec.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).Output()
		if err != nil {
			t.Fatalf("%s %s: %v %s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("rpmbuild", "--quiet", "--define", "_topdir "+filepath.Join(dir, "top"), "-bb", specFile)
	rpms, _ := filepath.Glob(filepath.Join(dir, "top/RPMS/noarch/*.rpm"))
	root := filepath.Join(dir, "root")
	rpmArgs := []string{"--root", root, "--dbpath", "/var/lib/rpm"}
	run("rpm", append(rpmArgs, "--initdb")...)
	run("rpm", append(append(rpmArgs, "-i", "--nodeps", "--justdb", "--noscripts"), rpms...)...)
	for _, line := range strings.Split(strings.TrimSpace(run("rpm", append(rpmArgs, "-qa", "--qf", "%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE}\n")...)), "\n") {
		want = append(want, strings.Replace(line, " 0:", " ", 1))
	}
	sort.Strings(want)
	return filepath.Join(root, "var/lib/rpm/rpmdb.sqlite"), want
}

func listed(ps []Package) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name+" "+p.Version)
	}
	sort.Strings(out)
	return out
}

// ParseRPMSqlite lists what rpm -qa lists, through overflow and interior
// pages.
func TestParseRPMSqlite(t *testing.T) {
	db, want := rpmDatabase(t, 40)
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := ParseRPMSqlite(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if got := listed(ps); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant (rpm -qa)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(strings.Join(want, "\n"), "openssl-libs 1:1.0.1e-60.el7") || len(want) != 43 {
		t.Fatalf("rpm -qa: %v", want)
	}
	// Read's way: the file where it lies, in a guest tree.
	fsys := os.DirFS(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(db)))))
	got, err := Read(fsys)
	if err != nil || got == nil || got.Kind != RPM || got.Path != "/var/lib/rpm/rpmdb.sqlite" || len(got.Packages) != 43 {
		t.Fatalf("Read: %+v, %v", got, err)
	}
	// Cut short anywhere, the file gives an error or fewer packages, never a panic.
	for _, n := range []int{100, 4096, 5000, len(b) / 2, len(b) - 1} {
		ps, err := ParseRPMSqlite(bytes.NewReader(b[:n]), int64(n))
		if err == nil && len(ps) > 43 {
			t.Fatalf("%d bytes: %d packages", n, len(ps))
		}
	}
}

// tinySqlite is the smallest rpmdb.sqlite: 512-byte pages, the schema on
// page 1 naming Packages' root page 2, which holds one row (NULL, blob).
func tinySqlite(blob []byte) []byte {
	const pageSize = 512
	db := make([]byte, 2*pageSize)
	copy(db, "SQLite format 3\x00")
	db[16], db[17], db[18], db[19], db[21], db[22], db[23], db[31] = 0x02, 0x00, 1, 1, 64, 32, 32, 2
	varint := func(v int) []byte {
		if v < 0x80 {
			return []byte{byte(v)}
		}
		return []byte{0x80 | byte(v>>7), byte(v & 0x7f)}
	}
	leaf := func(page, hdr int, record []byte) {
		cell := append(append(varint(len(record)), 1), record...) // rowid 1
		at := (page+1)*pageSize - len(cell)
		copy(db[at:], cell)
		b := db[page*pageSize+hdr:]
		b[0], b[4], b[5], b[6], b[8], b[9] = 0x0d, 1, byte((at%pageSize)>>8), byte(at%pageSize), byte((at%pageSize)>>8), byte(at%pageSize)
	}
	leaf(0, 100, []byte("\x06\x17\x1d\x1d\x01\x0ftablePackagesPackages\x02x"))
	leaf(1, 0, append(append([]byte{byte(2 + len(varint(12+2*len(blob)))), 0}, varint(12+2*len(blob))...), blob...))
	return db
}

func TestParseTinyRPMSqlite(t *testing.T) {
	b := tinySqlite([]byte(rpmHeader))
	ps, err := ParseRPMSqlite(bytes.NewReader(b), int64(len(b)))
	if err != nil || len(ps) != 1 || ps[0] != (Package{"openssl", "2:1.0"}) {
		t.Fatalf("got %+v, %v", ps, err)
	}
	b[512] = 0x0a // an index page where a table's should be
	if _, err := ParseRPMSqlite(bytes.NewReader(b), int64(len(b))); err == nil || !strings.Contains(err.Error(), "not a table b-tree page") {
		t.Fatalf("got %v", err)
	}
}

// FuzzParseRPMSqlite: any file parses without panicking to packages with a
// name and a version.
func FuzzParseRPMSqlite(f *testing.F) {
	f.Add(tinySqlite([]byte(rpmHeader)))
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := ParseRPMSqlite(bytes.NewReader(b), int64(len(b)))
		if err == nil {
			checkPackages(t, ps)
		}
	})
}

// rpmHeader is a header blob of three entries in 16 bytes of data: NAME at
// 0, VERSION at 8, EPOCH (a 32-bit integer) at 12.
const rpmHeader = "\x00\x00\x00\x03\x00\x00\x00\x10" +
	"\x00\x00\x03\xe8\x00\x00\x00\x06\x00\x00\x00\x00\x00\x00\x00\x01" +
	"\x00\x00\x03\xe9\x00\x00\x00\x06\x00\x00\x00\x08\x00\x00\x00\x01" +
	"\x00\x00\x03\xeb\x00\x00\x00\x04\x00\x00\x00\x0c\x00\x00\x00\x01" +
	"openssl\x001.0\x00\x00\x00\x00\x02"

// FuzzParseRPMHeader: any header blob parses without panicking.
func FuzzParseRPMHeader(f *testing.F) {
	f.Add([]byte(rpmHeader))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, ok := parseRPMHeader(b); ok {
			checkPackages(t, []Package{p})
		}
	})
}

func TestParseRPMHeader(t *testing.T) {
	b := []byte(rpmHeader)
	if p, ok := parseRPMHeader(b); !ok || p != (Package{"openssl", "2:1.0"}) {
		t.Fatalf("got %+v %v", p, ok)
	}
	if _, ok := parseRPMHeader(b[:40]); ok {
		t.Fatal("a header cut short gave a package")
	}
}

package pkgdb

import (
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

const dpkgStatusText = `Package: libssl3
Status: install ok installed
Priority: optional
Architecture: amd64
Version: 3.0.11-1~deb12u2
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation.
 Version: 0.0 (a continuation line, not a field)

Package: libssl1.1
Status: deinstall ok config-files
Version: 1.1.1n-0+deb11u5

Package: python3.11
Status: install ok half-configured
Version: 3.11.2-6

Package: python3-minimal
Status: install ok installed
Version: 3.11.2-1+b1
`

const apkInstalledText = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nC:Q1def=\nP:libssl3\nV:3.1.4-r5\nA:x86_64\nT:SSL shared libraries\n\nP:python3\nV:3.11.6-r1\n"

const pacmanDescText = "%NAME%\nopenssl\n\n%VERSION%\n3.2.0-1\n\n%BASE%\nopenssl\n\n%DESC%\nThe Open Source toolkit for Secure Sockets Layer\n"

func TestParseDpkgStatus(t *testing.T) {
	got := ParseDpkgStatus([]byte(dpkgStatusText))
	want := []Package{{"libssl3", "3.0.11-1~deb12u2"}, {"python3-minimal", "3.11.2-1+b1"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Windows line ends, as a status file copied through a tool might have.
	if got := ParseDpkgStatus([]byte(strings.ReplaceAll(dpkgStatusText, "\n", "\r\n"))); !reflect.DeepEqual(got, want) {
		t.Fatalf("CRLF: got %v, want %v", got, want)
	}
}

func TestParseAPKInstalled(t *testing.T) {
	got := ParseAPKInstalled([]byte(apkInstalledText))
	want := []Package{{"musl", "1.2.4-r2"}, {"libssl3", "3.1.4-r5"}, {"python3", "3.11.6-r1"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestParsePacmanDesc(t *testing.T) {
	p, ok := ParsePacmanDesc([]byte(pacmanDescText))
	if !ok || p != (Package{"openssl", "3.2.0-1"}) {
		t.Fatalf("got %v %v", p, ok)
	}
	if _, ok := ParsePacmanDesc([]byte("%NAME%\nopenssl\n")); ok {
		t.Fatal("a desc without %VERSION% gave a package")
	}
}

func TestRead(t *testing.T) {
	for _, c := range []struct {
		name     string
		fsys     fstest.MapFS
		kind     string
		packages int
		err      string
	}{
		{"dpkg", fstest.MapFS{dpkgStatus: {Data: []byte(dpkgStatusText)}}, Dpkg, 2, ""},
		{"apk", fstest.MapFS{apkInstalled: {Data: []byte(apkInstalledText)}}, APK, 3, ""},
		{"pacman", fstest.MapFS{
			pacmanLocal + "/ALPM_DB_VERSION":       {Data: []byte("9\n")},
			pacmanLocal + "/openssl-3.2.0-1/desc":  {Data: []byte(pacmanDescText)},
			pacmanLocal + "/python-3.11.6-1/desc":  {Data: []byte("%NAME%\npython\n\n%VERSION%\n3.11.6-1\n")},
			pacmanLocal + "/python-3.11.6-1/files": {Data: []byte("%FILES%\nusr/\n")},
			pacmanLocal + "/broken-1-1/mtree":      {Data: []byte("x")},
		}, Pacman, 2, ""},
		{"empty status file", fstest.MapFS{dpkgStatus: {Data: nil}}, Dpkg, 0, ""},
		{"none read: BerkeleyDB", fstest.MapFS{"var/lib/rpm/Packages": {Data: []byte("\x00\x06\x15\x61")}}, "", 0, ""},
		{"rpm sqlite not a database", fstest.MapFS{"var/lib/rpm/rpmdb.sqlite": {Data: []byte("SQLite format 3\x00")}}, "", 0, "/var/lib/rpm/rpmdb.sqlite: not an SQLite 3 database"},
		{"rpm sqlite with a WAL", fstest.MapFS{"usr/lib/sysimage/rpm/rpmdb.sqlite": {Data: []byte("SQLite format 3\x00")}, "usr/lib/sysimage/rpm/rpmdb.sqlite-wal": {Data: []byte("x")}}, "", 0, "/usr/lib/sysimage/rpm/rpmdb.sqlite-wal holds changes"},
		{"unreadable status file", fstest.MapFS{dpkgStatus + "/x": {Data: nil}}, "", 0, "/var/lib/dpkg/status: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, err := Read(c.fsys)
			switch {
			case c.err != "":
				if err == nil || !strings.HasPrefix(err.Error(), c.err) {
					t.Fatalf("got %v, %v; want error %q", db, err, c.err)
				}
			case err != nil:
				t.Fatal(err)
			case c.kind == "":
				if db != nil {
					t.Fatalf("got %+v, want none", db)
				}
			case db == nil || db.Kind != c.kind || len(db.Packages) != c.packages:
				t.Fatalf("got %+v, want %s with %d packages", db, c.kind, c.packages)
			}
		})
	}
}

// hugeFS says its files are larger than any package database.
type hugeFS struct{ fstest.MapFS }

type hugeInfo struct{ fs.FileInfo }

func (hugeInfo) Size() int64 { return 1 << 40 }

func (h hugeFS) Stat(name string) (fs.FileInfo, error) {
	fi, err := h.MapFS.Stat(name)
	if err != nil {
		return nil, err
	}
	return hugeInfo{fi}, nil
}

func TestReadRefusesHugeDatabases(t *testing.T) {
	fsys := hugeFS{fstest.MapFS{apkInstalled: {Data: []byte(apkInstalledText), ModTime: time.Unix(0, 0)}}}
	if _, err := Read(fsys); err == nil || !strings.Contains(err.Error(), "more than the") {
		t.Fatalf("got %v, want a size error", err)
	}
}

// The fuzz targets: any input parses without panicking to packages that
// have a name and a version, free of line breaks.

func checkPackages(t *testing.T, ps []Package) {
	for _, p := range ps {
		if p.Name == "" || p.Version == "" || strings.ContainsAny(p.Name+p.Version, "\n") {
			t.Fatalf("package %q", p)
		}
	}
}

func FuzzParseDpkgStatus(f *testing.F) {
	f.Add([]byte(dpkgStatusText))
	f.Add([]byte("Package: a\nStatus: install ok installed\nVersion: 1\n\n\n \nPackage:\n"))
	f.Fuzz(func(t *testing.T, b []byte) { checkPackages(t, ParseDpkgStatus(b)) })
}

func FuzzParseAPKInstalled(f *testing.F) {
	f.Add([]byte(apkInstalledText))
	f.Add([]byte("P:\nV:1\n\r\nP:a\nV: \n"))
	f.Fuzz(func(t *testing.T, b []byte) { checkPackages(t, ParseAPKInstalled(b)) })
}

func FuzzParsePacmanDesc(f *testing.F) {
	f.Add([]byte(pacmanDescText))
	f.Add([]byte("%\n%NAME%\n%VERSION%\n\n%VERSION%\n1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, ok := ParsePacmanDesc(b); ok {
			checkPackages(t, []Package{p})
		}
	})
}

// streamFS hides ReadAt from its files, as a filesystem that can only
// stream them does.
type streamFS struct{ fs.FS }

func (s streamFS) Open(name string) (fs.File, error) {
	f, err := s.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return struct{ fs.File }{f}, nil
}

// An rpm database on a filesystem without reads at an offset is read into
// memory instead.
func TestReadRPMSqliteWithoutReadAt(t *testing.T) {
	fsys := streamFS{fstest.MapFS{"var/lib/rpm/rpmdb.sqlite": {Data: []byte("SQLite format 3\x00")}}}
	if _, err := Read(fsys); err == nil || !strings.HasPrefix(err.Error(), "/var/lib/rpm/rpmdb.sqlite: not an SQLite 3 database") {
		t.Fatalf("got %v, want the database read and refused as not SQLite", err)
	}
}

// Package pkgdb reads which packages a Linux guest has installed, and
// their versions, from its package manager's database: dpkg's status
// file, apk's installed file, pacman's local directory or rpm's sqlite
// database. rpm's older BerkeleyDB and SUSE's ndb databases are not read.
package pkgdb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// Package is one installed package.
type Package struct {
	Name    string
	Version string
}

// Kinds of database.
const (
	Dpkg   = "dpkg"
	APK    = "apk"
	Pacman = "pacman"
	RPM    = "rpm"
)

// DB is a guest's installed packages and where they were read from.
type DB struct {
	Kind     string
	Path     string // the status file or directory, inside the guest with a leading slash
	Packages []Package
}

// Where each database lives, and how much of it is read: a large Debian
// desktop's status file is a few MiB, a pacman desc file a few KiB.
const (
	dpkgStatus      = "var/lib/dpkg/status"
	apkInstalled    = "lib/apk/db/installed"
	pacmanLocal     = "var/lib/pacman/local"
	maxDatabaseSize = 64 << 20
	maxDescSize     = 1 << 20
	maxPacmanDirs   = 100000
)

// Where rpm's sqlite database lives: /var/lib/rpm, or /usr/lib/sysimage/rpm
// (Fedora 36 and later; /var/lib/rpm links there).
var rpmSqlites = []string{"var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite"}

// UnreadRPMDatabases are the rpm databases pkgdb cannot read: BerkeleyDB
// (RHEL 8 and older) and ndb (SUSE).
var UnreadRPMDatabases = []string{"var/lib/rpm/Packages", "var/lib/rpm/Packages.db", "usr/lib/sysimage/rpm/Packages.db"}

// Read reads the first database the guest has of dpkg, apk, pacman and
// rpm's sqlite; nil and no error when it has none. A database that exists but cannot be
// read, or is larger than any real one, is an error.
func Read(fsys fs.FS) (*DB, error) {
	if b, err := readBounded(fsys, dpkgStatus, maxDatabaseSize); b != nil || err != nil {
		if err != nil {
			return nil, err
		}
		return &DB{Kind: Dpkg, Path: "/" + dpkgStatus, Packages: ParseDpkgStatus(b)}, nil
	}
	if b, err := readBounded(fsys, apkInstalled, maxDatabaseSize); b != nil || err != nil {
		if err != nil {
			return nil, err
		}
		return &DB{Kind: APK, Path: "/" + apkInstalled, Packages: ParseAPKInstalled(b)}, nil
	}
	db, err := readPacman(fsys)
	if db != nil || err != nil {
		return db, err
	}
	return readRPMSqlite(fsys)
}

// readRPMSqlite reads rpmdb.sqlite where it lies when its filesystem
// allows reads at an offset (sqlite databases of large installs run to
// hundreds of MiB), else into memory, bounded.
func readRPMSqlite(fsys fs.FS) (*DB, error) {
	for _, name := range rpmSqlites {
		f, err := fsys.Open(name)
		if isNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("/%s: %v; check the image's filesystem", name, err)
		}
		defer f.Close()
		if wal, err := fs.Stat(fsys, name+"-wal"); err == nil && wal.Size() > 0 {
			return nil, fmt.Errorf("/%s-wal holds changes not yet written to /%s; boot the guest once (or run rpm -qa in it) so rpm writes them", name, name)
		}
		fi, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("/%s: %v", name, err)
		}
		r, size := io.ReaderAt(nil), fi.Size()
		if ra, ok := f.(io.ReaderAt); ok {
			r = ra
		} else {
			b, err := readBounded(fsys, name, maxDatabaseSize)
			if err != nil {
				return nil, err
			}
			r, size = bytes.NewReader(b), int64(len(b))
		}
		ps, err := ParseRPMSqlite(r, size)
		if err != nil {
			return nil, fmt.Errorf("/%s: %v; check it with rpm --rebuilddb in the guest", name, err)
		}
		return &DB{Kind: RPM, Path: "/" + name, Packages: ps}, nil
	}
	return nil, nil
}

// readBounded reads a file of at most limit bytes; a missing file is
// (nil, nil).
func readBounded(fsys fs.FS, name string, limit int64) ([]byte, error) {
	fi, err := fs.Stat(fsys, name)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("/%s: %v; check the image's filesystem", name, err)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("/%s: %d bytes, more than the %d a package database has; it is not read", name, fi.Size(), limit)
	}
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("/%s: %v; check the image's filesystem", name, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

func readPacman(fsys fs.FS) (*DB, error) {
	ents, err := fs.ReadDir(fsys, pacmanLocal)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("/%s: %v; check the image's filesystem", pacmanLocal, err)
	}
	if len(ents) > maxPacmanDirs {
		return nil, fmt.Errorf("/%s: %d entries, more than the %d a package database has; it is not read", pacmanLocal, len(ents), maxPacmanDirs)
	}
	db := &DB{Kind: Pacman, Path: "/" + pacmanLocal}
	for _, e := range ents {
		if !e.IsDir() {
			continue // ALPM_DB_VERSION
		}
		b, err := readBounded(fsys, path.Join(pacmanLocal, e.Name(), "desc"), maxDescSize)
		if err != nil {
			return nil, err
		}
		if p, ok := ParsePacmanDesc(b); ok {
			db.Packages = append(db.Packages, p)
		}
	}
	return db, nil
}

// ParseDpkgStatus reads dpkg's status file: paragraphs of "Field: value"
// lines. Only packages whose Status ends in "installed" count (not those
// removed with their configuration kept, nor half-installed ones).
func ParseDpkgStatus(b []byte) []Package {
	var out []Package
	for _, para := range paragraphs(b) {
		var p Package
		installed := false
		for _, line := range para {
			k, v, ok := strings.Cut(line, ":")
			if !ok || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
				continue // a continuation line
			}
			v = strings.TrimSpace(v)
			switch k {
			case "Package":
				p.Name = v
			case "Version":
				p.Version = v
			case "Status":
				f := strings.Fields(v)
				installed = len(f) == 3 && f[2] == "installed"
			}
		}
		if installed && p.Name != "" && p.Version != "" {
			out = append(out, p)
		}
	}
	return out
}

// ParseAPKInstalled reads apk's installed database: paragraphs of "X:value"
// lines, P the package's name and V its version.
func ParseAPKInstalled(b []byte) []Package {
	var out []Package
	for _, para := range paragraphs(b) {
		var p Package
		for _, line := range para {
			switch {
			case strings.HasPrefix(line, "P:"):
				p.Name = strings.TrimSpace(line[2:])
			case strings.HasPrefix(line, "V:"):
				p.Version = strings.TrimSpace(line[2:])
			}
		}
		if p.Name != "" && p.Version != "" {
			out = append(out, p)
		}
	}
	return out
}

// ParsePacmanDesc reads one package's desc file: "%FIELD%" lines, each
// followed by its values, one a line, up to a blank line.
func ParsePacmanDesc(b []byte) (Package, bool) {
	var p Package
	field := ""
	for _, line := range splitLines(b) {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			field = ""
		case strings.HasPrefix(line, "%") && strings.HasSuffix(line, "%") && len(line) > 1:
			field = line
		case field == "%NAME%" && p.Name == "":
			p.Name = line
		case field == "%VERSION%" && p.Version == "":
			p.Version = line
		}
	}
	return p, p.Name != "" && p.Version != ""
}

// paragraphs splits text into blank-line separated groups of lines.
func paragraphs(b []byte) [][]string {
	var out [][]string
	var cur []string
	for _, line := range splitLines(b) {
		if strings.TrimSpace(line) == "" {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, strings.TrimRight(line, "\r"))
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// splitLines splits b into lines of any length (a database's long
// Description or Conffiles lines included).
func splitLines(b []byte) []string { return strings.Split(string(b), "\n") }

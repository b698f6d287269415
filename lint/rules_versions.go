package lint

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"github.com/vhdprep/vhdprep/pkgdb"
	"github.com/vhdprep/vhdprep/rootfs"
)

// minimumVersion is software OS002 wants new enough: the packages that
// carry it, and the version-named files that tell its version where no
// package database is read (rpm's BerkeleyDB on RHEL 8 and older).
type minimumVersion struct {
	name, minimum string
	packages      *regexp.Regexp
	files         []string       // globs
	fileVersion   *regexp.Regexp // the version in a file's name
}

var minimumVersions = []minimumVersion{
	{
		name: "OpenSSL", minimum: "1.0.2",
		// openssl, openssl-libs, openssl11-libs, libssl3, libssl1.0.0, libssl3t64, openssl-1.1
		packages: regexp.MustCompile(`^(openssl|libssl)-?[0-9.]*(t64)?(-libs)?$`),
		files:    []string{"usr/lib64/libssl.so.*", "lib64/libssl.so.*", "usr/lib/libssl.so.*", "lib/libssl.so.*", "usr/lib/*-linux-gnu/libssl.so.*", "lib/*-linux-gnu/libssl.so.*"},
		// RHEL names the library by release (libssl.so.1.0.2k); a name of
		// one number (libssl.so.10, .6, .3) or 1.0.0 is a soname that
		// several releases share, and tells nothing.
		fileVersion: regexp.MustCompile(`^libssl\.so\.([0-9]+(?:\.[0-9]+)+[a-z]?)$`),
	},
	{
		name: "Python", minimum: "3.9",
		// python, python2.7, python3, python3.11, python3-minimal, python39;
		// not python3-requests and other modules.
		packages:    regexp.MustCompile(`^python([23](\.[0-9]+)?|3[0-9]+)?(-minimal)?$`),
		files:       []string{"usr/bin/python*", "usr/local/bin/python*"},
		fileVersion: regexp.MustCompile(`^python([0-9]+\.[0-9]+)m?$`),
	},
}

// sharedSoname is the one dotted libssl soname several releases carry
// (Debian and SUSE's 1.0.0 for OpenSSL 1.0.0 to 1.0.2).
const sharedSoname = "1.0.0"

// installedVersion is the newest version found of a minimumVersion's
// software, and where.
type installedVersion struct {
	version, from, file string
}

func checkVersions(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	db, err := pkgdb.Read(root)
	if err != nil {
		return nil, Skip("the package database is not readable: %v", err)
	}
	var fs []Finding
	found := false
	for _, m := range minimumVersions {
		var v installedVersion
		var ok bool
		if db != nil {
			v, ok = m.newestPackage(db)
		} else {
			v, ok = m.newestFile(root)
		}
		found = found || ok
		if !ok || pkgdb.Compare(pkgdb.Upstream(v.version), m.minimum) >= 0 {
			continue
		}
		fs = append(fs, Finding{
			Message:  fmt.Sprintf("%s %s (%s) is older than %s", m.name, v.version, v.from, m.minimum),
			Location: Location{File: v.file},
			Fix:      "upgrade it with the guest's package manager, or build the image from a newer release",
		})
	}
	if db == nil && !found {
		if existsAny(root, pkgdb.UnreadRPMDatabases) {
			return nil, Skip("rpm's BerkeleyDB or ndb database is not read, and no version-named libssl.so.X.Y or pythonX.Y file tells the versions")
		}
		return nil, Skip("no package database (dpkg, apk, pacman, rpm sqlite) and no version-named libssl.so.X.Y or pythonX.Y file")
	}
	return fs, nil
}

func (m minimumVersion) newestPackage(db *pkgdb.DB) (installedVersion, bool) {
	var best installedVersion
	ok := false
	for _, p := range db.Packages {
		if m.packages.MatchString(p.Name) && (!ok || pkgdb.Compare(pkgdb.Upstream(p.Version), pkgdb.Upstream(best.version)) > 0) {
			best, ok = installedVersion{p.Version, "package " + p.Name + " in the " + db.Kind + " database, the newest", db.Path}, true
		}
	}
	return best, ok
}

func (m minimumVersion) newestFile(root rootfs.FS) (installedVersion, bool) {
	var best installedVersion
	ok := false
	for _, pattern := range m.files {
		names, _ := fs.Glob(root, pattern)
		for _, name := range names {
			sub := m.fileVersion.FindStringSubmatch(path.Base(name))
			if sub == nil || sub[1] == sharedSoname {
				continue
			}
			if !ok || pkgdb.Compare(sub[1], best.version) > 0 {
				best, ok = installedVersion{sub[1], "from the file name /" + name + ", the newest; no package database this reads", "/" + name}, true
			}
		}
	}
	return best, ok
}

// describeMinimums is the rule's requirement in words, for the catalog.
func describeMinimums() string {
	var parts []string
	for _, m := range minimumVersions {
		parts = append(parts, m.name+" >= "+m.minimum)
	}
	return strings.Join(parts, " and ")
}

package lint

import (
	"strings"
	"testing"
)

func TestVersionsRule(t *testing.T) {
	dpkg := func(pkgs ...string) map[string]string {
		var b strings.Builder
		for _, p := range pkgs {
			name, version, _ := strings.Cut(p, " ")
			b.WriteString("Package: " + name + "\nStatus: install ok installed\nVersion: " + version + "\n\n")
		}
		return map[string]string{"var/lib/dpkg/status": b.String()}
	}
	cases := []struct {
		name  string
		files map[string]string
		want  Status
		msg   []string // each in one finding's message, in order; or in the skip reason
		file  string   // the first finding's file
	}{
		{"dpkg current", dpkg("libssl3 3.0.11-1~deb12u2", "python3.11 3.11.2-6", "python3-requests 2.28.1+dfsg-1"), Passed, nil, ""},
		{"dpkg old", dpkg("libssl1.0.0 1.0.1t-1+deb8u12", "python3.4 3.4.2-1", "python3-requests 2.4.3-6"), Failed,
			[]string{"OpenSSL 1.0.1t-1+deb8u12 (package libssl1.0.0 in the dpkg database, the newest) is older than 1.0.2", "Python 3.4.2-1 (package python3.4"}, "/var/lib/dpkg/status"},
		{"the newest counts", dpkg("python2.7 2.7.18-8", "python3-minimal 3.11.2-1+b1", "openssl 1.1.1n-0+deb11u5"), Passed, nil, ""},
		{"removed packages do not count", map[string]string{"var/lib/dpkg/status": "Package: libssl1.0.0\nStatus: deinstall ok config-files\nVersion: 1.0.1t-1\n"}, Passed, nil, ""},
		{"apk", map[string]string{"lib/apk/db/installed": "P:libssl1.1\nV:1.1.1w-r1\n\nP:python3\nV:3.8.15-r0\n"}, Failed, []string{"Python 3.8.15-r0 (package python3 in the apk database"}, "/lib/apk/db/installed"},
		{"pacman", map[string]string{"var/lib/pacman/local/python-3.11.6-1/desc": "%NAME%\npython\n\n%VERSION%\n3.11.6-1\n", "var/lib/pacman/local/openssl-3.2.0-1/desc": "%NAME%\nopenssl\n\n%VERSION%\n3.2.0-1\n"}, Passed, nil, ""},
		{"rpm: file names", map[string]string{"var/lib/rpm/Packages": "", "usr/lib64/libssl.so.10": "->libssl.so.1.0.1e", "usr/lib64/libssl.so.1.0.1e": "", "usr/bin/python3.6": "", "usr/bin/python3.6m": "", "usr/bin/python3.9": ""}, Failed,
			[]string{"OpenSSL 1.0.1e (from the file name /usr/lib64/libssl.so.1.0.1e, the newest; no package database this reads) is older than 1.0.2"}, "/usr/lib64/libssl.so.1.0.1e"},
		{"rpm: RHEL 8", map[string]string{"var/lib/rpm/Packages": "", "usr/lib64/libssl.so.1.1.1k": "", "usr/lib64/libssl.so.1.1": "->libssl.so.1.1.1k", "usr/bin/python3.6": ""}, Failed, []string{"Python 3.6 (from the file name /usr/bin/python3.6"}, "/usr/bin/python3.6"},
		{"a shared soname tells nothing", map[string]string{"usr/lib/x86_64-linux-gnu/libssl.so.1.0.0": "", "usr/bin/python3.10": ""}, Passed, nil, ""},
		{"rpm: nothing version-named", map[string]string{"var/lib/rpm/Packages": "", "usr/lib64/libssl.so.3": ""}, Skipped, []string{"rpm's BerkeleyDB or ndb database is not read"}, ""},
		{"rpm sqlite unreadable", map[string]string{"var/lib/rpm/rpmdb.sqlite": "not a database", "usr/lib64/libssl.so.1.0.1e": ""}, Skipped, []string{"/var/lib/rpm/rpmdb.sqlite: not an SQLite 3 database"}, ""},
		{"no database", map[string]string{"etc/hostname": "x"}, Skipped, []string{"no package database"}, ""},
		{"database unreadable", map[string]string{"var/lib/dpkg/status/x": ""}, Skipped, []string{"the package database is not readable: /var/lib/dpkg/status"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := outcome(t, tree(t, c.files), "OS002")
			if o.Status != c.want {
				t.Fatalf("status %s, want %s: %+v", o.Status, c.want, o)
			}
			if c.want == Skipped {
				if !strings.Contains(o.Reason, c.msg[0]) {
					t.Fatalf("reason %q, want %q in it", o.Reason, c.msg[0])
				}
				return
			}
			if len(o.Findings) != len(c.msg) {
				t.Fatalf("findings %+v, want %d", o.Findings, len(c.msg))
			}
			for i, m := range c.msg {
				if !strings.Contains(o.Findings[i].Message, m) {
					t.Errorf("finding %d: %q, want %q in it", i, o.Findings[i].Message, m)
				}
			}
			if len(o.Findings) > 0 && o.Findings[0].Location.File != c.file {
				t.Errorf("location %q, want %q", o.Findings[0].Location.File, c.file)
			}
		})
	}
}

package extension

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnpackKeepsModesAndRenamesIntoPlace(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "Pub.Ext-1.0")
	pkg := buildZip(t,
		zipEntry{name: "HandlerManifest.json", body: "[]"},
		zipEntry{name: "bin/", mode: fs.ModeDir | 0o755},
		zipEntry{name: "bin/enable.sh", body: "#!/bin/sh\n", mode: 0o755},
		zipEntry{name: `scripts\win.txt`, body: "x"},
	)
	if err := Unpack(pkg, dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "bin", "enable.sh"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("enable.sh: %v %v, want mode 0755", fi, err)
	}
	// Every file is executable by its owner, as WALinuxAgent makes them.
	if fi, err := os.Stat(filepath.Join(dir, "HandlerManifest.json")); err != nil || fi.Mode().Perm() != 0o744 {
		t.Fatalf("HandlerManifest.json: %v %v, want mode 0744", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "scripts", "win.txt")); err != nil {
		t.Errorf("backslash name not unpacked as a path: %v", err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Errorf("left %d entries beside the handler, want only it", len(entries))
	}
	if err := Unpack(pkg, dir); err == nil {
		t.Error("unpacking over an existing handler directory succeeded")
	}
}

func TestUnpackKeepsRelativeLinksInside(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Pub.Ext-1.0")
	pkg := buildZip(t,
		zipEntry{name: "scripts/run.sh", body: "#!/bin/sh\n", mode: 0o755},
		zipEntry{name: "bin/run", body: "../scripts/run.sh", mode: fs.ModeSymlink | 0o777},
		zipEntry{name: "current", body: ".", mode: fs.ModeSymlink | 0o777},
	)
	if err := Unpack(pkg, dir); err != nil {
		t.Fatal(err)
	}
	if to, err := os.Readlink(filepath.Join(dir, "bin", "run")); err != nil || to != "../scripts/run.sh" {
		t.Errorf("bin/run links to %q, %v", to, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "current", "bin", "run")); err != nil || string(b) != "#!/bin/sh\n" {
		t.Errorf("reading through the links: %q %v", b, err)
	}
}

func TestUnpackRefusesEscapes(t *testing.T) {
	link := func(name, to string) zipEntry { return zipEntry{name: name, body: to, mode: fs.ModeSymlink | 0o777} }
	for name, es := range map[string][]zipEntry{
		"symlink":          {link("link", "/etc/passwd")},
		"relative symlink": {link("a/link", "../../..")},
		"link chain":       {link("here", "."), link("out", "here/..")},
		"through a link":   {{name: "sub/", mode: fs.ModeDir | 0o755}, link("l", "sub"), {name: "l/evil", body: "x"}},
		"dangling link":    {link("later", "not-yet/file")},
	} {
		t.Run(name, func(t *testing.T) { testUnpackRefuses(t, es...) })
	}
	for name, e := range map[string]zipEntry{
		"dot-dot":        {name: "../evil.sh", body: "x"},
		"nested dot-dot": {name: "a/../../evil.sh", body: "x"},
		"absolute":       {name: "/etc/evil", body: "x"},
		"backslash ..":   {name: `..\evil.sh`, body: "x"},
		"device":         {name: "dev", mode: fs.ModeDevice | 0o644},
	} {
		t.Run(name, func(t *testing.T) { testUnpackRefuses(t, e) })
	}
}

func testUnpackRefuses(t *testing.T, es ...zipEntry) {
	root := t.TempDir()
	dir := filepath.Join(root, "h", "Pub.Ext-1.0")
	os.MkdirAll(filepath.Dir(dir), 0o755)
	pkg := buildZip(t, append([]zipEntry{{name: "ok.txt", body: "fine"}}, es...)...)
	err := Unpack(pkg, dir)
	if !errors.Is(err, errUnsafe) {
		t.Fatalf("Unpack = %v, want the unsafe entry refused", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("handler directory exists after a refused package: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 0 {
		t.Errorf("temporary directory left behind: %v", entries)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 1 {
		t.Errorf("something written outside: %v", entries)
	}
}

func TestUnpackRefusesDuplicatesAndGarbage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "h-1.0")
	if err := Unpack(buildZip(t, zipEntry{name: "a", body: "1"}, zipEntry{name: "a", body: "2"}), dir); err == nil {
		t.Error("a package naming one file twice was unpacked")
	}
	if err := Unpack([]byte("not a zip"), dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("garbage: %v, want an error naming %s", err, dir)
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add(buildZip(f, zipEntry{name: "HandlerManifest.json", body: "[]"}, zipEntry{name: "bin/x.sh", body: "#!/bin/sh", mode: 0o755}))
	f.Add(buildZip(f, zipEntry{name: "../x", body: "x"}))
	f.Add(buildZip(f, zipEntry{name: "l", body: "/", mode: fs.ModeSymlink | 0o777}))
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Fuzz(func(t *testing.T, pkg []byte) {
		root := t.TempDir()
		dir := filepath.Join(root, "lib", "h-1.0")
		os.MkdirAll(filepath.Dir(dir), 0o755)
		if err := Unpack(pkg, dir); err != nil {
			return
		}
		// Whatever was unpacked is inside dir and holds no links.
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			if d.Type()&fs.ModeSymlink != 0 {
				t.Fatalf("symlink %s unpacked", p)
			}
			if p != root && p != filepath.Dir(dir) && !strings.HasPrefix(p, dir) {
				t.Fatalf("%s written outside %s", p, dir)
			}
			return nil
		})
	})
}

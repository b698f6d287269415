package main

import (
	"os/exec"
	"strings"
	"testing"
)

// layoutTable is the README's layout table, row by row, lowest first: the
// packages of a row and the packages of this module they may import,
// besides the internal/ helpers and their own internal packages. A
// pattern ending in /... is a package and every package under it; "below"
// is every package of an earlier row.
var layoutTable = []struct {
	pkgs, imports []string
}{
	// blocktable reads a container's table through raw.ReadFull; disktest
	// checks readers of raw.Disks. (A package is in the first row that
	// names it.)
	{[]string{"internal/blocktable", "internal/disktest"}, []string{"raw"}},
	{[]string{"internal/..."}, nil},
	{[]string{"progress"}, nil},
	{[]string{"raw/..."}, []string{"raw/..."}},
	{[]string{"vhd", "qcow2", "vdi", "vhdx", "vmdk"}, []string{"raw"}},
	{[]string{"ova"}, []string{"vmdk", "raw"}},
	{[]string{"kernel", "initrd", "kmod", "pkgdb"}, nil},
	{[]string{"agent/layout"}, nil},
	{[]string{"rootfs"}, []string{"raw/..."}},
	{[]string{"rootfs/write"}, []string{"rootfs"}},
	{[]string{"diskimage"}, []string{"vhd", "qcow2", "vdi", "vhdx", "vmdk", "ova", "raw/...", "rootfs/write", "progress"}},
	{[]string{"guest"}, []string{"diskimage", "raw/...", "rootfs", "rootfs/write", "kernel"}},
	{[]string{"guest/agents"}, []string{"guest", "rootfs", "agent/layout"}},
	{[]string{"lint"}, []string{"below"}},
	{[]string{"upload"}, []string{"diskimage", "raw", "progress"}},
	{[]string{"agent/..."}, []string{"agent/...", "guest", "guest/agents", "rootfs", "rootfs/write", "raw/probe"}},
	{[]string{"prepare"}, []string{"below"}},
	{[]string{"cmd/..."}, []string{"below"}},
}

const module = "github.com/vhdprep/vhdprep/"

// matches says whether pkg is pattern or, for pattern/..., under it.
func matches(pattern, pkg string) bool {
	if dir, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == dir || strings.HasPrefix(pkg, dir+"/")
	}
	return pkg == pattern
}

// owner is the package whose internal package pkg is, or pkg: a package's
// internal packages sit in its row.
func owner(pkg string) string {
	if i := strings.Index(pkg, "/internal/"); i >= 0 {
		return pkg[:i]
	}
	return pkg
}

// TestLayout holds every package of the module to the README's layout
// table: no package imports one above it, or one its row does not name.
// Tests may reach higher (a partition table's test reads it in a VHD), as
// they do in Go's own tree: they are not linked into anything.
func TestLayout(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	row := func(pkg string) int {
		pkg = owner(pkg)
		for i, r := range layoutTable {
			for _, p := range r.pkgs {
				if matches(p, pkg) {
					return i
				}
			}
		}
		return -1
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, ok := strings.CutPrefix(fields[0], module)
		if !ok || strings.HasPrefix(pkg, "test/") {
			continue // the end-to-end tests run the binary, and may use anything
		}
		r := row(pkg)
		if r < 0 {
			t.Errorf("%s is in no row of the layout table: add it to the README's layout and to this test", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			imp, ok := strings.CutPrefix(imp, module)
			if !ok || matches("internal/...", imp) || strings.HasPrefix(imp, owner(pkg)+"/internal/") {
				continue
			}
			allowed := false
			for _, p := range layoutTable[r].imports {
				if p == "below" {
					allowed = allowed || (row(imp) >= 0 && row(imp) < r)
				} else {
					allowed = allowed || matches(p, imp)
				}
			}
			if !allowed {
				t.Errorf("%s imports %s, which its row of the layout table does not allow", pkg, imp)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("go list showed no import within the module: the test checks nothing")
	}
}

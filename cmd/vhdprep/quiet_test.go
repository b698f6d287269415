package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// -q leaves only errors on stderr (no progress, notes or warnings), and
// the result on stdout as it is, text or JSON.
func TestQuietKeepsTheResult(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	dir := t.TempDir()
	copyImage(t, "disk-debian-mbr", dir, "disk.img")
	for _, c := range []struct {
		code int
		args []string
	}{
		{exitOK, []string{"info", "disk.img"}},
		{exitOK, []string{"inspect", "disk.img"}},
		{exitGate, []string{"check", "disk.img"}},
		{exitOK, []string{"fix", "disk.img", "--dry-run"}},
		{exitOK, []string{"deprovision", "disk.img", "--dry-run"}},
		{exitOK, []string{"agent", "inject", "disk.img", "--dry-run"}},
		{exitOK, []string{"convert", "disk.img", "out.vhd"}}, // a progress line where stderr is no terminal
		{exitOK, []string{"resize", "out.vhd", "--align"}},
	} {
		for _, output := range []string{"text", "json"} {
			args := append(c.args, "-o", output)
			if c.args[0] == "convert" {
				os.Remove(filepath.Join(dir, "out.vhd"))
			}
			code, loud, loudErr := runOut(t, dir, nil, args...)
			if c.args[0] == "convert" {
				os.Remove(filepath.Join(dir, "out.vhd"))
			}
			qcode, quiet, quietErr := runOut(t, dir, nil, append(args, "-q")...)
			if code != c.code || qcode != c.code {
				t.Errorf("%v: exit %d, with -q %d, want %d\n%s", args, code, qcode, c.code, loudErr+quietErr)
				continue
			}
			if quietErr != "" {
				t.Errorf("%v -q: stderr %q, want nothing", args, quietErr)
			}
			if quiet != loud || strings.TrimSpace(quiet) == "" {
				t.Errorf("%v -q: stdout\n%s\nwithout -q\n%s", args, quiet, loud)
			}
		}
	}
	// An error still reaches stderr.
	if code, out, errOut := runOut(t, dir, nil, "info", "nope.img", "-q"); code != exitFailed || out != "" || !strings.Contains(errOut, "nope.img") {
		t.Errorf("info of a missing file -q: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

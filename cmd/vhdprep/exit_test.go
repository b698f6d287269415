package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// Every command keeps the exit codes a pipeline branches on, run as the
// real binary: 0 done, 1 the gate failed, 2 bad usage, 3 could not do the
// job. The other ways to 1 and 130 have their own tests: a repair that does
// not converge (TestDeprovisionThatLeavesItsRuleFailingExitsOne), upload
// --check (TestUploadCheckRefusesErrors), Ctrl-C
// (TestReadCommandsStopAtTheFirstSignal, TestUploadInterruptAndResume).
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "blank.raw")
	sparseFile(t, raw, 30<<20)
	vhd := filepath.Join(dir, "blank.vhd")
	disk := testimage.Copy(t, "disk-debian-mbr")
	missing := filepath.Join(dir, "missing.vhd")
	for _, c := range []struct {
		code int
		args []string
	}{
		{exitOK, nil},
		{exitOK, []string{"--version"}},
		{exitOK, []string{"help", "check"}},
		{exitUsage, []string{"bogus"}},
		{exitUsage, []string{"help", "bogus"}},
		{exitUsage, []string{"--bogus"}},
		{exitUsage, []string{"info", "-o", "yaml", raw}},

		{exitOK, []string{"version"}},
		{exitUsage, []string{"version", "extra"}},
		{exitOK, []string{"completion", "bash"}},
		{exitUsage, []string{"completion", "bogus"}},

		{exitOK, []string{"convert", raw, vhd}},
		{exitUsage, []string{"convert", raw}},
		{exitUsage, []string{"convert", raw, vhd, "--to", "qcow2"}},
		{exitFailed, []string{"convert", missing, vhd}},
		{exitFailed, []string{"convert", raw, vhd}}, // exists, no --force

		{exitOK, []string{"resize", vhd, "--align"}},
		{exitUsage, []string{"resize", vhd}},
		{exitFailed, []string{"resize", missing, "--align"}},

		{exitOK, []string{"info", vhd}},
		{exitUsage, []string{"info"}},
		{exitFailed, []string{"info", missing}},

		{exitOK, []string{"inspect", disk}},
		{exitUsage, []string{"inspect", disk, "extra"}},
		{exitFailed, []string{"inspect", missing}},

		{exitOK, []string{"ls", disk, "/etc"}},
		{exitUsage, []string{"ls"}},
		{exitFailed, []string{"ls", disk, "/no/such/dir"}},

		{exitOK, []string{"cat", disk, "/etc/fstab"}},
		{exitUsage, []string{"cat", disk, "/etc/fstab", "extra"}},
		{exitFailed, []string{"cat", disk, "/no/such/file"}},

		{exitOK, []string{"check", "--list-rules"}},
		{exitOK, []string{"check", vhd, "--fail-on", "error", "--disable", "DSK001"}},
		{exitGate, []string{"check", raw}},
		{exitUsage, []string{"check", raw, "--fail-on", "severe"}},
		{exitUsage, []string{"check", raw, "--disable", "NOPE42"}},
		{exitFailed, []string{"check", missing}},

		{exitOK, []string{"fix", disk, "--dry-run"}},
		{exitUsage, []string{"fix"}},
		{exitUsage, []string{"fix", disk, "--only", "NOPE42"}},
		{exitFailed, []string{"fix", missing}},

		{exitOK, []string{"deprovision", disk, "--dry-run"}},
		{exitUsage, []string{"deprovision", disk, "extra"}},
		{exitFailed, []string{"deprovision", missing}},

		{exitOK, []string{"agent"}},
		{exitUsage, []string{"agent", "bogus"}},
		{exitOK, []string{"agent", "inject", disk, "--dry-run"}},
		{exitUsage, []string{"agent", "inject"}},
		{exitFailed, []string{"agent", "inject", missing}},
		{exitUsage, []string{"agent", "remove", disk, "extra"}},
		{exitFailed, []string{"agent", "remove", disk}}, // nothing to remove

		{exitUsage, []string{"upload", vhd}},
		{exitUsage, []string{"upload", vhd, "--blob-url", "https://a.blob.core.windows.net/c/b.vhd", "--concurrency", "0"}},
		{exitFailed, []string{"upload", missing, "--blob-url", "https://a.blob.core.windows.net/c/b.vhd?sig=x"}},
		{exitFailed, []string{"upload", vhd, "--blob-url", "http://127.0.0.1:1/c/b.vhd?sv=2020-01-01&sig=x"}}, // no one listens
	} {
		code, out := runBin(t, c.args...)
		if code != c.code {
			t.Errorf("vhdprep %s: exit %d, want %d\n%s", strings.Join(c.args, " "), code, c.code, out)
		}
		if code >= exitUsage && (strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.HasPrefix(out, "vhdprep: ")) {
			t.Errorf("vhdprep %s: want one 'vhdprep: ...' line, got %q", strings.Join(c.args, " "), out)
		}
	}
}

// --help documents the exit codes.
func TestHelpNamesExitCodes(t *testing.T) {
	code, out := runBin(t, "--help")
	if code != exitOK || !strings.Contains(out, exitCodesHelp) {
		t.Fatalf("vhdprep --help: exit %d\n%s", code, out)
	}
}

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// A read command stops at the first SIGTERM or SIGINT, in the middle of
// its job (cat, info, inspect, check and ls are stopped alike). Its stdout is a one-page pipe nobody reads, so once the pipe
// is full vhdprep waits in a write with most of its output still to come;
// the signal then comes, and it must exit 130 saying it was stopped, not go
// on waiting as if nothing had come.
func TestReadCommandsStopAtTheFirstSignal(t *testing.T) {
	testimage.RequireTools(t, "debugfs")
	img := testimage.Copy(t, "disk-debian-mbr")
	big := filepath.Join(t.TempDir(), "big")
	os.WriteFile(big, []byte(strings.Repeat("a line of a big file\n", 10000)), 0o644)
	if out, err := exec.Command("debugfs", "-w", "-R", "write "+big+" /big", img+"?offset=1048576").CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v %s", err, out)
	}
	for _, c := range []struct {
		args []string
		sig  syscall.Signal
	}{
		{[]string{"cat", img, "/big"}, syscall.SIGTERM},
		{[]string{"cat", img, "/big"}, syscall.SIGINT},
	} {
		t.Run(c.sig.String(), func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 4096); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(vhdprepBin, c.args...)
			var stderr strings.Builder
			cmd.Stdout, cmd.Stderr = w, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			defer cmd.Process.Kill()
			for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if n, _ := unix.IoctlGetInt(int(r.Fd()), unix.TIOCINQ); n >= 4096 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the output pipe never filled")
				}
			}
			cmd.Process.Signal(c.sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("%v did not stop %s", c.sig, c.args[0])
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted || !strings.Contains(stderr.String(), "stopped by") {
				t.Fatalf("after %v: %v\n%s", c.sig, err, stderr.String())
			}
		})
	}
}

// startOn starts vhdprep and waits until it has opened image: past the
// start of main, where it catches signals. It returns what goes to stderr.
func startOn(t *testing.T, image string, args ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(vhdprepBin, args...)
	var out strings.Builder
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	fds := fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		ents, _ := os.ReadDir(fds)
		for _, e := range ents {
			if target, _ := os.Readlink(filepath.Join(fds, e.Name())); target == image {
				return cmd, &out
			}
		}
	}
	t.Fatalf("vhdprep %v never opened %s", args, image)
	return nil, nil
}

// The first Ctrl-C stops every command that changes or writes an image at
// its next safe point, exit 130, with one line saying what state it left:
// nothing written, or the change finished (never half-done: the image reads
// and checks as before or as after).
func TestCommandsThatWriteStopAtTheFirstSignal(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	dir := t.TempDir()
	big := filepath.Join(dir, "big.raw")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	chunk := []byte(strings.Repeat("data", 1<<18))
	for i := 0; i < 128; i++ {
		f.Write(chunk)
	}
	f.Close()
	for _, c := range []struct {
		name   string
		args   func() []string
		states []string
	}{
		{"convert", func() []string { return []string{"convert", big, filepath.Join(dir, "big.vhd")} }, []string{"nothing was written: the partial output was removed", "the job was finished first"}},
		{"fix", func() []string { return []string{"fix", testimage.Copy(t, "disk-debian-mbr")} }, []string{"nothing was written", "the job was finished first"}},
		{"deprovision", func() []string { return []string{"deprovision", testimage.Copy(t, "disk-debian-mbr")} }, []string{"nothing was written", "the job was finished first"}},
		{"agent inject", func() []string { return []string{"agent", "inject", testimage.Copy(t, "disk-debian-mbr")} }, []string{"nothing was written", "the job was finished first"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := c.args()
			image := args[len(args)-1]
			if c.name == "convert" {
				image = big
			}
			cmd, out := startOn(t, image, args...)
			cmd.Process.Signal(syscall.SIGINT)
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted || !strings.HasPrefix(out.String(), "vhdprep: stopped by SIGINT; ") || strings.Count(strings.TrimSpace(out.String()), "\n") != 0 {
				t.Fatalf("%v: %v, want exit 130 and one line saying so:\n%s", args, err, out)
			}
			said := ""
			for _, s := range c.states {
				if strings.Contains(out.String(), s) {
					said = s
				}
			}
			if said == "" {
				t.Fatalf("%v says no state it left: %s", args, out)
			}
			t.Log(said)
			// Whole either way: the output is absent or whole, the image reads.
			target := args[len(args)-1]
			if c.name == "convert" && said != "the job was finished first" {
				if _, err := os.Stat(target); !os.IsNotExist(err) {
					t.Errorf("convert stopped before the end left %s: %v", target, err)
				}
				return
			}
			if code, out := runBin(t, "info", target); code != exitOK {
				t.Errorf("info after %v: exit %d\n%s", args, code, out)
			}
		})
	}
}

// A second Ctrl-C stops vhdprep at once, saying so, and what a change left
// half-done is undone by the next command: the image checks as before.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	img := testimage.Copy(t, "disk-debian-mbr")
	_, before := runBin(t, "check", img, "-o", "json")
	cmd, stderr := startOn(t, img, "fix", img)
	cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(5 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted || !strings.Contains(stderr.String(), "vhdprep: stopped") {
		t.Fatalf("fix after two SIGINTs: %v\n%s", err, stderr)
	}
	if strings.Contains(stderr.String(), "a second SIGINT") {
		if code, after := runBin(t, "check", img, "-o", "json"); code == exitFailed || after != before {
			t.Errorf("after a second SIGINT, check: exit %d, and the image is not as before", code)
		}
	}
	t.Log(stderr)
}

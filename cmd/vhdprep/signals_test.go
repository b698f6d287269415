package main

import (
	"errors"
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

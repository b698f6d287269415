package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// shim puts a stand-in for an e2fsprogs tool first on PATH: a shell script
// that does part of the real job, touches READY and then waits to be killed.
func shim(t *testing.T, tool, script string) (env []string, ready string) {
	t.Helper()
	real, err := exec.LookPath(tool)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ready = filepath.Join(dir, "READY")
	body := "#!/bin/sh\nREAL=" + real + "\nREADY=" + ready + "\n" + script
	if err := os.WriteFile(filepath.Join(dir, tool), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH")), ready
}

// The shim scripts. debugfs reads its commands from the file after -f; a
// read-only debugfs (the feature check) runs as it is.
const (
	// Killed before debugfs writes anything.
	beforeDebugfs = `case " $* " in *" -w "*) touch "$READY"; sleep 600;; esac
exec "$REAL" "$@"
`
	// Killed with half of the commands done.
	midDebugfs = `case " $* " in *" -w "*) ;; *) exec "$REAL" "$@";; esac
args=""; half=""
while [ $# -gt 1 ]; do
  if [ "$1" = -f ]; then n=$(wc -l < "$2"); head -n $((n / 2)) "$2" > "$2.half"; args="$args -f $2.half"; shift 2; continue; fi
  args="$args $1"; shift
done
"$REAL" $args "$1"
touch "$READY"; sleep 600
`
	// Killed after every command is done, before the result is checked.
	afterDebugfs = `case " $* " in *" -w "*) "$REAL" "$@"; touch "$READY"; sleep 600;; esac
exec "$REAL" "$@"
`
	// Killed while e2fsck checks the result.
	duringE2fsck = `touch "$READY"; sleep 600
`
)

// killFix runs fix on img with a shim for tool and kills the whole job, as
// a terminal or a service manager kills it (vhdprep and the tool it runs),
// once the shim says it reached its kill point.
func killFix(t *testing.T, img, tool, script string) {
	t.Helper()
	env, ready := shim(t, tool, script)
	cmd := exec.Command(vhdprepBin, "fix", img)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fix never reached the kill point")
		}
	}
	if _, err := os.Stat(img + ".vhdprep-pending"); err != nil {
		t.Fatalf("no record of the change in progress: %v", err)
	}
}

// Every command that opens an image undoes an interrupted change first,
// not only those that read the guest through lint.
func TestEveryCommandRestoresAnInterruptedImage(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	for name, argv := range map[string]func(img, dir string) []string{
		"info":    func(img, _ string) []string { return []string{"info", img} },
		"inspect": func(img, _ string) []string { return []string{"inspect", img} },
		"ls":      func(img, _ string) []string { return []string{"ls", img, "/etc"} },
		"convert": func(img, dir string) []string { return []string{"convert", img, filepath.Join(dir, "out.vhd")} },
	} {
		t.Run(name, func(t *testing.T) {
			img := testimage.Copy(t, "disk-debian-mbr")
			b, _ := os.ReadFile(img)
			before := sha256.Sum256(b)
			killFix(t, img, "debugfs", midDebugfs)
			argv := argv(img, t.TempDir())
			if code, out := runBin(t, argv...); code != 0 {
				t.Fatalf("%v: exit %d\n%s", argv, code, out)
			}
			if b, _ := os.ReadFile(img); sha256.Sum256(b) != before {
				t.Fatalf("%s did not restore the interrupted image", name)
			}
			if _, err := os.Stat(img + ".vhdprep-pending"); err == nil {
				t.Error("the record of the interrupted change is still there")
			}
		})
	}
}

func TestFixKilledIsUndoneByTheNextCommand(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	for _, c := range []struct {
		name, tool, script string
		killedRestoring    bool // and the restore was killed after e2undo
	}{
		{"before debugfs", "debugfs", beforeDebugfs, false},
		{"mid debugfs", "debugfs", midDebugfs, false},
		{"after debugfs", "debugfs", afterDebugfs, false},
		{"during e2fsck", "e2fsck", duringE2fsck, false},
		{"after debugfs, then during the restore", "debugfs", afterDebugfs, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := testimage.Copy(t, "disk-debian-mbr")
			sum := func() [32]byte { b, _ := os.ReadFile(img); return sha256.Sum256(b) }
			before := sum()
			killFix(t, img, c.tool, c.script)
			if c.name != "before debugfs" && sum() == before {
				t.Fatal("the kill point came before the image was changed")
			}
			if c.killedRestoring {
				// What a restore killed before it cleared its record did.
				if out, err := exec.Command("e2undo", "-o", "1048576", img+".vhdprep-undo.0", img).CombinedOutput(); err != nil {
					t.Fatalf("e2undo: %v %s", err, out)
				}
			}
			// The next command that opens the image, a read-only check,
			// restores it first.
			if code, out := runBin(t, "check", img, "--output", "json"); code == exitUsage {
				t.Fatalf("check after the kill: exit %d\n%s", code, out)
			}
			if sum() != before {
				t.Fatal("the interrupted fix was not undone byte for byte")
			}
			for _, left := range []string{".vhdprep-pending", ".vhdprep-undo.0", ".vhdprep-lock"} {
				if _, err := os.Stat(img + left); err == nil {
					t.Errorf("%s left behind", left)
				}
			}
			// And fix runs to the end afterwards.
			if code, out := runBin(t, "fix", img); code != 0 || !strings.Contains(out, "KRN001 after fix: pass") {
				t.Fatalf("fix after recovery: exit %d\n%s", code, out)
			}
		})
	}
}

func TestFixRefusesAndLeavesTheImageUntouched(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo", "setpriv")
	img := testimage.Copy(t, "disk-debian-mbr")
	sum := func() [32]byte { b, _ := os.ReadFile(img); return sha256.Sum256(b) }

	// A journal that needs recovery.
	if out, err := exec.Command("debugfs", "-w", "-R", "feature needs_recovery", img+"?offset=1048576").CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v %s", err, out)
	}
	before := sum()
	code, out := runBin(t, "fix", img)
	if code != exitFailed || !strings.Contains(out, "journal needs recovery") || !strings.Contains(out, "run e2fsck") {
		t.Fatalf("fix on a journal needing recovery: exit %d\n%s", code, out)
	}
	if sum() != before {
		t.Fatal("a refused image was changed")
	}

	// A file its user may read but not write (root may write anything, so
	// vhdprep runs as nobody), in a directory nobody may enter.
	if os.Getuid() != 0 {
		t.Skip("needs root to run vhdprep as another user")
	}
	dir, err := os.MkdirTemp("", "vhdprep-readonly-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	img = filepath.Join(dir, "disk.img")
	bin := filepath.Join(dir, "vhdprep")
	copyFile(t, testimage.Copy(t, "disk-debian-mbr"), img)
	copyFile(t, vhdprepBin, bin)
	os.Chmod(img, 0o444)
	before = sum()
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin, "fix", img)
	cmd.Env = append(os.Environ(), "HOME=/", "TMPDIR=/tmp")
	outb, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFailed || !strings.Contains(string(outb), img+": not writable") || strings.Contains(string(outb), "KRN001") {
		t.Fatalf("fix on a read-only file: %v\n%s", err, outb)
	}
	if sum() != before {
		t.Fatal("a read-only image was changed")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// Killing vhdprep alone leaves no debugfs writing behind it.
func TestFixKilledTakesDebugfsWithIt(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	img := testimage.Copy(t, "disk-debian-mbr")
	pidFile := filepath.Join(t.TempDir(), "pid")
	env, ready := shim(t, "debugfs", `case " $* " in *" -w "*) echo $$ > `+pidFile+`; touch "$READY"; exec sleep 600;; esac
exec "$REAL" "$@"
`)
	cmd := exec.Command(vhdprepBin, "fix", img)
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("debugfs never started")
		}
	}
	b, _ := os.ReadFile(pidFile)
	var pid int
	fmt.Sscan(string(b), &pid)
	cmd.Process.Kill()
	cmd.Wait()
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("debugfs (pid %d) outlived the vhdprep that ran it", pid)
		}
	}
}

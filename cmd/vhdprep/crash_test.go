package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// runIn runs vhdprep in dir with extra environment variables.
func runIn(t *testing.T, dir string, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(vhdprepBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

func imageSum(t *testing.T, img string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// assertRestored fails unless img is byte for byte as before, every listed
// filesystem passes e2fsck -fn, and nothing of the change is left beside it.
func assertRestored(t *testing.T, img string, before [32]byte, offsets ...int64) {
	t.Helper()
	if imageSum(t, img) != before {
		t.Error("the image differs from before the interrupted change")
	}
	for _, off := range offsets {
		if out, err := exec.Command("e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, off)).CombinedOutput(); err != nil {
			t.Errorf("e2fsck at offset %d: %v\n%s", off, err, out)
		}
	}
	left, _ := filepath.Glob(img + ".vhdprep-*")
	if len(left) > 0 {
		t.Errorf("left beside the image: %v", left)
	}
}

// debugfsWrites counts the pwrite64 calls debugfs makes for the fix of a
// copy of recipe, run as the kill test runs it.
func debugfsWrites(t *testing.T, recipe string) int {
	t.Helper()
	img := testimage.Copy(t, recipe)
	trace := filepath.Join(t.TempDir(), "trace")
	env, _ := shim(t, "debugfs", `case " $* " in *" -w "*) exec strace -f -qq -o `+trace+` -e trace=pwrite64 "$REAL" "$@";; esac
exec "$REAL" "$@"
`)
	cmd := exec.Command(vhdprepBin, "fix", img)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fix under strace: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(trace)
	return strings.Count(string(b), "pwrite64(")
}

// A fix is killed (vhdprep and debugfs together) at the n-th write debugfs
// makes, for write numbers from the first to the last: at the undo file's
// header, in the middle of the change, after its last block. fix runs in
// one directory with a relative image path; the next command runs in
// another. Every kill must leave the image restored byte for byte, with
// e2fsck's agreement, and nothing behind; e2undo refuses the undo file at
// both ends of that range ("Not an undo file", a short read, "Lifetime
// write counter does not match"), so the evidence decides there.
func TestKilledAtAnyWriteIsRestoredFromAnyDirectory(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo", "strace")
	total := debugfsWrites(t, "disk-debian-mbr")
	if total < 20 {
		t.Fatalf("debugfs made %d writes; the test needs more to choose from", total)
	}
	points := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, total / 4, total / 2, 3 * total / 4, total - 3, total - 2, total - 1, total, total + 1}
	survived := 0
	for _, n := range points {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			img := testimage.Copy(t, "disk-debian-mbr")
			before := imageSum(t, img)
			env, _ := shim(t, "debugfs", fmt.Sprintf(`case " $* " in *" -w "*) strace -f -qq -o /dev/null -e inject=pwrite64:signal=SIGKILL:when=%d "$REAL" "$@"; kill -KILL $PPID; exit 1;; esac
exec "$REAL" "$@"
`, n))
			cmd := exec.Command(vhdprepBin, "fix", filepath.Base(img))
			cmd.Dir = filepath.Dir(img)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("fix was not killed: %v\n%s", err, out)
			}
			if _, err := os.Stat(img + ".vhdprep-pending"); err != nil {
				t.Fatalf("no record of the change in progress: %v", err)
			}
			if code, out := runIn(t, t.TempDir(), nil, "info", img); code != 0 {
				t.Fatalf("info after the kill: exit %d\n%s", code, out)
			}
			assertRestored(t, img, before, 1<<20)
			if !t.Failed() {
				survived++
			}
		})
	}
	t.Logf("kills at debugfs's n-th write (of %d): %d of %d restored", total, survived, len(points))
}

// The Ubuntu disk's filesystems that fix changes: / and /boot.
const (
	ubuntuRoot = 98 << 20
	ubuntuBoot = 34 << 20
)

// fix changes / and /boot of the Ubuntu disk as one change: killed after
// the first filesystem is changed, before the second, or after both before
// the change is committed, the next command undoes both.
func TestTwoFilesystemsAreChangedAllOrNone(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	survived, points := 0, []string{"recorded", "applied-0", "applied-1"}
	for _, point := range points {
		t.Run(point, func(t *testing.T) {
			img := testimage.Copy(t, "disk-ubuntu-gpt")
			before := imageSum(t, img)
			code, out := runIn(t, t.TempDir(), []string{"VHDPREP_FAULT=" + point}, "fix", img)
			if code != -1 {
				t.Fatalf("fix was not stopped at %s: exit %d\n%s", point, code, out)
			}
			if point != "recorded" && imageSum(t, img) == before {
				t.Fatal("the kill came before anything was changed")
			}
			if code, out := runIn(t, t.TempDir(), nil, "check", img, "--output", "json"); code == exitUsage {
				t.Fatalf("check after the kill: exit %d\n%s", code, out)
			}
			assertRestored(t, img, before, ubuntuRoot, ubuntuBoot)
			if !t.Failed() {
				survived++
			}
		})
	}
	t.Logf("kills between the filesystems of one change: %d of %d restored", survived, len(points))

	// Killed after the commit (the record removed, the undo files not
	// yet): the change stays, and the next fix finds nothing left to do.
	img := testimage.Copy(t, "disk-ubuntu-gpt")
	before := imageSum(t, img)
	if code, out := runIn(t, t.TempDir(), []string{"VHDPREP_FAULT=committed"}, "fix", img); code != -1 {
		t.Fatalf("fix was not stopped after its commit: exit %d\n%s", code, out)
	}
	if imageSum(t, img) == before {
		t.Fatal("a committed change was undone")
	}
	if code, out := runBin(t, "fix", img, "--only", "KRN001"); code != 0 || !strings.Contains(out, "nothing to fix") {
		t.Fatalf("fix after a kill past the commit: exit %d\n%s", code, out)
	}
}

// A refusal on the second filesystem comes before the first is written.
func TestTwoFilesystemsRefusedBeforeEitherIsWritten(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	img := testimage.Copy(t, "disk-ubuntu-gpt")
	if out, err := exec.Command("debugfs", "-w", "-R", "feature needs_recovery", fmt.Sprintf("%s?offset=%d", img, ubuntuBoot)).CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v %s", err, out)
	}
	before := imageSum(t, img)
	code, out := runBin(t, "fix", img)
	if code != exitFailed || !strings.Contains(out, "journal needs recovery") {
		t.Fatalf("fix with /boot's journal needing recovery: exit %d\n%s", code, out)
	}
	if imageSum(t, img) != before {
		t.Fatal("/ was changed before /boot was refused")
	}
}

// A disk too full for the undo file is refused before anything is written,
// with the numbers; the image is left as it was.
func TestFullDiskIsRefusedWithTheNumbers(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	dir := t.TempDir()
	// The image holds about 8 MiB of data; 12 MiB leave no room for more.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mounting a small tmpfs is not permitted here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	defer exec.Command("umount", dir).Run()
	img := filepath.Join(dir, "disk.img")
	if out, err := exec.Command("cp", "--sparse=always", testimage.Copy(t, "disk-debian-mbr"), img).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	// Fill the rest but for 256 KiB: room for the lock and the record,
	// not for the undo file.
	var st syscall.Statfs_t
	syscall.Statfs(dir, &st)
	fill := int64(st.Bavail)*int64(st.Bsize) - 256<<10
	if out, err := exec.Command("fallocate", "-l", strconv.FormatInt(fill, 10), filepath.Join(dir, "fill")).CombinedOutput(); err != nil {
		t.Fatalf("fallocate: %v %s", err, out)
	}
	before := imageSum(t, img)
	code, out := runBin(t, "fix", img)
	if code != exitFailed || !strings.Contains(out, "not enough free space") || !strings.Contains(out, "MiB free") || !strings.Contains(out, "needs up to") {
		t.Fatalf("fix on a full disk: exit %d\n%s", code, out)
	}
	assertRestored(t, img, before, 1<<20)
}

// fix takes the image's lock before it reads what it plans: a fix stopped
// in the middle of reading the image (strace stops it at its second open of
// the image file, while the guest is read for the plan) keeps a second fix
// out. Taking the lock only to apply let both plan from the same bytes.
func TestFixHoldsTheLockWhilePlanning(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo", "strace")
	img := testimage.Copy(t, "disk-debian-mbr")
	trace := filepath.Join(t.TempDir(), "trace")
	a := exec.Command("strace", "-f", "-qq", "-o", trace, "-P", img, "-e", "trace=openat", "-e", "inject=openat:signal=SIGSTOP:when=2", vhdprepBin, "fix", img)
	a.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Wait()
	defer syscall.Kill(-a.Process.Pid, syscall.SIGKILL)
	waitStopped(t, trace)
	code, out := runBin(t, "fix", img)
	if code != exitFailed || !strings.Contains(out, "another vhdprep is changing this image") {
		t.Fatalf("a second fix while the first plans: exit %d\n%s", code, out)
	}
}

// waitStopped waits until strace, writing to trace, says its tracee is
// stopped.
func waitStopped(t *testing.T, trace string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(trace); strings.Contains(string(b), "stopped by SIGSTOP") {
			return
		}
	}
	t.Fatal("vhdprep never stopped at the chosen open")
}

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Commands that change an image hold the lock fix holds: while another
// process has it, resize and convert --in-place are refused with the
// holder's pid and command, and the image is left alone.
func TestWritersRefuseALockedImage(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.raw")
	sparseFile(t, img, 3<<20)
	sparseFile(t, filepath.Join(dir, "other.raw"), 1<<20)
	// The holder is a real flock on the lock file, as a running vhdprep
	// holds it; the file names that process, as vhdprep writes it.
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock (util-linux) is not installed; make test installs it")
	}
	name := img + ".vhdprep-lock"
	holder := exec.Command("flock", name, "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	waitLocked(t, name)
	lock := fmt.Sprintf("%d\nvhdprep fix %s\n", holder.Process.Pid, img)
	if err := os.WriteFile(name, []byte(lock), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"resize", img, "--size", "30M"},
		{"convert", "--in-place", img},
		{"convert", "--force", filepath.Join(dir, "other.raw"), img},
	} {
		code, out := runBin(t, args...)
		want := fmt.Sprintf("pid %d: vhdprep fix %s", holder.Process.Pid, img)
		if code != exitFailed || !strings.Contains(out, want) {
			t.Errorf("%v while fix holds the lock: exit %d, %q; want exit 1 naming %q", args, code, out, want)
		}
	}
	if fileSize(t, img) != 3<<20 {
		t.Fatalf("the locked image changed: %d bytes", fileSize(t, img))
	}
}

// waitLocked waits until another process holds an flock on name.
func waitLocked(t *testing.T, name string) {
	t.Helper()
	for range 500 {
		if f, err := os.Open(name); err == nil {
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no process took the lock %s", name)
}

// Resizes racing on one file: each either finishes or is refused naming
// the other's pid and command, and the file ends as the last finisher left
// it: a VHD of one of the sizes asked for, and of that size to qemu-img.
func TestRacingResizes(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.vhd")
	sparseFile(t, img+".raw", 20<<20)
	if code, out := runBin(t, "convert", img+".raw", img); code != 0 {
		t.Fatal(out)
	}
	sizes := []string{"24M", "28M", "32M", "36M", "40M", "44M"}
	var wg sync.WaitGroup
	codes, outs := make([]int, len(sizes)), make([]string, len(sizes))
	for i, size := range sizes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], outs[i] = runBin(t, "resize", img, "--size", size, "--shrink")
		}()
	}
	wg.Wait()
	ok := map[int64]bool{}
	for i, size := range sizes {
		switch {
		case codes[i] == 0:
			var n int64
			fmt.Sscanf(size, "%dM", &n)
			ok[(n<<20)+512] = true
		case !strings.Contains(outs[i], "another vhdprep is changing this image (pid ") || !strings.Contains(outs[i], ": vhdprep resize "+img):
			t.Errorf("resize --size %s: exit %d, %q; want success or a refusal naming the holder", size, codes[i], outs[i])
		}
	}
	if !ok[fileSize(t, img)] {
		t.Fatalf("the file is %d bytes, which no successful resize asked for (%v)", fileSize(t, img), ok)
	}
	out, err := exec.Command("qemu-img", "info", "-f", "vpc", "--output", "json", img).Output()
	if err != nil {
		t.Fatalf("qemu-img info: %v", err)
	}
	if want := fmt.Sprintf(`"virtual-size": %d,`, fileSize(t, img)-512); !strings.Contains(string(out), want) {
		t.Fatalf("qemu-img info says\n%s\nwant %s", out, want)
	}
	if _, err := os.Stat(img + ".vhdprep-lock"); err == nil {
		t.Fatal("a lock was left behind")
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

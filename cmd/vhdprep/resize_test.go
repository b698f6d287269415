package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/testimage"
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
			t.Errorf("%v while fix holds the lock: exit %d, %q; want exit 3 naming %q", args, code, out, want)
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

// A resize or convert --in-place killed at any step (after its undo file is
// saved, after the truncate, after the new footer and GPT are written but
// before they are verified) is undone by the next command that opens the
// image, from any directory: the file is byte for byte what it was, with
// its footer and its data past the new end, and sgdisk finds the GPT sound.
func TestKilledResizeIsUndone(t *testing.T) {
	testimage.RequireTools(t, "sgdisk", "qemu-img")
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	sparseFile(t, base, 64<<20)
	if out, err := exec.Command("sgdisk", "-n", "1:2048:+20M", "-n", "2:0:+20M", base).CombinedOutput(); err != nil {
		t.Fatalf("sgdisk: %v %s", err, out)
	}
	// Data past the last partition, which a shrink cuts off.
	f, _ := os.OpenFile(base, os.O_WRONLY, 0)
	f.WriteAt([]byte("data past the last partition"), 50<<20)
	f.Close()
	vhdImg := filepath.Join(dir, "base.vhd")
	if code, out := runBin(t, "convert", base, vhdImg); code != 0 {
		t.Fatalf("convert: %s", out)
	}
	for _, c := range []struct {
		src  string
		args []string
	}{
		{vhdImg, []string{"resize", "IMG", "--size", "96M"}},
		{vhdImg, []string{"resize", "IMG", "--size", "48M", "--shrink"}},
		{base, []string{"convert", "--in-place", "IMG"}},
		{vhdImg, []string{"convert", "--in-place", "--to", "raw", "IMG"}},
	} {
		for _, point := range []string{"resize-saved", "resize-truncated", "resize-written"} {
			img := filepath.Join(dir, "disk")
			if out, err := exec.Command("cp", "--sparse=always", c.src, img).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v %s", err, out)
			}
			before := imageSum(t, img)
			args := slices.Clone(c.args)
			args[slices.Index(args, "IMG")] = img
			if code, out := runIn(t, dir, []string{"VHDPREP_FAULT=" + point}, args...); code != -1 {
				t.Fatalf("%v killed at %s: exit %d, want killed\n%s", c.args, point, code, out)
			}
			if code, out := runIn(t, t.TempDir(), nil, "info", img); code != 0 {
				t.Fatalf("info after %v killed at %s: exit %d\n%s", c.args, point, code, out)
			}
			if imageSum(t, img) != before {
				t.Fatalf("%v killed at %s: the image differs from before", c.args, point)
			}
			if left, _ := filepath.Glob(img + ".vhdprep-*"); len(left) > 0 {
				t.Fatalf("%v killed at %s: left beside the image: %v", c.args, point, left)
			}
			// The same command, run again, finishes.
			if code, out := runBin(t, args...); code != 0 {
				t.Fatalf("%v after the undo: exit %d\n%s", c.args, code, out)
			}
			os.Remove(img)
		}
	}
}

// An undo file planted beside someone's image (here, one a killed resize
// of another image left, so its checksum is right) is refused by the next
// command, on one line that names it and says what to do, and the image
// is left byte for byte as it was; once it is removed, the image opens.
func TestPlantedUndoIsRefused(t *testing.T) {
	dir := t.TempDir()
	other, img := filepath.Join(dir, "other.raw"), filepath.Join(dir, "disk.raw")
	sparseFile(t, other, 3<<20)
	sparseFile(t, img, 3<<20)
	if code, out := runIn(t, dir, []string{"VHDPREP_FAULT=resize-saved"}, "resize", other, "--size", "8M"); code != -1 {
		t.Fatalf("resize killed after saving its undo: exit %d, want killed\n%s", code, out)
	}
	undo := img + ".vhdprep-resize-undo"
	if err := os.Rename(other+".vhdprep-resize-undo", undo); err != nil {
		t.Fatal(err)
	}
	before := imageSum(t, img)
	for _, args := range [][]string{{"info", img}, {"resize", img, "--size", "8M"}, {"check", img}} {
		code, out := runIn(t, t.TempDir(), nil, args...)
		if code != exitFailed || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, undo+": it does not belong to this file as it is now") || !strings.Contains(out, "remove "+undo) {
			t.Fatalf("%v beside a planted undo file: exit %d\n%s", args[0], code, out)
		}
		if imageSum(t, img) != before {
			t.Fatalf("%v: the planted undo file changed the image", args[0])
		}
	}
	os.Remove(undo)
	if code, out := runBin(t, "info", img); code != 0 {
		t.Fatalf("info once the undo file is removed: exit %d\n%s", code, out)
	}
}

package raw

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A FIFO or a character device is refused at once: opening a FIFO for
// reading would wait for a writer that never comes.
func TestOpenFileRefusesFIFOAndCharDevice(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "disk.raw")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, kind string }{{fifo, "FIFO"}, {"/dev/null", "character device"}} {
		for _, flag := range []int{os.O_RDONLY, os.O_RDWR} {
			done := make(chan error, 1)
			go func() {
				f, _, err := OpenFile(c.path, flag)
				if f != nil {
					f.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, ErrNotImage) || !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.kind) {
					t.Errorf("%s: %v, want ErrNotImage naming the file and %q", c.path, err, c.kind)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("opening %s hangs", c.path)
			}
		}
	}
}

// A block device is read, with the size the device has (stat says 0).
func TestOpenFileReadsBlockDeviceSize(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("attaching a loop device needs root")
	}
	img := filepath.Join(t.TempDir(), "disk.raw")
	const size = 3 * MiB
	if err := os.WriteFile(img, append(make([]byte, size-4), "tail"...), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", "--read-only", img).Output()
	if err != nil {
		t.Skipf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	f, got, err := OpenFile(dev, os.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got != size {
		t.Fatalf("%s: size %d, want %d", dev, got, size)
	}
	b := make([]byte, 4)
	if _, err := NewFile(f, got).ReadAt(b, size-4); err != nil || string(b) != "tail" {
		t.Fatalf("reading the device's last bytes: %q, %v", b, err)
	}
}

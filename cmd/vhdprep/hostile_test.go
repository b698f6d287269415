package main

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/vhd"
)

// sparseWith writes the given pieces into a sparse file of size bytes.
func sparseWith(t *testing.T, name string, size int64, pieces map[int64][]byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, b := range pieces {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// hugeL1Qcow2 is a qcow2 file of 17 GiB that holds 4 KiB: 512-byte clusters
// and a 64 TiB disk, so its L1 table claims 2^31 entries (16 GiB), all in a
// hole.
func hugeL1Qcow2(t *testing.T) string {
	h := make([]byte, 72)
	be := binary.BigEndian
	copy(h, "QFI\xfb")
	be.PutUint32(h[4:], 2)       // version
	be.PutUint32(h[20:], 9)      // cluster bits
	be.PutUint64(h[24:], 64<<40) // size
	be.PutUint32(h[36:], 1<<31)  // L1 entries
	be.PutUint64(h[40:], 4096)   // L1 offset
	return sparseWith(t, "huge-l1.qcow2", 17<<30, map[int64][]byte{0: h})
}

// hugeBATVHD is a dynamic VHD of 17 GiB that holds 2.5 KiB: 512-byte
// blocks and a BAT that claims 2^32-1 entries (16 GiB), all in a hole.
func hugeBATVHD(t *testing.T) string {
	const size, fileSize = 2040 << 30, 17 << 30
	f, err := vhd.NewFixedFooter(size, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.DiskType, f.DataOffset = vhd.DiskDynamic, 512
	footer, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	h := make([]byte, 1024)
	be := binary.BigEndian
	copy(h, "cxsparse")
	be.PutUint64(h[8:], ^uint64(0))
	be.PutUint64(h[16:], 1536)       // BAT offset
	be.PutUint32(h[24:], 0x00010000) // header version
	be.PutUint32(h[28:], ^uint32(0)) // BAT entries
	be.PutUint32(h[32:], 512)        // block size
	var sum uint32
	for _, c := range h {
		sum += uint32(c)
	}
	be.PutUint32(h[36:], ^sum)
	return sparseWith(t, "huge-bat.vhd", fileSize, map[int64][]byte{0: footer, 512: h, fileSize - 512: footer})
}

// Headers that claim tables of gigabytes in a sparse file that holds a few
// kilobytes: every command that reads the image answers within 1 GiB of
// address space, with a one-line error or a report, and is not killed.
func TestHostileTablesStayWithinAFixedMemoryBudget(t *testing.T) {
	testimage.RequireTools(t, "prlimit")
	for name, img := range map[string]string{"qcow2 L1 of 2^31 entries": hugeL1Qcow2(t), "VHD BAT of 2^32-1 entries": hugeBATVHD(t)} {
		for _, command := range []string{"info", "inspect", "check", "ls"} {
			t.Run(name+"/"+command, func(t *testing.T) {
				args := []string{"--as=1073741824", vhdprepBin, command, img}
				if command == "ls" {
					args = append(args, "/")
				}
				out, err := exec.Command("prlimit", args...).CombinedOutput()
				if ee, ok := err.(*exec.ExitError); ok && ee.Sys().(syscall.WaitStatus).Signaled() {
					t.Fatalf("killed by %v\n%s", ee.Sys().(syscall.WaitStatus).Signal(), out)
				}
				if code := exitCodeOf(err); code != exitOK && code != exitGate && code != exitFailed || strings.Contains(string(out), "out of memory") || strings.Contains(string(out), "goroutine ") {
					t.Fatalf("exit %d\n%.2000s", code, out)
				}
			})
		}
	}
}

func exitCodeOf(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

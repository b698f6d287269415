package diskimage

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// writeSparse makes a sparse file of size bytes with a distinct pattern
// written at each offset in data.
func writeSparse(t *testing.T, path string, size int64, data ...int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for i, off := range data {
		b := bytes.Repeat([]byte{byte(i + 1), 0x5a, byte(off >> 20), 0xc3}, 16<<10)
		if off+int64(len(b)) > size {
			b = b[:size-off]
		}
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
}

func qemuImg(t *testing.T, args ...string) string {
	t.Helper()
	testimage.RequireTools(t, "qemu-img")
	out, err := exec.Command("qemu-img", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// qemuVirtualSize is the size qemu-img sees in a VHD: the independent oracle.
func qemuVirtualSize(t *testing.T, path string) int64 {
	t.Helper()
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal([]byte(qemuImg(t, "info", "-f", "vpc", "--output", "json", path)), &info); err != nil {
		t.Fatal(err)
	}
	return info.VirtualSize
}

// assertSameData asks qemu-img whether two images hold the same guest data
// (the larger one's extra space must read as zeros).
func assertSameData(t *testing.T, fmtA, a, fmtB, b string) {
	t.Helper()
	out, err := exec.Command("qemu-img", "compare", "-f", fmtA, "-F", fmtB, a, b).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img compare %s %s: %v\n%s", a, b, err, out)
	}
}

func allocated(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Blocks * 512
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// assertOnly checks a directory holds exactly the named entries: no
// temporary or partial outputs left behind.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("%s holds %v, want %v", filepath.Base(dir), got, names)
	}
}

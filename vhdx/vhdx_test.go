package vhdx

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/vhdprep/vhdprep/internal/disktest"
)

func open(t testing.TB, path string) *Image {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	im, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// Dynamic and fixed images of every block size qemu-img writes read as
// qemu-img reads them, and a dynamic one's extents leave out the blocks
// never written.
func TestReadsWhatQemuWrote(t *testing.T) {
	const size = 9<<20 + 3*512
	dir := t.TempDir()
	src, want := disktest.Source(t, dir, size)
	for _, sub := range []string{"dynamic", "fixed"} {
		for _, bs := range []string{"1M", "2M", "8M", "32M", "256M"} {
			t.Run(sub+"-"+bs, func(t *testing.T) {
				img := filepath.Join(dir, sub+bs+".vhdx")
				disktest.Qemu(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat="+sub+",block_size="+bs, src, img)
				if oracle := disktest.QemuRaw(t, "vhdx", img); !bytes.Equal(oracle, want) {
					t.Fatal("qemu-img itself reads another disk")
				}
				im := open(t, img)
				disktest.AssertSame(t, im, want)
				if im.Info().Type != sub {
					t.Fatalf("type %q, want %q", im.Info().Type, sub)
				}
			})
		}
	}
}

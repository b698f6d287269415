package guest

import (
	"errors"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// Opener opens the image or the directory it is given, and refuses both
// or neither.
func TestOpener(t *testing.T) {
	dir := t.TempDir()
	for _, change := range []bool{false, true} {
		g, err := Opener("", dir)(change)
		if err != nil || g.Image != nil || g.Name != dir || g.Root == nil {
			t.Fatalf("directory (change %v): %v %+v", change, err, g)
		}
		g.Close()
		for _, c := range [][2]string{{"", ""}, {"disk.raw", dir}} {
			if _, err := Opener(c[0], c[1])(change); !errors.Is(err, ErrImageOrDir) {
				t.Errorf("image %q, directory %q (change %v): %v, want ErrImageOrDir", c[0], c[1], change, err)
			}
		}
		if _, err := Opener(dir+"/missing.raw", "")(change); err == nil {
			t.Errorf("a missing image opened (change %v)", change)
		}
	}
	image := testimage.Path(t, "disk-debian-mbr")
	g, err := Opener(image, "")(false)
	if err != nil || g.Image == nil || g.Name != image || g.Root == nil || g.change != nil {
		t.Fatalf("image: %v %+v", err, g)
	}
	g.Close()
}

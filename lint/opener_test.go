package lint

import (
	"errors"
	"testing"

	"github.com/vhdprep/vhdprep/guest"
	"github.com/vhdprep/vhdprep/internal/testimage"
)

// Opener opens a directory or an image as guest.Opener does, and makes it
// a target: an image's with its container.
func TestOpener(t *testing.T) {
	dir := t.TempDir()
	target, err := Opener("", dir)(false)
	if err != nil || target.Name != dir || target.Guest == nil || target.Container != nil {
		t.Fatalf("directory: %v %+v", err, target)
	}
	target.Close()
	if _, err := Opener("", "")(false); !errors.Is(err, guest.ErrImageOrDir) {
		t.Errorf("neither: %v", err)
	}
	image := testimage.Path(t, "disk-debian-mbr")
	target, err = Opener(image, "")(false)
	if err != nil || target.Name != image || target.Guest == nil || target.Container == nil || target.Container.Path != image {
		t.Fatalf("image: %v %+v", err, target)
	}
	target.Close()
}

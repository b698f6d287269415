package testimage

import (
	"os"
	"testing"
)

func TestPathBuildsOnceAndCaches(t *testing.T) {
	p1 := Path(t, "tiny-ext4")
	st1, err := os.Stat(p1)
	if err != nil {
		t.Fatal(err)
	}
	if st1.Size() != 32<<20 {
		t.Fatalf("tiny-ext4 is %d bytes, want 32 MiB", st1.Size())
	}
	p2 := Path(t, "tiny-ext4")
	st2, _ := os.Stat(p2)
	if p1 != p2 || !os.SameFile(st1, st2) || !st1.ModTime().Equal(st2.ModTime()) {
		t.Fatal("second Path rebuilt the image instead of using the cache")
	}
	if c := Copy(t, "tiny-ext4"); c == p1 {
		t.Fatal("Copy returned the cached image itself")
	}
}

package imagelock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Of writers racing for one image, exactly one gets the lock: the others
// never find it empty and take it for a stale one.
func TestOneLockHolderAmongRacers(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	os.WriteFile(img, nil, 0o600)
	for round := 0; round < 20; round++ {
		results := make(chan *Lock, 8)
		for i := 0; i < cap(results); i++ {
			go func() {
				l, _ := Take(img)
				results <- l
			}()
		}
		var held []*Lock
		for i := 0; i < cap(results); i++ {
			if l := <-results; l != nil {
				held = append(held, l)
			}
		}
		if len(held) != 1 {
			t.Fatalf("round %d: %d writers hold the lock", round, len(held))
		}
		held[0].Release()
	}
	assertGone(t, img)
}

// A second taker is told who holds the lock: pid and command.
func TestRefusalNamesTheHolder(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	l, err := Take(img)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Take(img)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d: %s", os.Getpid(), filepath.Base(os.Args[0]))) {
		t.Fatalf("second taker: %v", err)
	}
	l.Release()
	l.Release()
	assertGone(t, img)
}

// A lock whose process is gone is taken over, in the old format (the pid
// only) too.
func TestStaleLockIsTakenOver(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	for _, content := range []string{"999999999\n", "999999999\nvhdprep resize disk.img --size 1G\n"} {
		os.WriteFile(img+Suffix, []byte(content), 0o600)
		l, err := Take(img)
		if err != nil {
			t.Fatalf("stale lock %q: %v", content, err)
		}
		l.Release()
	}
	assertGone(t, img)
}

func assertGone(t *testing.T, img string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Dir(img))
	for _, e := range ents {
		if e.Name() != filepath.Base(img) {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

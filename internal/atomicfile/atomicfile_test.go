package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestCommitCreatesTargetAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "out.vhd")
	f, err := Create(target, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	if _, err := f.WriteString("data"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(target); err == nil {
		t.Fatal("target visible before Commit")
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(target)
	if err != nil || string(got) != "data" {
		t.Fatalf("target = %q, %v", got, err)
	}
	assertOnlyEntries(t, dir, "out.vhd")
}

func TestAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(filepath.Join(dir, "out.vhd"), false)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("partial")
	f.Abort()
	assertOnlyEntries(t, dir)
}

func TestExistingTargetIsRefusedWithoutOverwrite(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "out.vhd")
	os.WriteFile(target, []byte("old"), 0o644)
	if _, err := Create(target, false); !errors.Is(err, ErrExists) {
		t.Fatalf("Create over existing target: err = %v, want ErrExists", err)
	}
	f, err := Create(target, true)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("new")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); string(got) != "new" {
		t.Fatalf("target = %q, want new", got)
	}
}

func TestTargetCreatedMeanwhileIsNotOverwritten(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "out.vhd")
	f, err := Create(target, false)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(target, []byte("someone else's"), 0o644)
	if err := f.Commit(); !errors.Is(err, ErrExists) {
		t.Fatalf("Commit = %v, want ErrExists", err)
	}
	if got, _ := os.ReadFile(target); string(got) != "someone else's" {
		t.Fatalf("target overwritten: %q", got)
	}
	assertOnlyEntries(t, dir, "out.vhd")
}

func assertOnlyEntries(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if len(got) != len(want) {
		t.Fatalf("directory holds %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("directory holds %v, want %v", got, want)
		}
	}
}

// Outputs follow the umask (0666 &^ umask), as the shell's > does, not
// os.CreateTemp's 0600.
func TestOutputFollowsUmask(t *testing.T) {
	for _, c := range []struct{ umask, want os.FileMode }{{0o022, 0o644}, {0o002, 0o664}, {0o077, 0o600}} {
		old := syscall.Umask(int(c.umask))
		target := filepath.Join(t.TempDir(), "out.vhd")
		f, err := Create(target, false)
		if err == nil {
			err = f.Commit()
		}
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(target)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != c.want {
			t.Errorf("umask %03o: output mode %03o, want %03o", c.umask, got, c.want)
		}
	}
}

package fileundo

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// file makes a file of the given bytes and opens it for writing.
func file(t *testing.T, b []byte) (string, *os.File) {
	t.Helper()
	name := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return name, f
}

// change is the sizes of a change of a file from before bytes to after.
func change(before, after int64) Sizes {
	return Sizes{Before: before, Min: min(before, after), Max: max(before, after)}
}

func content() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	return b
}

// A change killed after the undo file was saved (the file shrunk and
// overwritten here) is put back byte for byte by Recover, and the undo
// file goes.
func TestRecoverPutsTheFileBack(t *testing.T) {
	orig := content()
	for _, c := range []struct {
		name   string
		ranges []Range
		to     int64 // the size the change gives the file
		change func(*os.File)
	}{
		{"shrunk", []Range{{0, 512}, {32 << 10, 32 << 10}}, 32 << 10, func(f *os.File) {
			f.Truncate(32 << 10)
			f.WriteAt(make([]byte, 512), 0)
		}},
		{"grown", []Range{{64<<10 - 512, 512}}, 1 << 20, func(f *os.File) {
			f.Truncate(1 << 20)
			f.WriteAt([]byte("footer"), 64<<10-512)
		}},
		{"size only", nil, 1 << 20, func(f *os.File) { f.Truncate(1 << 20) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			name, f := file(t, orig)
			if _, err := Save(name, f, change(int64(len(orig)), c.to), c.ranges); err != nil {
				t.Fatal(err)
			}
			c.change(f)
			done, err := Recover(name)
			if err != nil || !done {
				t.Fatalf("Recover = %v, %v", done, err)
			}
			if got, _ := os.ReadFile(name); !bytes.Equal(got, orig) {
				t.Fatalf("the file was not put back (%d bytes)", len(got))
			}
			if left, _ := filepath.Glob(name + ".*"); len(left) > 0 {
				t.Fatalf("left behind: %v", left)
			}
			if done, err := Recover(name); done || err != nil {
				t.Fatalf("a second Recover = %v, %v; want nothing to do", done, err)
			}
		})
	}
}

// A damaged undo file is refused before a byte of the file is written,
// and kept for whoever restores by hand.
func TestDamagedUndoWritesNothing(t *testing.T) {
	orig := content()
	for _, damage := range []func([]byte) []byte{
		func(b []byte) []byte { b[len(magic)+40] ^= 1; return b },              // data
		func(b []byte) []byte { return b[:len(b)-1] },                          // cut short
		func(b []byte) []byte { return b[:len(magic)] },                        // header lost
		func(b []byte) []byte { copy(b, "VHDPREP-RESIZE-UNDO-9\n"); return b }, // another version
	} {
		name, f := file(t, orig)
		if _, err := Save(name, f, change(int64(len(orig)), 100), []Range{{0, 4096}}); err != nil {
			t.Fatal(err)
		}
		f.Truncate(100)
		changed, _ := os.ReadFile(name)
		undo, _ := os.ReadFile(name + Suffix)
		os.WriteFile(name+Suffix, damage(undo), 0o600)
		done, err := Recover(name)
		if done || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Recover of a damaged undo = %v, %v; want ErrCorrupt", done, err)
		}
		if got, _ := os.ReadFile(name); !bytes.Equal(got, changed) {
			t.Fatal("a damaged undo file wrote into the file")
		}
		if _, err := os.Stat(name + Suffix); err != nil {
			t.Fatal("the damaged undo file was removed")
		}
	}
}

// An undo file that is not the file's own is refused before a byte of
// the file is written, with what to do, and kept: one saved for another
// file and planted beside this one (its checksum is right), one writable
// by others, a symbolic link to a file's undo, a FIFO, and one whose file has
// since been changed to a size the change never gave it.
func TestForeignUndoIsRefused(t *testing.T) {
	orig := content()
	// planted saves an undo file for another file and puts it beside name.
	planted := func(t *testing.T, name string) {
		other, f := file(t, orig)
		if _, err := Save(other, f, change(int64(len(orig)), 0), []Range{{0, 4096}}); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(other+Suffix, name+Suffix); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name, why string
		plant     func(t *testing.T, name string, f *os.File)
	}{
		{"another file's", "it was written for inode", func(t *testing.T, name string, f *os.File) { planted(t, name) }},
		{"writable by others", "others may write it", func(t *testing.T, name string, f *os.File) {
			Save(name, f, change(int64(len(orig)), 0), nil)
			os.Chmod(name+Suffix, 0o666)
		}},
		{"a symbolic link", "symbolic link", func(t *testing.T, name string, f *os.File) {
			Save(name, f, change(int64(len(orig)), 0), nil)
			os.Rename(name+Suffix, name+".saved")
			os.Symlink(name+".saved", name+Suffix)
		}},
		{"a FIFO", "not a regular file", func(t *testing.T, name string, f *os.File) {
			if err := syscall.Mkfifo(name+Suffix, 0o600); err != nil {
				t.Skip(err)
			}
		}},
		{"the file changed since", "the file is 1048576 bytes", func(t *testing.T, name string, f *os.File) {
			Save(name, f, change(int64(len(orig)), 100), nil)
			f.Truncate(1 << 20)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			name, f := file(t, orig)
			c.plant(t, name, f)
			before, _ := os.ReadFile(name)
			// Read a FIFO and the test waits for a writer: only a regular
			// undo file is compared.
			var undo []byte
			if st, err := os.Lstat(name + Suffix); err == nil && st.Mode().IsRegular() {
				undo, _ = os.ReadFile(name + Suffix)
			}
			done, err := Recover(name)
			if done || !errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("Recover = %v, %v; want ErrForeign saying %q", done, err, c.why)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "remove "+name+Suffix) {
				t.Fatalf("the refusal does not say on one line what to do: %s", msg)
			}
			if got, _ := os.ReadFile(name); !bytes.Equal(got, before) {
				t.Fatal("a foreign undo file wrote into the file")
			}
			if _, err := os.Lstat(name + Suffix); err != nil {
				t.Fatal("the foreign undo file was removed")
			}
			if undo != nil {
				if got, _ := os.ReadFile(name + Suffix); !bytes.Equal(got, undo) {
					t.Fatal("the foreign undo file was not kept as it was")
				}
			}
		})
	}
}

// Restore puts the file back at once, as a failed verification needs.
func TestRestore(t *testing.T) {
	orig := content()
	name, f := file(t, orig)
	u, err := Save(name, f, change(int64(len(orig)), 8<<20), []Range{{1024, 2048}})
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(make([]byte, 2048), 1024)
	f.Truncate(8 << 20)
	if err := u.Restore(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(name); !bytes.Equal(got, orig) {
		t.Fatal("Restore did not put the file back")
	}
	if _, err := os.Stat(name + Suffix); err == nil {
		t.Fatal("the undo file is left after Restore")
	}
}

// FuzzRecover: whatever an undo file holds, Recover never panics, never
// writes past the size the undo file claims nor from a file that does not
// verify, and either puts the file back or leaves it alone.
func FuzzRecover(f *testing.F) {
	dir := f.TempDir()
	seed := func(ranges []Range) []byte {
		name := filepath.Join(dir, "seed.img")
		os.WriteFile(name, content(), 0o600)
		fl, err := os.Open(name)
		if err != nil {
			f.Fatal(err)
		}
		defer fl.Close()
		if _, err := Save(name, fl, Sizes{Before: 64 << 10}, ranges); err != nil {
			f.Fatal(err)
		}
		b, _ := os.ReadFile(name + Suffix)
		return b
	}
	f.Add(seed(nil))
	f.Add(seed([]Range{{0, 512}, {60 << 10, 4 << 10}}))
	f.Fuzz(func(t *testing.T, undo []byte) {
		name, fl := file(t, []byte("unchanged"))
		fl.Close()
		os.WriteFile(name+Suffix, undo, 0o600)
		done, err := Recover(name)
		if !done {
			if err == nil {
				t.Fatal("an undo file that was not applied gave no error")
			}
			if got, _ := os.ReadFile(name); string(got) != "unchanged" {
				t.Fatal("an undo file that did not verify changed the file")
			}
		}
	})
}

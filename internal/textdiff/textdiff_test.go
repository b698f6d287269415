package textdiff

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnified(t *testing.T) {
	a := "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n"
	b := "one\ntwo\nTHREE\nfour\nfive\nsix\nseven\neight\nnine\nten\neleven\n"
	var out bytes.Buffer
	Unified(&out, "a/f", "b/f", []byte(a), []byte(b))
	want := `--- a/f
+++ b/f
@@ -1,6 +1,6 @@
 one
 two
-three
+THREE
 four
 five
 six
@@ -8,3 +8,4 @@
 eight
 nine
 ten
+eleven
`
	if out.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out.String(), want)
	}
	// patch(1), the independent oracle, applies it.
	if _, err := exec.LookPath("patch"); err == nil {
		dir := t.TempDir()
		f := filepath.Join(dir, "f")
		os.WriteFile(f, []byte(a), 0o644)
		cmd := exec.Command("patch", "-s", f)
		cmd.Stdin = strings.NewReader(out.String())
		if o, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("patch: %v %s", err, o)
		}
		if got, _ := os.ReadFile(f); string(got) != b {
			t.Fatalf("patched = %q", got)
		}
	}
	out.Reset()
	Unified(&out, "a", "b", []byte(a), []byte(a))
	if out.Len() != 0 {
		t.Fatal("equal texts gave a diff")
	}
}

// A binary file is named with its sizes, never printed.
func TestUnifiedBinary(t *testing.T) {
	var out bytes.Buffer
	Unified(&out, "a/boot/initrd.img", "b/boot/initrd.img", []byte("070701\x00\x01"), []byte("070701\x00\x01\x02"))
	if want := "Binary files a/boot/initrd.img and b/boot/initrd.img differ (8 bytes, now 9)\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

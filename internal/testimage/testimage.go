// Package testimage builds the real disk images tests read, from the recipes
// in testdata/images/, and caches them under CacheDir keyed by the recipe's
// content, so a suite (and every later run on the machine, and every
// checkout on it) builds each image once.
//
// A recipe is testdata/images/NAME.sh, run as `bash NAME.sh OUT` with the
// repository root as working directory; it writes the image to OUT. A line
// `# tools: a b c` names the programs it needs. Every file under
// testdata/images is part of every recipe's cache key, since recipes
// source shared scripts and run generators kept there.
package testimage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Path returns the image that recipe name builds, building it if needed.
// Tests must not modify it: use Copy for an image to write to.
func Path(t testing.TB, name string) string {
	t.Helper()
	root := RepoRoot(t)
	recipe := filepath.Join(root, "testdata", "images", name+".sh")
	script, err := os.ReadFile(recipe)
	if err != nil {
		t.Fatalf("testimage: no recipe %s: %v", recipe, err)
	}
	RequireTools(t, toolsOf(script)...)
	sum, err := recipesHash(filepath.Join(root, "testdata", "images"), name)
	if err != nil {
		t.Fatal(err)
	}
	dir := CacheDir(t, "testimages")
	out := filepath.Join(dir, name+"-"+hex.EncodeToString(sum[:6])+".img")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Build beside the cache entry and rename, so concurrent test processes
	// building the same image never see a half-written one.
	tmp, err := os.MkdirTemp(dir, name+"-build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	built := filepath.Join(tmp, "image")
	cmd := exec.Command("bash", recipe, built)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	if outp, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testimage: recipe %s failed: %v\n%s", name, err, outp)
	}
	if err := os.Rename(built, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Copy returns a private, writable copy of the image recipe name builds,
// keeping holes so large sparse images stay cheap.
func Copy(t testing.TB, name string) string {
	t.Helper()
	src := Path(t, name)
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("testimage: copying %s: %v\n%s", src, err, out)
	}
	return dst
}

// RequireTools skips the test when a program is missing, or fails it when
// VHDPREP_REQUIRE_TOOLS=1 (as `make test` sets): there the tools were
// installed, and a skip would hide a broken set-up.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("missing tools %s (make test installs them)", strings.Join(missing, ", "))
	if os.Getenv("VHDPREP_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// CacheDir is the directory sub of the tests' cache outside the checkout,
// ${XDG_CACHE_HOME:-$HOME/.cache}/vhdprep/sub (scripts/cache-dir.sh names
// the same one): CI runs in a fresh clone, where a cache inside it would
// always be empty. Entries are keyed by their inputs, so checkouts share them.
func CacheDir(t testing.TB, sub string) string {
	t.Helper()
	dir, err := cacheDir(sub)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func cacheDir(sub string) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("testimage: no cache directory (set XDG_CACHE_HOME or HOME): %w", err)
	}
	dir := filepath.Join(base, "vhdprep", sub)
	return dir, os.MkdirAll(dir, 0o755)
}

// SharedDir is the project's shared test material, ../shared beside the
// repository whose root is root: beside the main checkout when root is a
// git worktree of it, since worktrees may live anywhere.
func SharedDir(root string) string {
	if out, err := exec.Command("git", "-C", root, "rev-parse", "--path-format=absolute", "--git-common-dir").Output(); err == nil {
		root = filepath.Dir(strings.TrimSpace(string(out)))
	}
	return filepath.Join(root, "..", "shared")
}

// RepoRoot is the directory holding go.mod, found from the working directory
// (go test runs each package in its own directory).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testimage: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// recipesHash hashes the recipe's name and every file of the recipes
// folder, so a change to anything a recipe uses rebuilds its image.
func recipesHash(dir, name string) ([sha256.Size]byte, error) {
	h := sha256.New()
	h.Write([]byte(name))
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", p[len(dir):], len(b))
		h.Write(b)
		return nil
	})
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum, err
}

func toolsOf(script []byte) []string {
	for _, line := range strings.Split(string(script), "\n") {
		if rest, ok := strings.CutPrefix(line, "# tools:"); ok {
			return strings.Fields(rest)
		}
	}
	return nil
}

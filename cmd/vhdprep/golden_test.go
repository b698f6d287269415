package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/azurite"
	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/internal/textdiff"
	"github.com/vhdprep/vhdprep/upload"
)

// go test ./cmd/vhdprep -run TestGoldenJSON -update writes the golden files
// again from the binary's output.
var update = flag.Bool("update", false, "rewrite testdata/golden/*.json from the binary's output")

const goldenDir = "testdata/golden"

// runOut runs the binary in dir and returns its exit code, stdout and
// stderr apart.
func runOut(t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(vhdprepBin, args...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errOut.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errOut.String()
}

// copyImage copies a test image into dir under name, sparse.
func copyImage(t *testing.T, image, dir, name string) {
	t.Helper()
	if out, err := exec.Command("cp", "--sparse=always", testimage.Path(t, image), filepath.Join(dir, name)).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v\n%s", image, err, out)
	}
}

// volatile are the values that differ from run to run or build to build:
// times, identities made at random, the test build's toolchain and the
// agent binary's size and digest, Azurite's port.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`("(?:timestamp|unique_id|checksum|go|sha256|elapsed_seconds|data_bytes_per_second)": )("[^"]*"|[-0-9.e+]+)`), `$1"VOLATILE"`},
	{regexp.MustCompile(`(Binary files \S+ and \S+ differ \()\d+( bytes, now )\d+\)`), `${1}N${2}N)`},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), `127.0.0.1:PORT`},
}

func normalize(s, dir string) string {
	if dir != "" {
		s = strings.ReplaceAll(s, dir, "$TMP")
	}
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.with)
	}
	return s
}

// TestGoldenJSON runs every command with --output json on the test images
// and compares the documents with testdata/golden (volatile values
// normalized): a change of vocabulary is a visible diff there.
func TestGoldenJSON(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	dir := t.TempDir()
	copyImage(t, "disk-debian-mbr", dir, "disk.img")
	copyImage(t, "disk-debian-mbr", dir, "fixed.img")
	copyImage(t, "disk-debian-mbr", dir, "deprov.img")
	copyImage(t, "disk-debian-mbr", dir, "agent.img")

	type step struct {
		golden string
		code   int
		args   []string
		env    []string
	}
	steps := []step{
		{"version", exitOK, []string{"version"}, nil},
		{"info", exitOK, []string{"info", "disk.img"}, nil},
		{"inspect", exitOK, []string{"inspect", "disk.img"}, nil},
		{"ls", exitOK, []string{"ls", "disk.img", "/etc/default"}, nil},
		{"cat", exitOK, []string{"cat", "disk.img", "/etc/hostname"}, nil},
		{"check", exitGate, []string{"check", "disk.img"}, nil},
		{"prepare", exitOK, []string{"prepare", "disk.img", "prepared.vhd", "--config", demoConfig(t)}, nil},
		{"check-list-rules", exitOK, []string{"check", "--list-rules"}, nil},
		{"fix-dry-run", exitOK, []string{"fix", "fixed.img", "--only", "KRN001,NET004", "--dry-run"}, nil},
		{"fix", exitOK, []string{"fix", "fixed.img", "--only", "KRN001,NET004"}, nil},
		{"deprovision-dry-run", exitOK, []string{"deprovision", "deprov.img", "--dry-run"}, nil},
		{"deprovision", exitOK, []string{"deprovision", "deprov.img"}, nil},
		{"agent-inject-dry-run", exitOK, []string{"agent", "inject", "agent.img", "--dry-run"}, nil},
		{"agent-inject", exitOK, []string{"agent", "inject", "agent.img"}, nil},
		{"agent-remove", exitOK, []string{"agent", "remove", "agent.img"}, nil},
		{"convert", exitOK, []string{"convert", "disk.img", "disk.vhd"}, nil},
		{"info-vhd", exitOK, []string{"info", "disk.vhd"}, nil},
		{"resize", exitOK, []string{"resize", "disk.vhd", "--size", "128M"}, nil},
	}
	if _, err := exec.LookPath("node"); err == nil {
		srv := azurite.Start(t)
		srv.CreateContainer(t, "vhds")
		small, _ := chunkyVHD(t, 32<<20, 4)
		copyFile(t, small, filepath.Join(dir, "small.vhd"))
		env := []string{upload.EnvConnectionString + "=" + azurite.ConnectionString(srv.Endpoint)}
		steps = append(steps,
			step{"upload", exitOK, []string{"upload", "small.vhd", "--container", "vhds", "--verify"}, env},
			step{"upload-check", exitGate, []string{"upload", "disk.vhd", "--container", "vhds", "--check"}, env},
		)
	} else {
		t.Log("no node for Azurite: upload's documents are not compared")
	}
	for _, s := range steps {
		code, out, errOut := runOut(t, dir, s.env, append(s.args, "--output", "json")...)
		if code != s.code {
			t.Errorf("%s: exit %d, want %d\n%s%s", s.golden, code, s.code, out, errOut)
			continue
		}
		got := normalize(out, dir)
		if err := checkVocabulary(s.golden, []byte(got)); err != nil {
			t.Errorf("%s: %v", s.golden, err)
		}
		file := filepath.Join(goldenDir, s.golden+".json")
		if *update {
			if err := os.MkdirAll(goldenDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("%s: %v (go test -run TestGoldenJSON -update writes it)", s.golden, err)
			continue
		}
		if string(want) != got {
			var d strings.Builder
			textdiff.Unified(&d, file, s.golden+" now", want, []byte(got))
			t.Errorf("%s: the JSON differs from its golden file (go test -run TestGoldenJSON -update, if the change is meant):\n%s", s.golden, d.String())
		}
	}
}

// TestGoldenFilesKeepTheRules holds every golden file to the vocabulary
// the README documents.
func TestGoldenFilesKeepTheRules(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if err != nil || len(files) < 15 {
		t.Fatalf("%d golden files in %s, %v", len(files), goldenDir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkVocabulary(strings.TrimSuffix(filepath.Base(f), ".json"), b); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// noImage are the documents about no image.
var noImage = []string{"version", "check-list-rules"}

// checkVocabulary says how doc breaks the rules of the JSON vocabulary: an
// object, schema_version 1 first, the image named "image", snake_case
// keys, no null, byte counts ("..._bytes") as strings, no number a JSON
// reader would round.
func checkVocabulary(name string, doc []byte) error {
	var problems []string
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return err
	}
	if !bytes.HasPrefix(bytes.TrimSpace(doc), []byte("{\n  \"schema_version\": 1,")) {
		problems = append(problems, "schema_version: 1 is not the first key")
	}
	if _, ok := top["image"]; !ok && !slices.Contains(noImage, name) {
		problems = append(problems, `no "image" key`)
	}
	// Walk the tokens, knowing which key each value is under.
	type frame struct {
		object bool
		key    string // the key whose value comes next, in an object
		want   bool   // a key comes next
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		key := ""
		if n := len(stack); n > 0 && stack[n-1].object {
			if stack[n-1].want {
				if _, isDelim := tok.(json.Delim); !isDelim {
					k := tok.(string)
					if !snakeCase.MatchString(k) {
						problems = append(problems, "key "+k+" is not snake_case")
					}
					stack[n-1].key, stack[n-1].want = k, false
					continue
				}
			} else {
				key = stack[n-1].key
				stack[n-1].want = true
			}
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, frame{object: true, want: true})
			case '[':
				stack = append(stack, frame{})
			default:
				stack = stack[:len(stack)-1]
			}
		case nil:
			problems = append(problems, "null under "+key)
		case json.Number:
			if strings.HasSuffix(key, "_bytes") {
				problems = append(problems, key+" is a number, not a string")
			}
			if f, err := v.Float64(); err != nil || math.Abs(f) > 1<<53 {
				problems = append(problems, key+" = "+v.String()+" may be rounded")
			}
		case string:
		case bool:
		}
	}
	if len(problems) > 0 {
		return &vocabularyError{problems}
	}
	return nil
}

type vocabularyError struct{ problems []string }

func (e *vocabularyError) Error() string { return strings.Join(e.problems, "; ") }

// The rules catch what they are for.
func TestVocabularyRulesCatchBreaks(t *testing.T) {
	for doc, want := range map[string]string{
		"{\n  \"schema_version\": 1,\n  \"image\": \"a\",\n  \"list\": null\n}":                    "null under list",
		"{\n  \"schema_version\": 1,\n  \"image\": \"a\",\n  \"x\": {\"StartBytes\": \"1\"}\n}":    "not snake_case",
		"{\n  \"schema_version\": 1,\n  \"image\": \"a\",\n  \"size_bytes\": 1\n}":                 "size_bytes is a number",
		"{\n  \"schema_version\": 1,\n  \"image\": \"a\",\n  \"n\": 18014398509481984\n}":          "may be rounded",
		"{\n  \"schema_version\": 1,\n  \"path\": \"a\"\n}":                                        `no "image" key`,
		"{\n  \"image\": \"a\",\n  \"schema_version\": 1\n}":                                       "not the first key",
		"{\n  \"schema_version\": 1,\n  \"image\": \"a\",\n  \"v\": [{\"a\": {\"b\": [null]}}]\n}": "null under",
	} {
		if err := checkVocabulary("x", []byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
	if err := checkVocabulary("x", []byte("{\n  \"schema_version\": 1,\n  \"image\": \"a\",\n  \"v\": [{\"a_bytes\": \"1\", \"b\": []}]\n}")); err != nil {
		t.Errorf("a good document: %v", err)
	}
}

// info of every container format qemu-img writes keeps the vocabulary's
// rules: its fields depend on qemu-img's version, so there is no golden
// file to compare.
func TestInfoOfEveryFormatKeepsTheRules(t *testing.T) {
	testimage.RequireTools(t, "qemu-img")
	dir := t.TempDir()
	copyImage(t, "disk-debian-mbr", dir, "disk.img")
	for _, f := range []string{"qcow2", "vdi", "vhdx", "vmdk", "vpc"} {
		name := "disk." + f
		if out, err := exec.Command("qemu-img", "convert", "-O", f, filepath.Join(dir, "disk.img"), filepath.Join(dir, name)).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img convert -O %s: %v\n%s", f, err, out)
		}
		for _, cmd := range []string{"info", "inspect"} {
			code, out, errOut := runOut(t, dir, nil, cmd, name, "-o", "json")
			if code != exitOK {
				t.Errorf("%s %s: exit %d\n%s", cmd, name, code, errOut)
				continue
			}
			if err := checkVocabulary(cmd, []byte(out)); err != nil {
				t.Errorf("%s %s: %v\n%s", cmd, name, err, out)
			}
		}
	}
}

package imagelock

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
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

// A lock file no process holds (its vhdprep was killed) is taken, whatever
// it says.
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

// lockRacerEnv makes the test binary a lock racer (see TestMain).
const lockRacerEnv = "VHDPREP_LOCK_RACER"

// TestMain turns the test binary into a lock racer when lockRacerEnv names
// an image: it waits for a byte on stdin (the start signal), tries the lock
// once, prints "held" or "refused", then waits for stdin to close and exits
// without releasing, so a lock it holds is left behind stale.
func TestMain(m *testing.M) {
	img := os.Getenv(lockRacerEnv)
	if img == "" {
		os.Exit(m.Run())
	}
	in := bufio.NewReader(os.Stdin)
	in.ReadByte()
	if _, err := Take(img); err == nil {
		fmt.Println("held")
	} else {
		fmt.Println("refused")
	}
	io.Copy(io.Discard, in)
	os.Exit(0)
}

// Of processes racing for one image, exactly one gets the lock, round after
// round, though every round starts from the stale lock the last round's
// holder left when it exited: two racers never both take a stale lock over.
func TestOneLockHolderAmongRacingProcesses(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	os.WriteFile(img, nil, 0o600)
	os.WriteFile(img+Suffix, []byte("999999999\n"), 0o600) // stale from the start
	const rounds, racers = 150, 6
	for round := 0; round < rounds; round++ {
		var stdins []io.WriteCloser
		var outs []*bufio.Reader
		var cmds []*exec.Cmd
		for i := 0; i < racers; i++ {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), lockRacerEnv+"="+img)
			in, _ := cmd.StdinPipe()
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			stdins, outs, cmds = append(stdins, in), append(outs, bufio.NewReader(out)), append(cmds, cmd)
		}
		for _, in := range stdins {
			in.Write([]byte{1})
		}
		held := 0
		for _, out := range outs {
			if line, _ := out.ReadString('\n'); line == "held\n" {
				held++
			}
		}
		for i, in := range stdins {
			in.Close()
			cmds[i].Wait()
		}
		if held != 1 {
			t.Fatalf("round %d: %d of %d racing processes hold the lock", round, held, racers)
		}
	}
}

// A symbolic link planted as the lock file is refused, saying what to do,
// and the file it points to keeps its bytes.
func TestSymlinkLockIsRefused(t *testing.T) {
	dir := t.TempDir()
	img, victim := filepath.Join(dir, "disk.img"), filepath.Join(dir, "victim")
	os.WriteFile(img, nil, 0o600)
	os.WriteFile(victim, []byte("precious"), 0o600)
	if err := os.Symlink(victim, img+Suffix); err != nil {
		t.Fatal(err)
	}
	l, err := Take(img)
	if err == nil {
		l.Release()
	}
	if err == nil || !strings.Contains(err.Error(), "is a symbolic link") || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("Take = %v", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Fatalf("the link's target was written: %q", b)
	}
}

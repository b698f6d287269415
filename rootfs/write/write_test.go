package write

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vhdprep/vhdprep/internal/fileundo"
	"github.com/vhdprep/vhdprep/internal/imagelock"
	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/rootfs"
)

// The Debian test disk's root: partition 1, at 1 MiB, 95 MiB long.
const (
	rootOffset = 1 << 20
	rootSize   = 95 << 20
)

func disk(t *testing.T) string {
	t.Helper()
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	return testimage.Copy(t, "disk-debian-mbr")
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// listing is every file of the root with a checksum of its content.
func listing(t *testing.T, image string) map[string][32]byte {
	t.Helper()
	f, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tree, err := rootfs.OpenFS(sectionReader(f), rootSize, "ext4")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][32]byte{}
	fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		b, _ := tree.ReadFile(p)
		out[p] = sha256.Sum256(b)
		return nil
	})
	return out
}

func TestExt4ChangesAreAppliedAndNothingElseMoves(t *testing.T) {
	img := disk(t)
	before := listing(t, img)
	e, err := OpenExt4(img, rootOffset, rootSize)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.Mkdir("/etc/default", 0o755, 0, 0) // exists: nothing to do
	e.Mkdir("/etc/vhdprep", 0o755, 0, 0)
	e.WriteFile("/etc/vhdprep/agent.conf", []byte("Provisioning.Enabled=y\n"), 0o600, 0, 0)
	e.WriteFile("/etc/hostname", []byte("azure\n"), 0o644, 0, 0) // replaces
	e.Symlink("/etc/vhdprep/agent.conf", "/etc/vhdprep-agent.conf")
	e.Remove("/etc/machine-id")
	e.Remove("/etc/does-not-exist")
	e.Remove("/etc/conf.d/item-1.conf")
	e.Mkdir("/var/lib", 0o755, 0, 0)
	e.Mkdir("/var/lib/cloud", 0o755, 0, 0)
	e.Mkdir("/var/lib/cloud/instances", 0o755, 0, 0)
	e.Rmdir("/var/lib/cloud/instances")
	if err := e.Apply(); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if out, err := exec.Command("e2fsck", "-fn", img+"?offset=1048576").CombinedOutput(); err != nil {
		t.Fatalf("e2fsck: %v\n%s", err, out)
	}
	after := listing(t, img)
	changed := map[string]bool{"etc/vhdprep/agent.conf": true, "etc/hostname": true, "etc/machine-id": true, "etc/conf.d/item-1.conf": true}
	for p, sum := range before {
		if !changed[p] && after[p] != sum {
			t.Errorf("%s changed though no change touched it", p)
		}
	}
	if _, ok := after["etc/machine-id"]; ok {
		t.Error("etc/machine-id was not removed")
	}
	for _, leftover := range []string{imagelock.Suffix, pendingSuffix, undoSuffix} {
		if _, err := os.Stat(img + leftover); err == nil {
			t.Errorf("%s left behind", leftover)
		}
	}
}

func TestExt4FailureRestoresEveryByte(t *testing.T) {
	img := disk(t)
	sum := fileSum(t, img)
	e, err := OpenExt4(img, rootOffset, rootSize)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.WriteFile("/etc/first", []byte("written before the failure"), 0o644, 0, 0)
	e.WriteFile("/etc/huge", make([]byte, 200<<20), 0o644, 0, 0) // more than the filesystem holds
	err = e.Apply()
	if err == nil || !strings.Contains(err.Error(), "restored") {
		t.Fatalf("Apply = %v; want a failure that restored the image", err)
	}
	if fileSum(t, img) != sum {
		t.Fatal("the image differs from before the failed change")
	}
}

// A change killed half way leaves a pending record; the next opener
// restores the image before doing anything else.
func TestInterruptedChangeIsRolledBack(t *testing.T) {
	img := disk(t)
	sum := fileSum(t, img)
	undo := img + undoSuffix + ".0"
	sb, _ := readSuperblock(img, rootOffset)
	if err := writeRecord(img, record{Filesystems: []fsUndo{{Offset: rootOffset, Undo: filepath.Base(undo), Superblock: sb}}}); err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(t.TempDir(), "x")
	os.WriteFile(host, []byte("half a change"), 0o644)
	// What Apply runs, as if it were killed right after debugfs.
	if out, err := exec.Command("debugfs", "-w", "-z", undo, "-R", "write "+host+" /etc/half", img+"?offset=1048576").CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v %s", err, out)
	}
	if fileSum(t, img) == sum {
		t.Fatal("the simulated change changed nothing")
	}
	e, err := OpenExt4(img, rootOffset, rootSize)
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if fileSum(t, img) != sum {
		t.Fatal("the interrupted change was not rolled back")
	}
}

func TestRefusals(t *testing.T) {
	img := disk(t)
	e, err := OpenExt4(img, rootOffset, rootSize)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenExt4(img, rootOffset, rootSize); !errors.Is(err, ErrLocked) {
		t.Fatalf("second writer: %v", err)
	}
	e.Close()
	// A lock whose process is gone is taken over.
	os.WriteFile(img+imagelock.Suffix, []byte("999999999\n"), 0o600)
	e, err = OpenExt4(img, rootOffset, rootSize)
	if err != nil {
		t.Fatalf("stale lock: %v", err)
	}
	e.Close()

	if out, err := exec.Command("debugfs", "-w", "-R", "feature needs_recovery", img+"?offset=1048576").CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v %s", err, out)
	}
	sum := fileSum(t, img)
	if _, err := OpenExt4(img, rootOffset, rootSize); !errors.Is(err, ErrNeedsRecovery) {
		t.Fatalf("journal needing recovery: %v", err)
	}
	if fileSum(t, img) != sum {
		t.Fatal("a refused image was changed")
	}
}

// A feature bit this e2fsprogs does not know (the superblock checksum
// recomputed, as a newer mke2fs would write it) is refused before anything
// is written.
func TestRefusesFeaturesDebugfsDoesNotKnow(t *testing.T) {
	img := disk(t)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	sb := make([]byte, superblockSize)
	f.ReadAt(sb, rootOffset+superblockOffset)
	le := binary.LittleEndian
	le.PutUint32(sb[incompatOffset:], le.Uint32(sb[incompatOffset:])|0x40000000)
	le.PutUint32(sb[1020:], ^crc32.Checksum(sb[:1020], crc32.MakeTable(crc32.Castagnoli)))
	f.WriteAt(sb, rootOffset+superblockOffset)
	f.Close()
	sum := fileSum(t, img)
	_, err = OpenExt4(img, rootOffset, rootSize)
	if !errors.Is(err, ErrTooOld) || !strings.Contains(err.Error(), "incompat features 0x4") || !strings.Contains(err.Error(), "fix --root") {
		t.Fatalf("unknown feature: %v", err)
	}
	if fileSum(t, img) != sum {
		t.Fatal("a refused image was changed")
	}
	if _, err := os.Stat(img + imagelock.Suffix); err == nil {
		t.Fatal("the lock was left behind")
	}
}

func TestDir(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/default"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/default/grub"), []byte("old"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/machine-id"), []byte("id"), 0o644)
	d, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	d.WriteFile("/etc/default/grub", []byte("new"), 0o644, os.Getuid(), os.Getgid())
	d.Mkdir("/etc/default", 0o755, 0, 0)
	d.Symlink("default/grub", "/etc/grub-link")
	d.Remove("/etc/machine-id")
	if err := d.Apply(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/grub-link")); string(b) != "new" {
		t.Fatalf("grub via link = %q", b)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/machine-id")); err == nil {
		t.Fatal("machine-id not removed")
	}
	// Removing a tree: its files, then the directory.
	os.MkdirAll(filepath.Join(root, "var/lib/cloud/instances/i-1"), 0o755)
	os.WriteFile(filepath.Join(root, "var/lib/cloud/instances/i-1/obj.pkl"), []byte("x"), 0o644)
	d.Remove("/var/lib/cloud/instances/i-1/obj.pkl")
	d.Rmdir("/var/lib/cloud/instances/i-1")
	d.Rmdir("/var/lib/cloud/instances")
	if err := d.Apply(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "var/lib/cloud")); len(ents) != 0 {
		t.Fatalf("var/lib/cloud still holds %v", ents)
	}
	// A failing change undoes the ones before it.
	d.WriteFile("/etc/default/grub", []byte("newer"), 0o644, 0, 0)
	d.WriteFile("/no/such/dir/file", []byte("x"), 0o644, 0, 0)
	if err := d.Apply(); err == nil {
		t.Fatal("a write into a missing directory succeeded")
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/default/grub")); string(b) != "new" {
		t.Fatalf("grub after a failed change = %q, want it rolled back to %q", b, "new")
	}
	// Paths through symlinks are refused, so nothing lands outside the tree.
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(root, "escape"))
	d.WriteFile("/escape/file", []byte("x"), 0o644, 0, 0)
	if err := d.Apply(); err == nil {
		t.Fatal("a write through a symlink succeeded")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatal("a file was written outside the tree")
	}
}

func sectionReader(f *os.File) *io.SectionReader { return io.NewSectionReader(f, rootOffset, rootSize) }

// When the evidence cannot show the image as it was (no undo header, yet
// the filesystem changed), recovery stops with a message that says what
// state the filesystem is in and what to run, and keeps the record.
func TestWedgedChangeSaysWhatToRun(t *testing.T) {
	img := disk(t)
	sb, _ := readSuperblock(img, rootOffset)
	if err := writeRecord(img, record{Filesystems: []fsUndo{{Offset: rootOffset, Undo: filepath.Base(img) + undoSuffix + ".0", Superblock: sb}}}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(img+undoSuffix+".0", []byte("E2UN"), 0o600) // killed writing the header
	// A change made without an undo file.
	if out, err := exec.Command("debugfs", "-w", "-R", "mkdir /made-without-undo", img+"?offset=1048576").CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v %s", err, out)
	}
	err := RecoverInterrupted(img)
	if !errors.Is(err, ErrWedged) {
		t.Fatalf("recovery = %v; want ErrWedged", err)
	}
	for _, want := range []string{"offset 1048576", "e2fsck -fn finds it clean", "restore the image from a backup", "e2fsck -fy " + img + "?offset=1048576", "remove " + img + pendingSuffix} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the message lacks %q: %v", want, err)
		}
	}
	if _, err := os.Stat(img + pendingSuffix); err != nil {
		t.Error("the record was removed though the image was not restored")
	}
}

// A record whose undo file was never begun (killed before debugfs wrote its
// header) and a filesystem as it was: nothing was changed, and recovery
// says so by clearing the record.
func TestNoUndoHeaderAndNothingChanged(t *testing.T) {
	img := disk(t)
	sum := fileSum(t, img)
	sb, _ := readSuperblock(img, rootOffset)
	if err := writeRecord(img, record{Filesystems: []fsUndo{{Offset: rootOffset, Undo: filepath.Base(img) + undoSuffix + ".0", Superblock: sb}}}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(img+undoSuffix+".0", nil, 0o600)
	if err := RecoverInterrupted(img); err != nil {
		t.Fatal(err)
	}
	if fileSum(t, img) != sum {
		t.Fatal("recovery changed an image the interrupted change had not touched")
	}
	if left, _ := filepath.Glob(img + ".vhdprep-*"); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// The record of a change planted beside an image (one written for another
// file, so it names another inode) is refused before anything is written,
// on one line that says what to do, and kept; so is a FIFO in place of a
// filesystem's undo file, which recovery would otherwise wait on.
func TestForeignRecordIsRefused(t *testing.T) {
	img := disk(t)
	sum := fileSum(t, img)
	sb, _ := readSuperblock(img, rootOffset)
	rec := record{Filesystems: []fsUndo{{Offset: rootOffset, Undo: filepath.Base(img) + undoSuffix + ".0", Superblock: make([]byte, len(sb))}}}
	other := filepath.Join(t.TempDir(), filepath.Base(img))
	os.WriteFile(other, []byte("another image"), 0o600)
	if err := writeRecord(other, rec); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other+pendingSuffix, img+pendingSuffix); err != nil {
		t.Fatal(err)
	}
	refused := func(why string) {
		t.Helper()
		err := RecoverInterrupted(img)
		if !errors.Is(err, fileundo.ErrForeign) || !strings.Contains(err.Error(), why) || strings.Contains(err.Error(), "\n") ||
			!strings.Contains(err.Error(), "remove "+img+pendingSuffix) {
			t.Fatalf("got %v; want a one-line refusal saying %q and what to do", err, why)
		}
		if fileSum(t, img) != sum {
			t.Fatal("a foreign record changed the image")
		}
		if _, err := os.Stat(img + pendingSuffix); err != nil {
			t.Fatal("the foreign record was removed")
		}
	}
	refused("it was written for inode")
	if err := writeRecord(img, rec); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(img+undoSuffix+".0", 0o600); err != nil {
		t.Fatal(err)
	}
	refused("not a regular file")
}

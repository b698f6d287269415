package write

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/vhdprep/vhdprep/internal/imagelock"
	"github.com/vhdprep/vhdprep/rootfs"
)

// Errors.
var (
	ErrNeedsRecovery = errors.New("the filesystem's journal needs recovery (it was not cleanly unmounted)")
	ErrLocked        = imagelock.ErrLocked
	ErrTooOld        = errors.New("e2fsprogs is too old")
)

// ext4 superblock fields the writer checks before touching anything.
const (
	superblockOffset  = 1024
	superblockSize    = 1024
	incompatOffset    = 96
	roCompatOffset    = 100
	incompatRecover   = 0x4 // the journal needs replaying
	minE2fsprogsMajor = 1
	minE2fsprogsMinor = 43 // ?offset= for debugfs and e2fsck, e2undo -o
	pendingSuffix     = ".vhdprep-pending"
	undoSuffix        = ".vhdprep-undo"
)

// pending is what a crash leaves behind: where the undo file applies, and
// the filesystem's primary superblock as it was. e2undo restores every
// block debugfs wrote except that superblock when the filesystem starts at
// an offset (e2fsprogs 1.47), so vhdprep keeps it itself.
type pending struct {
	Offset     int64  `json:"offset"`
	Undo       string `json:"undo"`
	Superblock []byte `json:"superblock"`
}

// Ext4 queues changes to an ext2/3/4 filesystem that starts offset bytes
// into an image file and is size bytes long.
type Ext4 struct {
	image        string
	offset, size int64
	ops          []op
	lock         *imagelock.Lock
}

type op struct {
	kind         string // write, mkdir, symlink, rm
	name, target string
	data         []byte
	perm         fs.FileMode
	uid, gid     int
}

// OpenExt4 prepares to change the filesystem at offset in image. It
// restores the image first if an earlier change was interrupted, and
// refuses images another vhdprep is changing, journals that need recovery,
// and e2fsprogs too old for the job.
func OpenExt4(image string, offset, size int64) (*Ext4, error) {
	if err := checkE2fsprogs(); err != nil {
		return nil, err
	}
	if err := CheckWritable(image); err != nil {
		return nil, err
	}
	lock, err := imagelock.Take(image)
	if err != nil {
		return nil, err
	}
	e := &Ext4{image: image, offset: offset, size: size, lock: lock}
	if err := Recover(image); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.checkClean(); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.checkFeatures(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

var versionRE = regexp.MustCompile(`(\d+)\.(\d+)`)

func checkE2fsprogs() error {
	out, err := exec.Command("debugfs", "-V").CombinedOutput()
	if err != nil {
		return fmt.Errorf("debugfs (e2fsprogs) is needed to change ext4 filesystems: %v; install e2fsprogs", err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return fmt.Errorf("%w: cannot read the version of debugfs: %q", ErrTooOld, out)
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	if major < minE2fsprogsMajor || (major == minE2fsprogsMajor && minor < minE2fsprogsMinor) {
		return fmt.Errorf("%w: debugfs %d.%d, at least 1.43 is needed; install a newer e2fsprogs", ErrTooOld, major, minor)
	}
	return nil
}

// CheckWritable refuses, before anything is touched, an image this user
// cannot change, or one whose directory cannot hold the lock and undo files.
func CheckWritable(image string) error {
	f, err := os.OpenFile(image, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%s: not writable (%v); fix changes the image in place: make it writable, or work on a copy", image, errors.Unwrap(err))
	}
	f.Close()
	if err := syscall.Access(filepath.Dir(image), 2); err != nil { // W_OK
		return fmt.Errorf("%s: its directory is not writable (%v), and vhdprep keeps its lock and undo files beside the image; work on a copy elsewhere", image, err)
	}
	return nil
}

// RecoverInterrupted restores an image whose change was interrupted, as
// Recover does, under the image's lock: a change another vhdprep is making
// right now is refused (ErrLocked), not undone. Commands that only read an
// image call it first, so they never read a half-made change.
func RecoverInterrupted(image string) error {
	if _, err := os.Stat(image + pendingSuffix); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	lock, err := imagelock.Take(image)
	if err != nil {
		return err
	}
	defer lock.Release()
	return Recover(image)
}

// Recover restores an image whose change was interrupted (a crash or a
// kill while debugfs was writing): the undo file puts back every block the
// change had touched. Every command that changes images calls it first.
func Recover(image string) error {
	b, err := os.ReadFile(image + pendingSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var p pending
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("%s: unreadable record of an interrupted change (%v); restore the image from a backup", image, err)
	}
	if _, err := os.Stat(p.Undo); err == nil {
		if out, err := exec.Command("e2undo", "-o", strconv.FormatInt(p.Offset, 10), p.Undo, image).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: restoring an interrupted change failed: %v: %s", image, err, lastLine(out))
		}
	}
	if err := writeAt(image, p.Superblock, p.Offset+superblockOffset); err != nil {
		return fmt.Errorf("%s: restoring the superblock: %w", image, err)
	}
	os.Remove(p.Undo)
	return os.Remove(image + pendingSuffix)
}

func writeAt(name string, b []byte, off int64) error {
	return writeSyncedAt(name, os.O_WRONLY, b, off)
}

// writeSyncedAt writes b at off and syncs it to disk before returning.
func writeSyncedAt(name string, flag int, b []byte, off int64) error {
	f, err := os.OpenFile(name, flag, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, off); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (e *Ext4) dev() string { return fmt.Sprintf("%s?offset=%d", e.image, e.offset) }

// superblock reads the filesystem's primary superblock.
func (e *Ext4) superblock() ([]byte, error) {
	f, err := os.Open(e.image)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sb := make([]byte, superblockSize)
	_, err = f.ReadAt(sb, e.offset+superblockOffset)
	return sb, err
}

// checkClean refuses a filesystem whose journal needs replaying: debugfs
// would change it under a journal that e2fsck later replays over it.
func (e *Ext4) checkClean() error {
	sb, err := e.superblock()
	if err != nil {
		return err
	}
	if binary.LittleEndian.Uint32(sb[incompatOffset:])&incompatRecover != 0 {
		return fmt.Errorf("%s: %w; run e2fsck on it (or boot it once and shut it down cleanly) first", e.image, ErrNeedsRecovery)
	}
	return nil
}

// checkFeatures opens the filesystem read-only with the installed debugfs:
// a filesystem with a feature this e2fsprogs does not know must not be
// written by it.
func (e *Ext4) checkFeatures() error {
	var stderr bytes.Buffer
	cmd := exec.Command("debugfs", "-R", "features", e.dev())
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil && !isExitError(err) {
		return fmt.Errorf("%s: running debugfs: %v", e.image, err)
	}
	msg := debugfsError(stderr.Bytes())
	switch {
	case strings.Contains(msg, "unsupported feature"):
		sb, _ := e.superblock()
		return fmt.Errorf("%s: %w: its debugfs cannot open this filesystem (incompat features 0x%x, ro_compat 0x%x); install a newer e2fsprogs, or run 'vhdprep fix --root' on the mounted tree",
			e.image, ErrTooOld, binary.LittleEndian.Uint32(sb[incompatOffset:]), binary.LittleEndian.Uint32(sb[roCompatOffset:]))
	case msg != "":
		return fmt.Errorf("%s: debugfs cannot open the filesystem at offset %d: %s", e.image, e.offset, msg)
	}
	return nil
}

func (e *Ext4) WriteFile(name string, data []byte, perm fs.FileMode, uid, gid int) error {
	e.ops = append(e.ops, op{kind: "write", name: clean(name), data: data, perm: perm, uid: uid, gid: gid})
	return nil
}

func (e *Ext4) Mkdir(name string, perm fs.FileMode, uid, gid int) error {
	e.ops = append(e.ops, op{kind: "mkdir", name: clean(name), perm: perm, uid: uid, gid: gid})
	return nil
}

func (e *Ext4) Symlink(target, name string) error {
	e.ops = append(e.ops, op{kind: "symlink", name: clean(name), target: target})
	return nil
}

func (e *Ext4) Remove(name string) error {
	e.ops = append(e.ops, op{kind: "rm", name: clean(name)})
	return nil
}

func (e *Ext4) Rmdir(name string) error {
	e.ops = append(e.ops, op{kind: "rmdir", name: clean(name)})
	return nil
}

func clean(name string) string { return "/" + strings.TrimPrefix(path.Clean("/"+name), "/") }

// Apply runs the queued changes as one debugfs script, then verifies the
// filesystem (e2fsck -fn) and every change (read back through vhdprep's
// own reader). On any failure it restores the image from the undo file.
func (e *Ext4) Apply() (err error) {
	if len(e.ops) == 0 {
		return nil
	}
	work, err := os.MkdirTemp("", "vhdprep-write-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	script, err := e.script(work)
	if err != nil {
		return err
	}
	undo := e.image + undoSuffix
	os.Remove(undo)
	sb, err := e.superblock()
	if err != nil {
		return err
	}
	if err := writeSynced(e.image+pendingSuffix, pending{Offset: e.offset, Undo: undo, Superblock: sb}); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if rerr := Recover(e.image); rerr != nil {
				err = fmt.Errorf("%w; and %v", err, rerr)
			} else {
				err = fmt.Errorf("%w; the image was restored", err)
			}
		}
	}()
	// debugfs echoes commands on stdout and reports failures on stderr; its
	// exit status tells only whether the last command worked.
	var stderr bytes.Buffer
	cmd := exec.Command("debugfs", "-w", "-z", undo, "-f", script, e.dev())
	cmd.Stderr = &stderr
	// If vhdprep dies, debugfs dies with it: a debugfs left writing would
	// race the next command's restore.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runErr := cmd.Run()
	if msg := debugfsError(stderr.Bytes()); msg != "" {
		return fmt.Errorf("%s: debugfs: %s", e.image, msg)
	}
	if runErr != nil && !isExitError(runErr) {
		return fmt.Errorf("%s: running debugfs: %v", e.image, runErr)
	}
	if out, err := exec.Command("e2fsck", "-fn", e.dev()).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: e2fsck found the filesystem damaged after the change: %s", e.image, lastLine(out))
	}
	if err := e.verify(); err != nil {
		return fmt.Errorf("%s: %w", e.image, err)
	}
	os.Remove(undo)
	e.ops = nil
	return os.Remove(e.image + pendingSuffix)
}

// script writes the debugfs commands (and the files they copy in).
func (e *Ext4) script(work string) (string, error) {
	tree, closeTree, err := e.reader()
	if err != nil {
		return "", err
	}
	defer closeTree()
	var b strings.Builder
	for i, o := range e.ops {
		if strings.ContainsAny(o.name+o.target, "\n\" ") {
			return "", fmt.Errorf("%q: names with spaces, quotes or newlines cannot be written through debugfs", o.name)
		}
		switch o.kind {
		case "write":
			host := filepath.Join(work, strconv.Itoa(i))
			if err := os.WriteFile(host, o.data, 0o600); err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "rm %s\nwrite %s %s\n", o.name, host, o.name)
			e.attrs(&b, o, 0o100000)
		case "mkdir":
			if info, err := tree.Lstat(strings.TrimPrefix(o.name, "/")); err == nil && info.IsDir() {
				continue // already there
			}
			fmt.Fprintf(&b, "mkdir %s\n", o.name)
			e.attrs(&b, o, 0o040000)
		case "symlink":
			fmt.Fprintf(&b, "rm %s\nsymlink %s %s\n", o.name, o.name, o.target)
		case "rm":
			fmt.Fprintf(&b, "rm %s\n", o.name)
		case "rmdir":
			fmt.Fprintf(&b, "rmdir %s\n", o.name)
		}
	}
	p := filepath.Join(work, "script")
	return p, os.WriteFile(p, []byte(b.String()), 0o600)
}

func (e *Ext4) attrs(b *strings.Builder, o op, typ uint32) {
	fmt.Fprintf(b, "sif %s mode 0%o\nsif %s uid %d\nsif %s gid %d\n", o.name, typ|uint32(o.perm.Perm()), o.name, o.uid, o.name, o.gid)
}

// debugfsError returns the first failure debugfs reported on stderr. Its
// version banner, and rm of a file that does not exist (the writer removes
// before it writes), are not failures.
func debugfsError(stderr []byte) string {
	for _, line := range strings.Split(string(stderr), "\n") {
		l := strings.TrimSpace(line)
		if l == "" || strings.HasPrefix(l, "debugfs ") || l == "rm: File not found by ext2_lookup while trying to resolve filename" {
			continue
		}
		return l
	}
	return ""
}

func isExitError(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}

// reader opens the filesystem with vhdprep's own (read-only) reader.
func (e *Ext4) reader() (*rootfs.Tree, func(), error) {
	f, err := os.Open(e.image)
	if err != nil {
		return nil, nil, err
	}
	tree, err := rootfs.OpenFS(io.NewSectionReader(f, e.offset, e.size), e.size, "ext4")
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("reading %s: %w", e.image, err)
	}
	return tree, func() { f.Close() }, nil
}

// verify reads every change back through vhdprep's own ext4 reader.
func (e *Ext4) verify() error {
	tree, closeTree, err := e.reader()
	if err != nil {
		return err
	}
	defer closeTree()
	// Only the last change to a path says what must be there now.
	seen := map[string]bool{}
	for i := len(e.ops) - 1; i >= 0; i-- {
		o := e.ops[i]
		if seen[o.name] {
			continue
		}
		seen[o.name] = true
		name := strings.TrimPrefix(o.name, "/")
		switch o.kind {
		case "write":
			got, err := tree.ReadFile(name)
			if err != nil || !bytes.Equal(got, o.data) {
				return fmt.Errorf("%s does not read back as written (%v)", o.name, err)
			}
		case "mkdir":
			if info, err := tree.Lstat(name); err != nil || !info.IsDir() {
				return fmt.Errorf("directory %s was not made (%v)", o.name, err)
			}
		case "symlink":
			if got, err := tree.ReadLink(name); err != nil || got != o.target {
				return fmt.Errorf("symlink %s reads back as %q (%v)", o.name, got, err)
			}
		case "rm", "rmdir":
			if _, err := tree.Lstat(name); err == nil {
				return fmt.Errorf("%s was not removed", o.name)
			}
		}
	}
	return nil
}

// Close releases the lock; queued changes that were not applied are dropped.
func (e *Ext4) Close() error { return e.lock.Release() }

// writeSynced writes v as JSON to a new file and syncs it.
func writeSynced(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeSyncedAt(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, b, 0)
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

package write

import (
	"bytes"
	"encoding/binary"
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

	"github.com/vhdprep/vhdprep/internal/fault"
	"github.com/vhdprep/vhdprep/internal/imagelock"
	"github.com/vhdprep/vhdprep/rootfs"
)

// Errors.
var (
	ErrNeedsRecovery = errors.New("the filesystem's journal needs recovery (it was not cleanly unmounted)")
	ErrLocked        = imagelock.ErrLocked
	ErrTooOld        = errors.New("e2fsprogs is too old")
	ErrNoSpace       = errors.New("not enough free space for the undo file")
)

// ext4 superblock fields the writer checks before touching anything.
const (
	superblockOffset  = 1024
	superblockSize    = 1024
	logBlockSizeOff   = 24
	incompatOffset    = 96
	roCompatOffset    = 100
	uuidOffset        = 104
	incompatRecover   = 0x4 // the journal needs replaying
	minE2fsprogsMajor = 1
	minE2fsprogsMinor = 43 // ?offset= for debugfs and e2fsck, e2undo -o
	// Room the undo file needs beyond the blocks of the files written: the
	// metadata blocks (bitmaps, inode tables, directories, extent trees)
	// each operation may touch, and the file's own index.
	undoBlocksPerOp = 16
	undoSlack       = 1 << 20
)

// Image is an image file held for a change: its lock is taken and an
// earlier interrupted change undone when it opens, and the changes queued
// on its filesystems are applied together by Apply, all or nothing.
type Image struct {
	path string
	lock *imagelock.Lock
	fss  []*Ext4
}

// Ext4 queues changes to an ext2/3/4 filesystem that starts offset bytes
// into an image file and is size bytes long.
type Ext4 struct {
	img          *Image
	owned        bool // opened by OpenExt4: Close releases the image
	image        string
	offset, size int64
	ops          []op
}

type op struct {
	kind         string // write, mkdir, symlink, rm
	name, target string
	data         []byte
	perm         fs.FileMode
	uid, gid     int
}

// OpenImage takes the image's lock for a change. It refuses e2fsprogs too
// old for the job, an image this user cannot write and one another vhdprep
// is changing, and restores the image first if an earlier change was
// interrupted. Open it before reading what the change will be made of, so
// no other vhdprep changes it in between.
func OpenImage(path string) (*Image, error) {
	if err := checkE2fsprogs(); err != nil {
		return nil, err
	}
	if err := CheckWritable(path); err != nil {
		return nil, err
	}
	lock, err := imagelock.Take(path)
	if err != nil {
		return nil, err
	}
	im := &Image{path: path, lock: lock}
	if err := Recover(path); err != nil {
		im.Close()
		return nil, err
	}
	return im, nil
}

// Ext4 prepares to change the filesystem at offset, refusing now, before
// any filesystem of the image is written, a journal that needs recovery
// and features the installed debugfs does not know.
func (im *Image) Ext4(offset, size int64) (*Ext4, error) {
	e := &Ext4{img: im, image: im.path, offset: offset, size: size}
	if err := e.checkClean(); err != nil {
		return nil, err
	}
	if err := e.checkFeatures(); err != nil {
		return nil, err
	}
	im.fss = append(im.fss, e)
	return e, nil
}

// OpenExt4 opens image for a change of the one filesystem at offset;
// closing the Ext4 releases the image.
func OpenExt4(image string, offset, size int64) (*Ext4, error) {
	im, err := OpenImage(image)
	if err != nil {
		return nil, err
	}
	e, err := im.Ext4(offset, size)
	if err != nil {
		im.Close()
		return nil, err
	}
	e.owned = true
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
func (e *Ext4) superblock() ([]byte, error) { return readSuperblock(e.image, e.offset) }

func readSuperblock(image string, offset int64) ([]byte, error) {
	f, err := os.Open(image)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sb := make([]byte, superblockSize)
	_, err = f.ReadAt(sb, offset+superblockOffset)
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

// Apply applies the changes queued on every filesystem of the image, as
// Image.Apply does.
func (e *Ext4) Apply() error { return e.img.Apply() }

// Apply runs each filesystem's queued changes as one debugfs script, then
// verifies the filesystem (e2fsck -fn) and every change (read back through
// vhdprep's own reader). Every precondition of every filesystem is checked
// before the first is written, and one record covers them all: on any
// failure, and after a crash, every filesystem is restored from its undo
// file, or none was changed.
func (im *Image) Apply() (err error) {
	var fss []*Ext4
	for _, e := range im.fss {
		if len(e.ops) > 0 {
			fss = append(fss, e)
		}
	}
	if len(fss) == 0 {
		return nil
	}
	work, err := os.MkdirTemp("", "vhdprep-write-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var r record
	scripts := make([]string, len(fss))
	var need int64
	for i, e := range fss {
		// The journal may have been left needing recovery since Ext4 checked.
		if err := e.checkClean(); err != nil {
			return err
		}
		if scripts[i], err = e.script(filepath.Join(work, strconv.Itoa(i))); err != nil {
			return err
		}
		sb, err := e.superblock()
		if err != nil {
			return err
		}
		need += e.undoSize(sb)
		undo := fmt.Sprintf("%s%s.%d", filepath.Base(im.path), undoSuffix, i)
		r.Filesystems = append(r.Filesystems, fsUndo{Offset: e.offset, Undo: undo, Superblock: sb})
		os.Remove(r.Filesystems[i].undoPath(im.path)) // left by a change that finished
	}
	if err := im.checkSpace(need); err != nil {
		return err
	}
	if err := writeRecord(im.path, r); err != nil {
		return err
	}
	fault.Point("recorded")
	defer func() {
		if err != nil {
			if rerr := Recover(im.path); rerr != nil {
				err = fmt.Errorf("%w; and %v", err, rerr)
			} else {
				err = fmt.Errorf("%w; the image was restored (checked with e2fsck)", err)
			}
		}
	}()
	for i, e := range fss {
		if err := e.apply(scripts[i], r.Filesystems[i].undoPath(im.path)); err != nil {
			return err
		}
		fault.Point(fmt.Sprintf("applied-%d", i))
	}
	// Removing the record commits the change; the undo files go after it.
	if err := removeSynced(im.path + pendingSuffix); err != nil {
		return err
	}
	fault.Point("committed")
	for i, e := range fss {
		os.Remove(r.Filesystems[i].undoPath(im.path))
		e.ops = nil
	}
	return nil
}

// apply runs one filesystem's script through debugfs with an undo file,
// then checks the filesystem and reads every change back.
func (e *Ext4) apply(script, undo string) error {
	// debugfs echoes commands on stdout and reports failures on stderr; its
	// exit status tells only whether the last command worked.
	var stderr bytes.Buffer
	cmd := exec.Command("debugfs", "-w", "-z", undo, "-f", script, e.dev())
	cmd.Stderr = &stderr
	dieWithParent(cmd)
	runErr := cmd.Run()
	if msg := debugfsError(stderr.Bytes()); msg != "" {
		return fmt.Errorf("%s: debugfs: %s", e.image, msg)
	}
	if runErr != nil && !isExitError(runErr) {
		return fmt.Errorf("%s: running debugfs: %v", e.image, runErr)
	}
	if err := fsck(e.image, e.offset); err != nil {
		return fmt.Errorf("%s: e2fsck found the filesystem at offset %d damaged after the change: %v", e.image, e.offset, err)
	}
	if err := e.verify(); err != nil {
		return fmt.Errorf("%s: %w", e.image, err)
	}
	return nil
}

// undoSize bounds the undo file of the queued changes: every block they
// write, data and metadata, is copied into it once.
func (e *Ext4) undoSize(sb []byte) int64 {
	bs := int64(1024) << (binary.LittleEndian.Uint32(sb[logBlockSizeOff:]) & 0xf)
	n := int64(undoSlack)
	for _, o := range e.ops {
		n += (int64(len(o.data))+bs-1)/bs*bs + undoBlocksPerOp*bs
	}
	return n
}

// checkSpace refuses a change whose undo files may not fit beside the
// image: a disk that fills while debugfs writes leaves a filesystem that
// cannot be restored. The image itself may need as much again where it is
// sparse, so twice the undo files' size must be free.
func (im *Image) checkSpace(undo int64) error {
	var st syscall.Statfs_t
	dir := filepath.Dir(im.path)
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("%s: cannot tell the free space of %s: %w", im.path, dir, err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if need := 2 * undo; free < need {
		return fmt.Errorf("%s: %w: %s has %.1f MiB free, and the change needs up to %.1f MiB there (undo files and blocks written); free some space or work on a copy elsewhere",
			im.path, ErrNoSpace, dir, float64(free)/(1<<20), float64(need)/(1<<20))
	}
	return nil
}

// script writes the debugfs commands (and the files they copy in).
func (e *Ext4) script(work string) (string, error) {
	if err := os.Mkdir(work, 0o700); err != nil {
		return "", err
	}
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

// Close releases an Ext4 opened by OpenExt4 (and its image); queued
// changes that were not applied are dropped.
func (e *Ext4) Close() error {
	if !e.owned {
		return nil
	}
	return e.img.Close()
}

// Close releases the image's lock; queued changes that were not applied
// are dropped.
func (im *Image) Close() error {
	if im.lock == nil {
		return nil
	}
	lock := im.lock
	im.lock = nil
	return lock.Release()
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

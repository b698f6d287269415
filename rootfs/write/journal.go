package write

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/vhdprep/vhdprep/internal/fileundo"
	"github.com/vhdprep/vhdprep/internal/imagelock"
)

// ErrWedged: an interrupted change could be neither undone nor shown to
// have changed nothing; the message says what state the image is in and
// what to run.
var ErrWedged = errors.New("an interrupted change could not be undone")

const (
	pendingSuffix = ".vhdprep-pending"
	undoSuffix    = ".vhdprep-undo"
	undoMagic     = "E2UNDO02" // the first bytes of an undo file whose header debugfs wrote
)

// record is what a change in progress leaves beside the image, written
// before the first filesystem is touched and removed once every one of them
// is changed and verified: with it, the next vhdprep that opens the image
// undoes every filesystem it lists, or none. It names the image it belongs
// to by device and inode, so one planted beside another image, or copied
// with it, is refused.
type record struct {
	Filesystems []fsUndo `json:"filesystems"`
	Device      uint64   `json:"device"`
	Inode       uint64   `json:"inode"`
}

// fsUndo is one filesystem of a change: where it is, the name of its undo
// file (beside the image, so recovery works from any directory), and its
// primary superblock as it was. e2undo restores every block debugfs wrote
// except that superblock when the filesystem starts at an offset (e2fsprogs
// 1.47), so vhdprep keeps it itself.
type fsUndo struct {
	Offset     int64  `json:"offset"`
	Undo       string `json:"undo"`
	Superblock []byte `json:"superblock"`
}

// undoPath is the undo file of f, always beside the image.
func (f fsUndo) undoPath(image string) string {
	return filepath.Join(filepath.Dir(image), filepath.Base(f.Undo))
}

// RecoverInterrupted restores an image whose change was interrupted, as
// Recover does, under the image's lock: a change another vhdprep is making
// right now is refused (ErrLocked), not undone. Commands that only read an
// image call it first, so they never read a half-made change.
func RecoverInterrupted(image string) error {
	if !exists(image+pendingSuffix) && !exists(image+fileundo.Suffix) {
		return nil
	}
	lock, err := imagelock.Take(image)
	if err != nil {
		return err
	}
	defer lock.Release()
	return Recover(image)
}

// Recover restores an image whose change was interrupted (a crash, a kill
// or a full disk while debugfs was writing): every filesystem the record
// lists is put back, last first, and checked with e2fsck before the record
// goes; an interrupted resize is undone too. The caller holds the lock.
func Recover(image string) error {
	if _, err := fileundo.Recover(image); err != nil {
		return err
	}
	pendingName := image + pendingSuffix
	if !exists(pendingName) {
		return nil
	}
	fi, err := os.Stat(image)
	if err != nil {
		return err
	}
	// foreign refuses what this image's change cannot have left.
	foreign := func(err error) error {
		return fmt.Errorf("%s: %w; neither is changed: if no fix, deprovision or agent inject of %s was interrupted, remove %s, else restore the image from a backup",
			image, err, image, pendingName)
	}
	b, err := readRecord(pendingName, fi)
	if errors.Is(err, fileundo.ErrForeign) {
		return foreign(err)
	}
	if err != nil {
		return err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w: its record %s is unreadable (%v), so which filesystems it changed is unknown; check each with 'e2fsck -fn %s?offset=N', restore the image from a backup if one is damaged, then remove %s",
			image, ErrWedged, pendingName, err, image, pendingName)
	}
	if st := fi.Sys().(*syscall.Stat_t); r.Device != st.Dev || r.Inode != st.Ino {
		return foreign(fmt.Errorf("%s: %w: it was written for inode %d of device %#x, and the image is inode %d of device %#x",
			pendingName, fileundo.ErrForeign, r.Inode, r.Device, st.Ino, st.Dev))
	}
	for _, f := range r.Filesystems {
		u, err := fileundo.OpenBeside(f.undoPath(image), fi)
		if errors.Is(err, fileundo.ErrForeign) {
			return foreign(err)
		}
		if err == nil {
			u.Close()
		}
	}
	for i := len(r.Filesystems) - 1; i >= 0; i-- {
		if err := restoreFS(image, r.Filesystems[i]); err != nil {
			return err
		}
	}
	if err := removeSynced(pendingName); err != nil {
		return err
	}
	for _, f := range r.Filesystems {
		os.Remove(f.undoPath(image))
	}
	return nil
}

// restoreFS puts one filesystem back as it was before the change, deciding
// from the evidence when e2undo refuses the undo file, and proves the result
// with e2fsck.
func restoreFS(image string, f fsUndo) error {
	undo := f.undoPath(image)
	wedged := func(why string) error {
		state := "e2fsck -fn finds it clean"
		if err := fsck(image, f.Offset); err != nil {
			state = "e2fsck -fn finds it damaged (" + err.Error() + ")"
		}
		return fmt.Errorf("%s: %w: the filesystem at offset %d %s, and %s. The undo file %s and the record %s are kept: restore the image from a backup, or repair it with 'e2fsck -fy %s?offset=%d' and then remove %s",
			image, ErrWedged, f.Offset, why, state, undo, image+pendingSuffix, image, f.Offset, image+pendingSuffix)
	}
	cur, err := readSuperblock(image, f.Offset)
	if err != nil {
		return fmt.Errorf("%s: reading the superblock at offset %d to restore it: %w", image, f.Offset, err)
	}
	if !hasUndoHeader(undo) {
		// debugfs writes and syncs its undo header before its first write
		// to the filesystem: without one, nothing was written.
		if !bytes.Equal(cur, f.Superblock) {
			return wedged("has no undo header yet its superblock changed")
		}
		if err := fsck(image, f.Offset); err != nil {
			return wedged("has no undo header yet is not as it was")
		}
		return nil
	}
	out, err := e2undo(image, f.Offset, undo, false)
	if err != nil && sameUUID(cur, f.Superblock) {
		// The header is older than the last writes (debugfs was killed as
		// it finished, before it rewrote the header): the superblock check
		// fails, yet every block's old content is in the file. It is this
		// filesystem (same UUID), so the check may be skipped.
		out, err = e2undo(image, f.Offset, undo, true)
	}
	if err != nil {
		return wedged("was not restored: e2undo: " + lastLine(out))
	}
	if err := writeSyncedAt(image, os.O_WRONLY, f.Superblock, f.Offset+superblockOffset); err != nil {
		return fmt.Errorf("%s: restoring the superblock at offset %d: %w", image, f.Offset, err)
	}
	if err := fsck(image, f.Offset); err != nil {
		return wedged("was restored by e2undo")
	}
	return nil
}

func e2undo(image string, offset int64, undo string, force bool) ([]byte, error) {
	args := []string{"-o", strconv.FormatInt(offset, 10)}
	if force {
		args = append(args, "-f")
	}
	return exec.Command("e2undo", append(args, undo, image)...).CombinedOutput()
}

// fsck runs e2fsck -fn on the filesystem at offset; a failure says how.
func fsck(image string, offset int64) error {
	out, err := exec.Command("e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", image, offset)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, lastLine(out))
	}
	return nil
}

func hasUndoHeader(undo string) bool {
	f, err := os.Open(undo)
	if err != nil {
		return false
	}
	defer f.Close()
	magic := make([]byte, len(undoMagic))
	_, err = io.ReadFull(f, magic)
	return err == nil && string(magic) == undoMagic
}

// sameUUID compares the filesystem UUIDs of two superblocks.
func sameUUID(a, b []byte) bool {
	return len(a) >= uuidOffset+16 && len(b) >= uuidOffset+16 && bytes.Equal(a[uuidOffset:uuidOffset+16], b[uuidOffset:uuidOffset+16])
}

// writeRecord replaces the image's record of the change in progress
// atomically: a temporary file, synced, renamed over the record, and the
// directory synced, so a kill or a full disk leaves the old record or the
// new one, never a truncated one. The record is bound to the image's
// device and inode.
func writeRecord(image string, r record) error {
	fi, err := os.Stat(image)
	if err != nil {
		return fmt.Errorf("%s: cannot write the record of the change: %w", image, err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	r.Device, r.Inode = st.Dev, st.Ino
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	name := image + pendingSuffix
	tmp, err := os.CreateTemp(filepath.Dir(name), filepath.Base(name)+".*")
	if err != nil {
		return fmt.Errorf("%s: cannot write the record of the change: %w", image, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err == nil {
		err = syncDir(filepath.Dir(name))
	}
	if err != nil {
		return fmt.Errorf("%s: cannot write the record of the change: %w", image, err)
	}
	return nil
}

// removeSynced removes name and syncs its directory: once it returns, the
// removal survives a power loss.
func removeSynced(name string) error {
	if err := os.Remove(name); err != nil {
		return err
	}
	return syncDir(filepath.Dir(name))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// maxRecord bounds the record read: a few hundred bytes a filesystem.
const maxRecord = 1 << 20

// readRecord reads the record of a change beside the image fi describes,
// as fileundo.OpenBeside allows.
func readRecord(name string, fi fs.FileInfo) ([]byte, error) {
	f, err := fileundo.OpenBeside(name, fi)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecord+1))
	if err == nil && len(b) > maxRecord {
		err = fmt.Errorf("%s: %w: it is over %d bytes", name, fileundo.ErrForeign, maxRecord)
	}
	return b, err
}

func exists(name string) bool {
	_, err := os.Lstat(name)
	return !errors.Is(err, fs.ErrNotExist)
}

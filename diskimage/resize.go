package diskimage

import (
	"fmt"
	"io"
	"os"

	"github.com/vhdprep/vhdprep/internal/imagelock"
	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/raw/part"
)

// ResizeOptions say what Resize does.
type ResizeOptions struct {
	Path string
	// Size is the virtual size wanted; it is rounded up to a whole MiB.
	// 0 with Align means the current size rounded up.
	Size  int64
	Align bool
	// Shrink allows a smaller size, never below the end of the last
	// partition.
	Shrink bool
}

// ResizeResult says what Resize did.
type ResizeResult struct {
	Path     string `json:"path"`
	Format   Format `json:"format"`
	OldSize  int64  `json:"old_virtual_size"`
	NewSize  int64  `json:"new_virtual_size"`
	Changed  bool   `json:"changed"`
	GPTMoved bool   `json:"gpt_backup_moved"`
}

// gptBackupSectors is the room a GPT needs after its last partition: the
// backup entry array (128 entries of 128 bytes) and the backup header.
const gptBackupSectors = 33

// maxSavedTail bounds the data outside every partition that a shrink may
// cut off; it is kept in memory so the shrink can be undone.
const maxSavedTail = 256 << 20

// Resize grows or shrinks a raw image or fixed VHD in place: the footer
// moves to the new end and a GPT's backup header follows it. The result is
// verified by reading it back; on any failure the file is restored to its
// previous bytes.
func Resize(opts ResizeOptions) (*ResizeResult, error) {
	lock, err := imagelock.Take(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("resize %w", err)
	}
	defer lock.Release()
	im, err := OpenWritable(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("resize: %w", err)
	}
	defer im.Close()
	cur := im.Disk.Size()
	target := raw.AlignMiB(opts.Size)
	if opts.Size == 0 {
		target = raw.AlignMiB(cur)
	}
	res := &ResizeResult{Path: opts.Path, Format: im.Format, OldSize: cur, NewSize: target}
	footerRight := im.Format == Raw || im.Footer.CurrentSize == cur
	if target == cur && footerRight {
		return res, nil
	}

	table, err := part.Read(im.Disk, cur)
	if err != nil {
		return nil, fmt.Errorf("resize %s: reading the partition table: %w", opts.Path, err)
	}
	if target < cur {
		if err := checkShrink(opts, table, cur, target); err != nil {
			return nil, err
		}
	}
	u, err := newUndo(im, table, target)
	if err != nil {
		return nil, fmt.Errorf("resize %s: %w", opts.Path, err)
	}
	if err := apply(im, table, target); err != nil {
		return nil, u.restore(fmt.Errorf("resize %s: %w", opts.Path, err))
	}
	if err := verifyResized(opts.Path, im.Format, target, table); err != nil {
		return nil, u.restore(fmt.Errorf("resize %s: the result does not read back (%w)", opts.Path, err))
	}
	res.Changed = true
	res.GPTMoved = table.Scheme == part.SchemeGPT
	return res, nil
}

func checkShrink(opts ResizeOptions, t *part.Table, cur, target int64) error {
	if !opts.Shrink {
		return fmt.Errorf("resize %s: %d bytes is smaller than the image (%d bytes); shrinking needs --shrink", opts.Path, target, cur)
	}
	floor := t.End()
	if t.Scheme == part.SchemeGPT {
		floor += gptBackupSectors * int64(t.SectorSize)
	}
	if target < floor {
		return fmt.Errorf("resize %s: cannot shrink to %d MiB: the last partition ends at byte %d, so the smallest size is %d MiB",
			opts.Path, target/raw.MiB, t.End(), raw.AlignMiB(floor)/raw.MiB)
	}
	return nil
}

// apply changes the file: new length, GPT backup at the new end, new footer.
func apply(im *Image, t *part.Table, target int64) error {
	f := im.File()
	// Truncating to the data size first drops the old footer, so growing
	// leaves zeros, not a stale footer, inside the guest's new space.
	if err := f.Truncate(min(im.Disk.Size(), target)); err != nil {
		return err
	}
	if err := f.Truncate(target); err != nil {
		return err
	}
	if t.Scheme == part.SchemeGPT {
		if err := part.MoveGPTBackup(f, target); err != nil {
			return fmt.Errorf("moving the backup GPT: %w", err)
		}
	}
	if im.Format == VHDFixed {
		if err := writeFooter(f, target, im.Footer); err != nil {
			return err
		}
	}
	return f.Sync()
}

func verifyResized(path string, want Format, size int64, before *part.Table) error {
	im, err := Open(path)
	if err != nil {
		return err
	}
	defer im.Close()
	if im.Format != want || im.Disk.Size() != size {
		return fmt.Errorf("reads back as %s of %d bytes", im.Format, im.Disk.Size())
	}
	if im.Footer != nil {
		if errs := im.Footer.Validate(); len(errs) > 0 {
			return errs[0]
		}
	}
	after, err := part.Read(im.Disk, size)
	if err != nil {
		return err
	}
	if after.Scheme != before.Scheme || len(after.Partitions) != len(before.Partitions) || after.BackupUsed {
		return fmt.Errorf("the partition table changed: %d partitions (%s) before, %d (%s) after", len(before.Partitions), before.Scheme, len(after.Partitions), after.Scheme)
	}
	return nil
}

// undo holds what a resize overwrites or cuts off, so it can put the file
// back exactly as it was.
type undo struct {
	f      *os.File
	size   int64
	chunks []savedChunk
}

type savedChunk struct {
	off  int64
	data []byte
}

func newUndo(im *Image, t *part.Table, target int64) (*undo, error) {
	u := &undo{f: im.File(), size: im.FileSize}
	// The sectors a GPT move rewrites: the protective MBR and primary header.
	if t.Scheme == part.SchemeGPT {
		if err := u.save(0, 2*int64(t.SectorSize)); err != nil {
			return nil, err
		}
	}
	// The old footer, and on a shrink every byte of data cut off.
	tail := raw.Extent{Offset: min(target, im.Disk.Size()), Length: im.FileSize - min(target, im.Disk.Size())}
	exts, err := raw.NewFile(im.File(), im.FileSize).Extents()
	if err != nil {
		return nil, err
	}
	var saved int64
	for _, e := range exts {
		lo, hi := max(e.Offset, tail.Offset), min(e.End(), tail.End())
		if lo >= hi {
			continue
		}
		if saved += hi - lo; saved > maxSavedTail {
			return nil, fmt.Errorf("the range to cut off holds more than %d MiB of data outside every partition; copy it away first", maxSavedTail/raw.MiB)
		}
		if err := u.save(lo, hi-lo); err != nil {
			return nil, err
		}
	}
	return u, nil
}

func (u *undo) save(off, n int64) error {
	b := make([]byte, n)
	if _, err := u.f.ReadAt(b, off); err != nil && err != io.EOF {
		return err
	}
	u.chunks = append(u.chunks, savedChunk{off, b})
	return nil
}

// restore puts the file back and returns cause, or says that restoring
// failed too.
func (u *undo) restore(cause error) error {
	err := u.f.Truncate(u.size)
	for _, c := range u.chunks {
		if err != nil {
			break
		}
		_, err = u.f.WriteAt(c.data, c.off)
	}
	if err == nil {
		err = u.f.Sync()
	}
	if err != nil {
		return fmt.Errorf("%w; restoring the file also failed (%v): restore it from a backup", cause, err)
	}
	return fmt.Errorf("%w; the file was restored", cause)
}

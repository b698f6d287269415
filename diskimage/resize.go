package diskimage

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/vhdprep/vhdprep/internal/fault"
	"github.com/vhdprep/vhdprep/internal/fileundo"
	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/raw/part"
	"github.com/vhdprep/vhdprep/vhd"
)

// ResizeOptions say what Resize does.
type ResizeOptions struct {
	Path string
	// Size is the virtual size wanted; it is rounded up to a whole MiB.
	// 0 with Align means the current size rounded up.
	Size  int64
	Align bool
	// Shrink allows a smaller size, never below the end of the last
	// partition or, on a disk without a partition table, its last data.
	Shrink bool
}

// ResizeResult says what Resize did.
type ResizeResult struct {
	Path     string `json:"image"`
	Format   Format `json:"format"`
	OldSize  int64  `json:"old_virtual_size_bytes,string"`
	NewSize  int64  `json:"new_virtual_size_bytes,string"`
	Changed  bool   `json:"changed"`
	GPTMoved bool   `json:"gpt_backup_moved"`
}

// maxSavedTail bounds the data outside every partition that a shrink may
// cut off; it is kept in the undo file so the shrink can be undone.
const maxSavedTail = 256 << 20

// Resize grows or shrinks a raw image or fixed VHD in place: the footer
// moves to the new end and a GPT's backup header follows it. The result is
// verified by reading it back; on any failure the file is restored to its
// previous bytes, and a resize killed half way is undone by the next
// vhdprep that opens the file.
func Resize(opts ResizeOptions) (*ResizeResult, error) {
	lock, err := lockForChange(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("resize: %w", err)
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
	// A new footer would hide that the file lost the disk's end.
	if err := im.footerSizeError(); err != nil {
		return nil, fmt.Errorf("resize %w; fix: %s", err, footerSizeFix(err, opts.Path))
	}
	res := &ResizeResult{Path: opts.Path, Format: im.Format, OldSize: cur, NewSize: target}
	table, err := part.Read(im.Disk, cur)
	if err != nil {
		return nil, fmt.Errorf("resize %s: reading the partition table: %w", opts.Path, err)
	}
	if target == cur && !movesGPT(table, cur, target) {
		return res, nil
	}
	if target < cur {
		if err := checkShrink(opts, im.Disk, table, target); err != nil {
			return nil, err
		}
	}
	if err := setSize(im, table, target, im.Format, im.Footer); err != nil {
		return nil, fmt.Errorf("resize %s: %w", opts.Path, err)
	}
	res.Changed = true
	res.GPTMoved = movesGPT(table, cur, target)
	return res, nil
}

// checkShrink refuses a size that would cut off a partition, or on a disk
// without a partition table, data: the table, or the data, says where the
// guest's disk ends.
func checkShrink(opts ResizeOptions, d raw.Disk, t *part.Table, target int64) error {
	if !opts.Shrink {
		return fmt.Errorf("resize %s: %d bytes is smaller than the image (%d bytes); shrinking needs --shrink", opts.Path, target, d.Size())
	}
	if t.Scheme == part.SchemeNone {
		end, err := dataEnd(d)
		if err != nil {
			return fmt.Errorf("resize %s: %w", opts.Path, err)
		}
		if target < end {
			return fmt.Errorf("resize %s: cannot shrink to %d MiB: the disk has no partition table and holds data up to byte %d, so the smallest size is %d MiB",
				opts.Path, target/raw.MiB, end, raw.AlignMiB(end)/raw.MiB)
		}
		return nil
	}
	floor := t.End()
	if t.Scheme == part.SchemeGPT {
		floor += t.BackupSize
	}
	if target < floor {
		return fmt.Errorf("resize %s: cannot shrink to %d MiB: the last partition ends at byte %d, so the smallest size is %d MiB",
			opts.Path, target/raw.MiB, t.End(), raw.AlignMiB(floor)/raw.MiB)
	}
	return nil
}

// dataEnd is where the disk's last data extent ends (SEEK_DATA where the
// filesystem tells; everything where it does not).
func dataEnd(d raw.Disk) (int64, error) {
	exts, err := d.Extents()
	if err != nil {
		return 0, err
	}
	exts = raw.Clip(exts, d.Size())
	if len(exts) == 0 {
		return 0, nil
	}
	return exts[len(exts)-1].End(), nil
}

// movesGPT tells whether a disk of size bytes with table t needs its
// backup GPT written (from the primary) to end at target: the disk grows
// or shrinks, or the backup is elsewhere or damaged.
func movesGPT(t *part.Table, size, target int64) bool {
	return t != nil && t.Scheme == part.SchemeGPT && (target != size || t.BackupMisplaced || t.BackupDamaged)
}

// setSize changes im's file in place into a disk of target bytes in format
// out (raw or fixed VHD, keeping keepID's identity): resize and convert
// --in-place. The result is read back; on any failure the file is put back
// as it was.
func setSize(im *Image, t *part.Table, target int64, out Format, keepID *vhd.Footer) error {
	if movesGPT(t, im.Disk.Size(), target) {
		if err := gptMovable(t); err != nil {
			return err
		}
	}
	ranges, err := undoRanges(im, t, target)
	if err != nil {
		return err
	}
	// The file passes through these sizes: its data alone, the target,
	// and the target with a VHD's footer.
	end := target
	if out == VHDFixed {
		end += vhd.FooterSize
	}
	sizes := fileundo.Sizes{Before: im.FileSize, Min: min(im.FileSize, im.Disk.Size(), target), Max: max(im.FileSize, end)}
	u, err := fileundo.Save(im.Path, im.File(), sizes, ranges)
	if err != nil {
		return err
	}
	fault.Point("resize-saved")
	f := im.File()
	// Truncating to the data size first drops the old footer, so growing
	// leaves zeros, not a stale footer, inside the guest's new space.
	if err := f.Truncate(min(im.Disk.Size(), target)); err != nil {
		return restore(u, err)
	}
	fault.Point("resize-truncated")
	if err := f.Truncate(target); err != nil {
		return restore(u, err)
	}
	if err := endDisk(f, t, im.Disk.Size(), target, out, keepID); err != nil {
		return restore(u, err)
	}
	if err := f.Sync(); err != nil {
		return restore(u, err)
	}
	fault.Point("resize-written")
	if err := verifyDisk(im.Path, out, target, t, movesGPT(t, im.Disk.Size(), target)); err != nil {
		return restore(u, fmt.Errorf("the result does not read back (%w)", err))
	}
	return u.Done()
}

// gptMovable refuses to move the backup of a GPT whose primary is
// damaged: the move copies the primary, and at the new size the backup
// would not be found either.
func gptMovable(t *part.Table) error {
	if t.BackupUsed {
		return fmt.Errorf("%w: the primary GPT is damaged; rebuild it from the backup first (gdisk's recovery menu: b, c, then w)", part.ErrCorrupt)
	}
	return nil
}

// endDisk writes what belongs at the end of a disk that was size bytes and
// is now target bytes in f: a GPT's backup entries and header, moved there
// as `sgdisk -e` moves them, and for a VHD the footer. Every operation that
// changes a disk's size ends it here.
func endDisk(f *os.File, t *part.Table, size, target int64, out Format, keepID *vhd.Footer) error {
	if movesGPT(t, size, target) {
		if err := gptMovable(t); err != nil {
			return err
		}
		if err := part.MoveGPTBackup(f, target); err != nil {
			return fmt.Errorf("moving the backup GPT: %w", err)
		}
	}
	if out == VHDFixed {
		return writeFooter(f, target, keepID)
	}
	return nil
}

// verifyDisk reopens path and checks that it reads back as a disk of the
// format and size meant, with a valid footer, and with before's partitions;
// a GPT whose backup was moved reads back whole, its backup at the end.
// The change's own undo file is still there: nothing is recovered.
func verifyDisk(path string, want Format, size int64, before *part.Table, movedGPT bool) error {
	im, err := open(path, os.O_RDONLY)
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
		if im.Footer.CurrentSize != size {
			return fmt.Errorf("the footer says %d bytes, not %d", im.Footer.CurrentSize, size)
		}
	}
	if before == nil {
		return nil
	}
	after, err := part.Read(im.Disk, size)
	if err != nil {
		return err
	}
	if after.Scheme != before.Scheme || !slices.Equal(after.Partitions, before.Partitions) {
		return fmt.Errorf("the partition table changed: %d partitions (%s) before, %d (%s) after", len(before.Partitions), before.Scheme, len(after.Partitions), after.Scheme)
	}
	if movedGPT && (after.BackupUsed || after.BackupMisplaced || after.BackupDamaged) {
		return fmt.Errorf("the GPT does not read back whole: %s", strings.Join(after.Warnings, "; "))
	}
	return nil
}

// undoRanges are the bytes a resize overwrites or cuts off: what the undo
// file keeps so the file can be put back exactly as it was.
func undoRanges(im *Image, t *part.Table, target int64) ([]fileundo.Range, error) {
	var ranges []fileundo.Range
	// The sectors a GPT move rewrites: the protective MBR and primary
	// header, and where the new backup lands inside the old disk.
	if movesGPT(t, im.Disk.Size(), target) {
		ranges = append(ranges, fileundo.Range{Off: 0, Len: 2 * int64(t.SectorSize)})
		if lo, hi := max(0, target-t.BackupSize), min(target, im.Disk.Size()); lo < hi {
			ranges = append(ranges, fileundo.Range{Off: lo, Len: hi - lo})
		}
	}
	// Where a new footer lands inside the old file (a hole there would
	// otherwise keep the footer when the file is put back), the old footer,
	// and on a shrink every byte of data cut off.
	tail := raw.Extent{Offset: min(target, im.Disk.Size()), Length: im.FileSize - min(target, im.Disk.Size())}
	if n := min(vhd.FooterSize, tail.Length); n > 0 {
		ranges = append(ranges, fileundo.Range{Off: tail.Offset, Len: n})
	}
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
		ranges = append(ranges, fileundo.Range{Off: lo, Len: hi - lo})
	}
	return ranges, nil
}

// restore puts the file back and returns cause, or says that restoring
// failed too.
func restore(u *fileundo.Undo, cause error) error {
	if err := u.Restore(); err != nil {
		return fmt.Errorf("%w; restoring the file also failed (%v): restore it from a backup", cause, err)
	}
	return fmt.Errorf("%w; the file was restored", cause)
}

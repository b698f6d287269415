package diskimage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vhdprep/vhdprep/internal/atomicfile"
	"github.com/vhdprep/vhdprep/internal/imagelock"
	"github.com/vhdprep/vhdprep/internal/progress"
	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/vhd"
)

// ConvertOptions say what Convert does.
type ConvertOptions struct {
	Input  string
	Output string // ignored with InPlace
	// Size is the virtual size wanted; 0 means the input's, rounded up to a
	// whole MiB for VHD output.
	Size int64
	// ToRaw writes a raw image instead of a fixed VHD.
	ToRaw bool
	// InPlace turns a raw file into a fixed VHD by appending a footer (or,
	// with ToRaw, a fixed VHD into a raw file by removing it): no data moves.
	InPlace bool
	// Force overwrites an existing output.
	Force    bool
	Progress progress.Reporter
}

// ConvertResult says what Convert did.
type ConvertResult struct {
	Input        string `json:"input"`
	Output       string `json:"output"`
	InputFormat  Format `json:"input_format"`
	OutputFormat Format `json:"output_format"`
	InputSize    int64  `json:"input_virtual_size"`
	VirtualSize  int64  `json:"virtual_size"`
	BytesWritten int64  `json:"bytes_written"`
	InPlace      bool   `json:"in_place"`
}

// Convert writes the input image as a fixed VHD (or raw image). The output
// appears whole or not at all; the input is changed only with InPlace.
func Convert(ctx context.Context, opts ConvertOptions) (*ConvertResult, error) {
	if opts.InPlace {
		return convertInPlace(opts)
	}
	if err := refuseSameFile(opts.Input, opts.Output); err != nil {
		return nil, err
	}
	im, err := Open(opts.Input)
	if err != nil {
		return nil, err
	}
	defer im.Close()

	res := &ConvertResult{Input: opts.Input, Output: opts.Output, InputFormat: im.Format, InputSize: im.Disk.Size(), OutputFormat: VHDFixed}
	if opts.ToRaw {
		res.OutputFormat = Raw
	}
	if res.VirtualSize, err = outputSize(im.Disk.Size(), opts.Size, !opts.ToRaw); err != nil {
		return nil, fmt.Errorf("convert %s: %w", opts.Input, err)
	}

	// An existing output another vhdprep is changing is not replaced
	// under it.
	lock, err := imagelock.Take(opts.Output)
	if err != nil {
		return nil, fmt.Errorf("convert %w", err)
	}
	defer lock.Release()
	out, err := atomicfile.Create(opts.Output, opts.Force)
	if err != nil {
		return nil, fmt.Errorf("convert %s: %w", opts.Input, err)
	}
	defer out.Abort() // after Commit this does nothing
	if err := out.Truncate(res.VirtualSize); err != nil {
		return nil, fmt.Errorf("convert %s: %w", opts.Output, err)
	}
	var same *os.File
	if im.Format == Raw || im.Format == VHDFixed {
		same = im.File()
	}
	res.BytesWritten, err = copyData(ctx, out.File, im.Disk, same, progress.Or(opts.Progress))
	if err != nil {
		return nil, fmt.Errorf("convert %s: %w", opts.Input, err)
	}
	if !opts.ToRaw {
		if err := writeFooter(out.File, res.VirtualSize, nil); err != nil {
			return nil, fmt.Errorf("convert %s: %w", opts.Output, err)
		}
		res.BytesWritten += vhd.FooterSize
	}
	if err := out.Commit(); err != nil {
		return nil, fmt.Errorf("convert %s: %w", opts.Output, err)
	}
	return res, nil
}

// outputSize is the virtual size of the output: the one asked for, or the
// input's, rounded up to a whole MiB when the output is a VHD.
func outputSize(inputSize, asked int64, align bool) (int64, error) {
	size := inputSize
	if asked != 0 {
		if asked < inputSize {
			return 0, fmt.Errorf("--size %d is smaller than the image (%d bytes); shrinking is 'vhdprep resize --shrink'", asked, inputSize)
		}
		size = asked
	}
	if align {
		size = raw.AlignMiB(size)
	}
	if size <= 0 {
		return 0, fmt.Errorf("the image is empty")
	}
	return size, nil
}

// convertInPlace appends a footer to a raw file, or strips one from a fixed
// VHD. The change is verified by reading the result back and undone if that
// fails.
func convertInPlace(opts ConvertOptions) (*ConvertResult, error) {
	lock, err := imagelock.Take(opts.Input)
	if err != nil {
		return nil, fmt.Errorf("convert --in-place %w", err)
	}
	defer lock.Release()
	im, err := OpenWritable(opts.Input)
	if err != nil {
		return nil, fmt.Errorf("convert --in-place: %w", err)
	}
	defer im.Close()
	f := im.File()
	res := &ConvertResult{Input: opts.Input, Output: opts.Input, InputFormat: im.Format, InputSize: im.Disk.Size(), InPlace: true}

	switch {
	case opts.ToRaw && im.Format == VHDFixed:
		res.OutputFormat, res.VirtualSize = Raw, im.Disk.Size()
		if err := f.Truncate(im.Disk.Size()); err != nil {
			return nil, fmt.Errorf("convert %s: %w", opts.Input, err)
		}
		return res, syncOrUndo(f, func() error { return restoreFooter(f, im) })
	case !opts.ToRaw && im.Format == Raw:
		res.OutputFormat = VHDFixed
		if res.VirtualSize, err = outputSize(im.Disk.Size(), opts.Size, true); err != nil {
			return nil, fmt.Errorf("convert %s: %w", opts.Input, err)
		}
		undo := func() error { return f.Truncate(im.FileSize) }
		if err := writeFooter(f, res.VirtualSize, nil); err != nil {
			undo()
			return nil, fmt.Errorf("convert %s: %w", opts.Input, err)
		}
		if err := syncOrUndo(f, undo); err != nil {
			return nil, err
		}
		if err := verifyFixedVHD(opts.Input, res.VirtualSize); err != nil {
			undo()
			return nil, fmt.Errorf("convert %s: the written footer does not read back (%v); the file was restored", opts.Input, err)
		}
		res.BytesWritten = vhd.FooterSize
		return res, nil
	}
	return nil, fmt.Errorf("convert --in-place %s: the file is a %s image; --in-place turns raw into a fixed VHD, or with --to raw a fixed VHD into raw", opts.Input, im.Format)
}

// writeFooter writes a fixed-VHD footer for a disk of size bytes at offset
// size. keepID, when set, carries a disk's identity over from its old footer.
func writeFooter(f *os.File, size int64, keepID *vhd.Footer) error {
	footer, err := vhd.NewFixedFooter(size, time.Now())
	if err != nil {
		return err
	}
	if keepID != nil {
		footer.UniqueID = keepID.UniqueID
	}
	b, err := footer.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, size)
	return err
}

func restoreFooter(f *os.File, im *Image) error {
	b, err := im.Footer.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, im.Disk.Size())
	return err
}

// syncOrUndo makes a change durable, or undoes it when it cannot.
func syncOrUndo(f *os.File, undo func() error) error {
	if err := f.Sync(); err != nil {
		undo()
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	return nil
}

// verifyFixedVHD reopens path and checks it is a fixed VHD of the size meant.
func verifyFixedVHD(path string, size int64) error {
	im, err := Open(path)
	if err != nil {
		return err
	}
	defer im.Close()
	if im.Format != VHDFixed || im.Disk.Size() != size || im.Footer.CurrentSize != size {
		return fmt.Errorf("reads back as %s of %d bytes", im.Format, im.Disk.Size())
	}
	if errs := im.Footer.Validate(); len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// refuseSameFile refuses an output that is the input under another name:
// writing it would destroy the data being read.
func refuseSameFile(in, out string) error {
	ai, err1 := filepath.Abs(in)
	ao, err2 := filepath.Abs(out)
	if err1 == nil && err2 == nil && ai == ao {
		return fmt.Errorf("convert %s: input and output are the same file; use --in-place to convert it where it is", in)
	}
	si, err1 := os.Stat(in)
	so, err2 := os.Stat(out)
	if err1 == nil && err2 == nil && os.SameFile(si, so) {
		return fmt.Errorf("convert %s: output %s is the same file as the input; use --in-place to convert it where it is", in, out)
	}
	return nil
}

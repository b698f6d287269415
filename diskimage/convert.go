package diskimage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vhdprep/vhdprep/internal/atomicfile"
	"github.com/vhdprep/vhdprep/internal/imagelock"
	"github.com/vhdprep/vhdprep/internal/shell"
	"github.com/vhdprep/vhdprep/ova"
	"github.com/vhdprep/vhdprep/progress"
	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/raw/part"
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
	Force bool
	// AcceptDataLoss copies a fixed VHD whose footer and file disagree on
	// its size as the disk the footer describes: bytes the file lacks
	// become zeros, bytes past the footer's size are left out.
	AcceptDataLoss bool
	Progress       progress.Reporter
}

// ConvertResult says what Convert did.
type ConvertResult struct {
	Input        string `json:"image"`
	Output       string `json:"output"`
	InputFormat  Format `json:"input_format"`
	OutputFormat Format `json:"output_format"`
	InputSize    int64  `json:"input_virtual_size_bytes,string"`
	VirtualSize  int64  `json:"virtual_size_bytes,string"`
	BytesWritten int64  `json:"written_bytes,string"`
	InPlace      bool   `json:"in_place"`
	// Changed is false when --in-place found the file already in the
	// format asked for.
	Changed bool `json:"changed"`
	// DataLost says what AcceptDataLoss cost.
	DataLost string `json:"data_lost,omitempty"`
	// Warnings are Azure's objections to the output (AzureVerdict).
	Warnings []string `json:"warnings"`
	// Disk says which disk of an OVA was converted: the first its OVF
	// names.
	Disk string `json:"disk,omitempty"`
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

	res := &ConvertResult{Input: opts.Input, Output: opts.Output, InputFormat: im.Format, InputSize: im.Disk.Size(), OutputFormat: VHDFixed, Changed: true}
	if opts.ToRaw {
		res.OutputFormat = Raw
	}
	if d, ok := im.Disk.(*ova.Image); ok {
		res.Disk = fmt.Sprintf("%s, the first of the %d disks its OVF names", d.Info().Opened, len(d.Info().Disks))
	}
	src := raw.Disk(im.Disk)
	if err := im.footerSizeError(); err != nil {
		if !opts.AcceptDataLoss {
			return nil, fmt.Errorf("convert %w; fix: %s", err, footerSizeFix(err, opts.Input))
		}
		// The disk is the one the footer describes, as every VHD reader
		// sees it.
		res.InputSize = im.Footer.CurrentSize
		res.DataLost = dataLost(err, im.Footer.CurrentSize, im.Disk.Size())
		src = raw.NewFile(im.File(), min(im.Footer.CurrentSize, im.Disk.Size()))
	}
	if res.VirtualSize, err = outputSize(res.InputSize, opts.Size, !opts.ToRaw); err != nil {
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
	res.BytesWritten, err = copyData(ctx, out.File, src, same, progress.Or(opts.Progress))
	if err != nil {
		return nil, fmt.Errorf("convert %s: %w", opts.Input, err)
	}
	// The table is read from the copy: the same bytes, and where the input
	// lost the disk's end, zeros as every reader sees them.
	table, err := tableToMove(raw.NewFile(out.File, res.InputSize), res.VirtualSize)
	if err != nil {
		return nil, fmt.Errorf("convert %s: %w", opts.Input, err)
	}
	if err := endDisk(out.File, table, res.InputSize, res.VirtualSize, res.OutputFormat, nil); err != nil {
		return nil, fmt.Errorf("convert %s: %w", opts.Input, err)
	}
	if res.OutputFormat == VHDFixed {
		res.BytesWritten += vhd.FooterSize
	}
	if err := verifyDisk(out.Name(), res.OutputFormat, res.VirtualSize, table, movesGPT(table, res.InputSize, res.VirtualSize)); err != nil {
		return nil, fmt.Errorf("convert %s: the output does not read back (%w)", opts.Input, err)
	}
	if err := out.Commit(); err != nil {
		return nil, fmt.Errorf("convert %s: %w", opts.Output, err)
	}
	if res.OutputFormat == VHDFixed {
		if res.Warnings, err = azureObjections(opts.Output); err != nil {
			return nil, fmt.Errorf("convert %s: %w", opts.Output, err)
		}
	}
	return res, nil
}

// azureObjections is Azure's verdict on the VHD at path, in words.
func azureObjections(path string) ([]string, error) {
	im, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	var ws []string
	for _, p := range AzureVerdict(im.Container(nil)) {
		ws = append(ws, p.String())
	}
	return ws, nil
}

// dataLost says what copying a VHD whose footer and file disagree (err)
// as the footer's disk costs.
func dataLost(err error, footer, data int64) string {
	if footer > data {
		return fmt.Sprintf("%v; they were written as zeros", err)
	}
	return fmt.Sprintf("%v; they were left out", err)
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

// tableToMove reads the partition table of a disk that becomes size bytes
// long, when its size changes: a GPT's backup then moves to the new end. A
// table that cannot be read matters only then.
func tableToMove(d raw.Disk, size int64) (*part.Table, error) {
	t, err := part.Read(d, d.Size())
	switch {
	case err != nil && size != d.Size():
		return nil, fmt.Errorf("reading the partition table, to move a GPT's backup to the new end: %w", err)
	case err != nil:
		return nil, nil
	}
	return t, nil
}

// convertInPlace appends a footer to a raw file, or strips one from a fixed
// VHD, through setSize: read back, and undone if that fails.
func convertInPlace(opts ConvertOptions) (*ConvertResult, error) {
	lock, err := lockForChange(opts.Input)
	if err != nil {
		return nil, fmt.Errorf("convert --in-place: %w", err)
	}
	defer lock.Release()
	im, err := OpenWritable(opts.Input)
	if err != nil {
		return nil, fmt.Errorf("convert --in-place: %w", err)
	}
	defer im.Close()
	if err := im.footerSizeError(); err != nil {
		return nil, fmt.Errorf("convert --in-place %w; fix: %s", err, footerSizeFix(err, opts.Input))
	}
	res := &ConvertResult{Input: opts.Input, Output: opts.Input, InputFormat: im.Format, InputSize: im.Disk.Size(), InPlace: true, Changed: true}
	switch {
	case opts.ToRaw && im.Format == Raw, !opts.ToRaw && im.Format == VHDFixed:
		// Already what was asked for: a script may run this twice.
		if opts.Size != 0 && opts.Size != im.Disk.Size() {
			return nil, fmt.Errorf("convert --in-place %s: it is already a %s image; to change its size run 'vhdprep resize %s --size %d'", opts.Input, im.Format, shell.Quote(opts.Input), opts.Size)
		}
		res.OutputFormat, res.VirtualSize, res.Changed = im.Format, im.Disk.Size(), false
		return res, nil
	case opts.ToRaw && im.Format == VHDFixed:
		res.OutputFormat, res.VirtualSize = Raw, im.Disk.Size()
	case !opts.ToRaw && im.Format == Raw:
		res.OutputFormat, res.BytesWritten = VHDFixed, vhd.FooterSize
		if res.VirtualSize, err = outputSize(im.Disk.Size(), opts.Size, true); err != nil {
			return nil, fmt.Errorf("convert %s: %w", opts.Input, err)
		}
	default:
		return nil, fmt.Errorf("convert --in-place %s: the file is a %s image; --in-place turns raw into a fixed VHD, or with --to raw a fixed VHD into raw", opts.Input, im.Format)
	}
	table, err := tableToMove(im.Disk, res.VirtualSize)
	if err != nil {
		return nil, fmt.Errorf("convert %s: %w", opts.Input, err)
	}
	if err := setSize(im, table, res.VirtualSize, res.OutputFormat, nil); err != nil {
		return nil, fmt.Errorf("convert %s: %w", opts.Input, err)
	}
	return res, nil
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

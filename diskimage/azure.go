package diskimage

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vhdprep/vhdprep/internal/shell"
	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/raw/part"
	"github.com/vhdprep/vhdprep/vhd"
)

// Azure's bounds on a disk's virtual size, and the sizes that ask more of
// the disk.
const (
	AzureMinSize = 20 << 20
	AzureMaxSize = 4095 << 30
	// mbrMaxSize is what an MBR partition table, and BIOS (a Gen1 VM),
	// address: above it a disk must be GPT and boot through UEFI (Gen2).
	mbrMaxSize = 2 << 40
	// usualMaxSize: an OS disk above it is unusual, and costs.
	usualMaxSize = 1023 << 30
)

// Errors the verdict's problems wrap.
var (
	ErrNotFixedVHD = errors.New("not a fixed VHD, the only kind Azure takes")
	ErrTruncated   = errors.New("truncated fixed VHD")
	ErrOverLong    = errors.New("over-long fixed VHD")
	ErrAzureSize   = errors.New("size Azure does not accept")
	ErrCHSSize     = errors.New("readers disagree on the size")
)

// Requirement is one of Azure's requirements on a disk's container; check
// reports each as its own rule (VHD001 to VHD006, in this order).
type Requirement int

// Azure's requirements.
const (
	NeedFixedVHD     Requirement = iota + 1 // the file is a fixed VHD
	NeedValidFooter                         // its footer follows the specification
	NeedFooterSize                          // the footer's size is the file's data
	NeedWholeMiB                            // the virtual size is a whole number of MiB
	NeedSizeLimits                          // 20 MiB to 4095 GiB; at most 2 TiB on MBR or Gen1
	NeedCHSAgreement                        // every reader sees the footer's size
)

// Container is what Azure's verdict on a disk is decided from.
type Container struct {
	Path     string // named in the commands that fix a problem
	Format   Format
	FileSize int64
	// VirtualSize is the disk's size; unknown (0) for formats vhdprep
	// does not read.
	VirtualSize int64
	Footer      *vhd.Footer // a VHD's footer, nil otherwise
	// Scheme is the disk's partition table's, empty when not known.
	Scheme part.Scheme
	// BootsGen2 tells whether the disk boots through UEFI (a Gen2 VM), and
	// how it was found; it is asked only of disks above 2 TiB. Nil when the
	// caller cannot tell.
	BootsGen2 func() (bool, string)
}

// Problem is one requirement a disk misses.
type Problem struct {
	Need Requirement
	// Warning is set when Azure takes the disk anyway, but some readers or
	// VMs will not.
	Warning bool
	Err     error
	// Fix is the command, or the step, that meets the requirement.
	Fix string
}

// String is the problem and its fix, as info, check and upload say them.
func (p Problem) String() string {
	if p.Fix == "" {
		return p.Err.Error()
	}
	return p.Err.Error() + "; fix: " + p.Fix
}

// Verdict is every requirement a disk misses, in Requirement order.
type Verdict []Problem

// Accepted tells whether Azure takes the disk as it is: it misses nothing
// but warnings.
func (v Verdict) Accepted() bool { return v.Err() == nil }

// Err is the first problem that is not a warning, with its fix, or nil.
func (v Verdict) Err() error {
	for _, p := range v {
		if !p.Warning {
			if p.Fix == "" {
				return p.Err
			}
			return fmt.Errorf("%w; fix: %s", p.Err, p.Fix)
		}
	}
	return nil
}

// Of is the problems with one requirement.
func (v Verdict) Of(n Requirement) []Problem {
	var ps []Problem
	for _, p := range v {
		if p.Need == n {
			ps = append(ps, p)
		}
	}
	return ps
}

// AzureVerdict decides whether Azure takes a disk as its container is:
// a fixed VHD, with a valid footer that describes the file, of a whole
// number of MiB, from 20 MiB to 4095 GiB, and above 2 TiB a GPT disk that
// boots through UEFI. info, check and upload all report this verdict.
func AzureVerdict(c Container) Verdict {
	var v Verdict
	add := func(n Requirement, warning bool, err error, fix string) {
		v = append(v, Problem{Need: n, Warning: warning, Err: err, Fix: fix})
	}
	image, fixed := shell.Quote(c.Path), shell.Quote(FixedVHDName(c.Path))
	if c.Format != VHDFixed {
		fix := fmt.Sprintf("vhdprep convert %s %s", image, fixed)
		if !c.Format.Readable() {
			fix = ConvertHint(c.Format, c.Path) + ", then vhdprep convert disk.raw " + fixed
		}
		add(NeedFixedVHD, false, fmt.Errorf("%s is a %s image: %w", c.Path, c.Format, ErrNotFixedVHD), fix)
	}
	rewrite := fmt.Sprintf("vhdprep convert %s %s (rewrites the footer)", image, fixed)
	if c.Footer != nil {
		for _, err := range c.Footer.Validate() {
			add(NeedValidFooter, false, err, rewrite)
		}
	}
	// The size every reader, Azure included, sees is a fixed VHD's
	// footer's; a footer the file disagrees with is fixed first.
	size, resize := c.VirtualSize, "vhdprep resize "+image
	if c.Format != Raw && c.Format != VHDFixed {
		resize = fmt.Sprintf("vhdprep convert %s %s", image, fixed)
	}
	if c.Format == VHDFixed {
		size = c.Footer.CurrentSize
		if err := footerSizeError(c.Footer.CurrentSize, c.FileSize-vhd.FooterSize); err != nil {
			resize = footerSizeFix(err, c.Path)
			add(NeedFooterSize, false, err, resize)
		}
	}
	if c.Format.Readable() {
		sizeProblems(c, size, resize, add)
	}
	if c.Footer != nil {
		if q := c.Footer.QemuSize(); q != c.Footer.CurrentSize {
			add(NeedCHSAgreement, true, fmt.Errorf("%w: creator %q: readers that trust the CHS geometry see %d bytes, not %d", ErrCHSSize, c.Footer.CreatorApp, q, c.Footer.CurrentSize), rewrite)
		}
	}
	return v
}

// sizeProblems judges a disk's size: a whole MiB, Azure's bounds, and
// above 2 TiB the partition table and the boot path. resize is the
// command that changes the size (with its flags still to add), or for a
// footer the file disagrees with, the step that comes first.
func sizeProblems(c Container, size int64, resize string, add func(Requirement, bool, error, string)) {
	fixWith := func(flags string) string {
		if c.Format == VHDFixed && c.Footer.CurrentSize != c.FileSize-vhd.FooterSize {
			return resize
		}
		return resize + " " + flags
	}
	if !raw.IsMiBAligned(size) {
		add(NeedWholeMiB, false, fmt.Errorf("%w: virtual size %d is not a whole number of MiB (next: %d)", ErrAzureSize, size, raw.AlignMiB(size)), fixWith("--align"))
	}
	gib := size >> 30
	switch {
	case size < AzureMinSize:
		add(NeedSizeLimits, false, fmt.Errorf("%w: virtual size %d is below Azure's minimum of 20 MiB", ErrAzureSize, size), fixWith("--size 20M"))
	case size > AzureMaxSize:
		add(NeedSizeLimits, false, fmt.Errorf("%w: virtual size %d GiB is above Azure's maximum of 4095 GiB", ErrAzureSize, gib), fixWith("--size 4095G --shrink")+", if its partitions allow")
	case size > mbrMaxSize && c.Scheme == part.SchemeMBR:
		add(NeedSizeLimits, false, fmt.Errorf("%w: virtual size %d GiB is above the 2 TiB an MBR partition table can address", ErrAzureSize, gib), "use GPT (sgdisk -g) and boot as Gen2, or shrink below 2 TiB")
	case size > mbrMaxSize && c.BootsGen2 == nil:
		add(NeedSizeLimits, true, fmt.Errorf("%w: virtual size %d GiB is above 2 TiB, which only Gen2 (UEFI) VMs boot", ErrAzureSize, gib), fmt.Sprintf("create the VM as Gen2; vhdprep check %s tells whether the disk boots through UEFI", shell.Quote(c.Path)))
	case size > mbrMaxSize:
		if gen2, how := c.BootsGen2(); !gen2 {
			add(NeedSizeLimits, false, fmt.Errorf("%w: virtual size %d GiB is above 2 TiB, which only Gen2 (UEFI) VMs boot, and the disk has no UEFI boot path (%s)", ErrAzureSize, gib, how), "install a UEFI loader at EFI/BOOT/BOOTX64.EFI on the ESP, or shrink below 2 TiB")
			return
		}
		fallthrough
	case size > usualMaxSize:
		add(NeedSizeLimits, true, fmt.Errorf("%w: virtual size %d GiB is above 1023 GiB; most OS images are far smaller", ErrAzureSize, gib), "")
	}
}

// footerSizeError tells whether a fixed VHD's footer and file disagree on
// the disk's size: the file was cut short, or holds more than the footer
// says.
func footerSizeError(footer, data int64) error {
	switch {
	case footer > data:
		return fmt.Errorf("%w: the footer says %d bytes but the file holds %d bytes of data: the disk's last %d bytes are missing", ErrTruncated, footer, data, footer-data)
	case footer < data:
		return fmt.Errorf("%w: the footer says %d bytes but the file holds %d bytes of data, %d bytes more", ErrOverLong, footer, data, data-footer)
	}
	return nil
}

// footerSizeFix says what to do about a footerSizeError: never a resize,
// which would write a new footer over the evidence.
func footerSizeFix(err error, path string) string {
	image, fixed := shell.Quote(path), shell.Quote(FixedVHDName(path))
	if errors.Is(err, ErrTruncated) {
		return fmt.Sprintf("copy the whole file again from where it came from; 'vhdprep convert --accept-data-loss %s %s' keeps what is left, the missing bytes as zeros", image, fixed)
	}
	return fmt.Sprintf("find out which size is right; 'vhdprep convert --accept-data-loss %s %s' keeps the disk the footer describes and drops the bytes past it", image, fixed)
}

// FixedVHDName is the fixed VHD vhdprep's hints convert an image to: named
// after it, in the working directory, so never the image itself.
func FixedVHDName(image string) string {
	return strings.TrimSuffix(filepath.Base(image), filepath.Ext(image)) + "-fixed.vhd"
}

package diskimage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vhdprep/vhdprep/internal/imagelock"
	"github.com/vhdprep/vhdprep/internal/shell"
	"github.com/vhdprep/vhdprep/ova"
	"github.com/vhdprep/vhdprep/qcow2"
	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/raw/part"
	"github.com/vhdprep/vhdprep/rootfs/write"
	"github.com/vhdprep/vhdprep/vdi"
	"github.com/vhdprep/vhdprep/vhd"
	"github.com/vhdprep/vhdprep/vhdx"
	"github.com/vhdprep/vhdprep/vmdk"
)

// Image is an open image file: its container format and the virtual disk
// inside it.
type Image struct {
	Path     string
	Format   Format
	FileSize int64
	// Footer is the VHD footer of a fixed or dynamic VHD, nil otherwise.
	Footer *vhd.Footer
	// Disk is the guest-visible content.
	Disk raw.Disk

	file *os.File
}

// Open opens an image read-only and detects its format. A change to it
// that vhdprep did not finish (killed, power lost) is undone first, so
// nothing reads a half-made change. Formats vhdprep cannot read give an
// *UnreadableError, which says how to convert them.
func Open(path string) (*Image, error) {
	if err := write.RecoverInterrupted(path); err != nil {
		return nil, err
	}
	return open(path, os.O_RDONLY)
}

// OpenWritable opens a raw image or fixed VHD for changing it in place.
// Block devices are only read: their size cannot change.
func OpenWritable(path string) (*Image, error) {
	im, err := open(path, os.O_RDWR)
	if err != nil {
		return nil, err
	}
	if err := changeable(im.file); err != nil {
		im.Close()
		return nil, err
	}
	if im.Format != Raw && im.Format != VHDFixed {
		im.Close()
		return nil, fmt.Errorf("%s is a %s image, which vhdprep changes only as raw or fixed VHD; convert it first: vhdprep convert %s %s", path, im.Format, shell.Quote(path), shell.Quote(FixedVHDName(path)))
	}
	return im, nil
}

// changeable refuses a block device (raw.OpenFile refuses the rest of what
// is not a regular file): vhdprep changes only files in place.
func changeable(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is a block device, whose size vhdprep does not change; convert it to a file: vhdprep convert %s %s", f.Name(), shell.Quote(f.Name()), shell.Quote(FixedVHDName(f.Name())))
	}
	return nil
}

// lockForChange takes the lock of the image at path for changing it in
// place (resize, convert --in-place), and undoes a change of it that was
// interrupted (a resize, or a fix). What is not a regular file is refused first, so no lock
// file is made beside a device or a FIFO.
func lockForChange(path string) (*imagelock.Lock, error) {
	f, _, err := raw.OpenFile(path, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	err = changeable(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	lock, err := imagelock.Take(path)
	if err != nil {
		return nil, err
	}
	if err := write.Recover(path); err != nil {
		lock.Release()
		return nil, err
	}
	return lock, nil
}

func open(path string, flag int) (*Image, error) {
	f, size, err := raw.OpenFile(path, flag)
	if err != nil {
		return nil, err
	}
	im := &Image{Path: path, FileSize: size, file: f}
	if err := im.openDisk(); err != nil {
		f.Close()
		return nil, err
	}
	return im, nil
}

func (im *Image) openDisk() error {
	format, err := Detect(im.file, im.FileSize)
	if err != nil {
		return fmt.Errorf("%s: reading: %w", im.Path, err)
	}
	im.Format = format
	switch format {
	case Raw:
		im.Disk = raw.NewFile(im.file, im.FileSize)
	case VHDFixed:
		footer, err := vhd.ReadFooter(im.file, im.FileSize)
		if err != nil {
			return fmt.Errorf("%s: %w", im.Path, err)
		}
		im.Footer = footer
		// The data is everything before the footer, whatever the footer
		// claims; info and check report a disagreement.
		im.Disk = raw.NewFile(im.file, im.FileSize-vhd.FooterSize)
	case VHDDynamic:
		d, err := vhd.OpenDynamic(im.file, im.FileSize)
		if err != nil {
			return fmt.Errorf("%s: %w", im.Path, err)
		}
		im.Footer = d.Footer()
		im.Disk = d
	case QCOW2:
		q, err := qcow2.Open(im.file, im.FileSize)
		if err != nil {
			return fmt.Errorf("%s: %w", im.Path, err)
		}
		im.Disk = q
	case VDI:
		d, err := vdi.Open(im.file, im.FileSize)
		if err != nil {
			return fmt.Errorf("%s: %w", im.Path, err)
		}
		im.Disk = d
	case VHDX:
		d, err := vhdx.Open(im.file, im.FileSize)
		if errors.Is(err, vhdx.ErrLog) {
			return fmt.Errorf("%s: %w %s", im.Path, err, shell.Quote(im.Path))
		} else if err != nil {
			return fmt.Errorf("%s: %w", im.Path, err)
		}
		im.Disk = d
	case VMDK:
		d, err := vmdk.Open(im.file, im.FileSize, besideFS(filepath.Dir(im.Path)))
		if err != nil {
			return fmt.Errorf("%s: %w", im.Path, err)
		}
		im.Disk = d
	case OVA:
		d, err := ova.Open(im.file, im.FileSize)
		if err != nil {
			return fmt.Errorf("%s: %w", im.Path, err)
		}
		im.Disk = d
	default:
		return &UnreadableError{Path: im.Path, Format: format, FileSize: im.FileSize}
	}
	return nil
}

// Container describes the image for AzureVerdict. bootsGen2 tells, for a
// disk above 2 TiB, whether it boots through UEFI; nil when the caller
// cannot tell.
func (im *Image) Container(bootsGen2 func() (bool, string)) Container {
	t, err := part.Read(im.Disk, im.Disk.Size())
	if err != nil {
		t = nil
	}
	return im.ContainerOf(t, bootsGen2)
}

// ContainerOf is Container for a caller that has read the disk's partition
// table t already (nil when it cannot be read).
func (im *Image) ContainerOf(t *part.Table, bootsGen2 func() (bool, string)) Container {
	c := Container{Path: im.Path, Format: im.Format, FileSize: im.FileSize, VirtualSize: im.Disk.Size(), Footer: im.Footer, BootsGen2: bootsGen2}
	if t != nil {
		c.Scheme = t.Scheme
	}
	return c
}

// footerSizeError is non-nil for a fixed VHD whose footer and file
// disagree on the disk's size.
func (im *Image) footerSizeError() error {
	if im.Format != VHDFixed {
		return nil
	}
	if err := footerSizeError(im.Footer.CurrentSize, im.Disk.Size()); err != nil {
		return fmt.Errorf("%s: %w", im.Path, err)
	}
	return nil
}

// File is the underlying file, for operations that work on the container.
func (im *Image) File() *os.File { return im.file }

// besideFS opens the extent files a VMDK descriptor names in its
// directory, refusing names and links that lead out of it.
type besideFS string

func (dir besideFS) Open(name string) (fs.File, error) {
	f, err := os.OpenInRoot(string(dir), name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Close closes the image file, and the extent files of a VMDK.
func (im *Image) Close() error {
	if c, ok := im.Disk.(io.Closer); ok {
		c.Close()
	}
	return im.file.Close()
}

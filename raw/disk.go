// Package raw is the virtual-disk layer: one Disk type for every container
// format (raw file, VHD, qcow2), the data extents that let copies and uploads
// skip what was never written, and the MiB alignment Azure demands.
package raw

import (
	"errors"
	"fmt"
	"io"
)

// Disk is the guest-visible content of an image, whatever its container.
type Disk interface {
	io.ReaderAt
	// Size is the virtual size in bytes.
	Size() int64
	// Extents lists, in ascending order and without overlap, the ranges that
	// may hold non-zero data. Every byte outside them reads as zero; bytes
	// inside them may be zero too.
	Extents() ([]Extent, error)
}

// Granular is a Disk that reads in units: a container whose clusters or
// grains are compressed decompresses a whole one for any part of it read.
// A copy reads such a disk in chunks of whole units, each aligned to a
// multiple of the unit, so that no unit is decompressed twice.
type Granular interface {
	// Granularity is the unit in bytes, 0 for none.
	Granularity() int64
}

// Extent is a byte range of a Disk.
type Extent struct {
	Offset int64
	Length int64
}

// End is the offset one past the extent's last byte.
func (e Extent) End() int64 { return e.Offset + e.Length }

// Coalesce sorts nothing but merges, in a list already in ascending order,
// extents that touch or overlap, and drops empty ones.
func Coalesce(exts []Extent) []Extent {
	out := exts[:0:0]
	for _, e := range exts {
		if e.Length <= 0 {
			continue
		}
		if n := len(out); n > 0 && e.Offset <= out[n-1].End() {
			if e.End() > out[n-1].End() {
				out[n-1].Length = e.End() - out[n-1].Offset
			}
			continue
		}
		out = append(out, e)
	}
	return out
}

// Clip returns the parts of exts that lie below limit.
func Clip(exts []Extent, limit int64) []Extent {
	out := exts[:0:0]
	for _, e := range exts {
		if e.Offset >= limit {
			break
		}
		if e.End() > limit {
			e.Length = limit - e.Offset
		}
		out = append(out, e)
	}
	return out
}

// ErrNegativeOffset is returned by a Disk's ReadAt at an offset below zero.
var ErrNegativeOffset = errors.New("read at negative offset")

// Window clips a ReadAt of p at off to a disk of size bytes, as the
// container readers' ReadAt begin: it returns the part of p inside the
// disk (empty at or past its end) and the error ReadAt ends with once
// that part is read, io.EOF when it is shorter than p.
func Window(p []byte, off, size int64) ([]byte, error) {
	switch {
	case off < 0:
		return nil, fmt.Errorf("%w %d", ErrNegativeOffset, off)
	case off >= size:
		return nil, io.EOF
	case int64(len(p)) > size-off:
		return p[:size-off], io.EOF
	}
	return p, nil
}

// ReadFull reads len(p) bytes at off. Running out of input is
// io.ErrUnexpectedEOF: the container readers read only what their headers
// say exists, so a short read means the file was cut.
func ReadFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

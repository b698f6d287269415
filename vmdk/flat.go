package vmdk

import (
	"io"
	"os"

	"github.com/vhdprep/vhdprep/raw"
)

// flat is an extent whose bytes are a file's, from an offset on
// (monolithicFlat, twoGbMaxExtentFlat, ESXi's -flat.vmdk).
type flat struct {
	r    io.ReaderAt
	off  int64
	size int64
}

func newFlat(r io.ReaderAt, off, size int64) *flat { return &flat{r: r, off: off, size: size} }

func (f *flat) Size() int64 { return f.size }

func (f *flat) ReadAt(p []byte, off int64) (int, error) {
	return io.NewSectionReader(f.r, f.off, f.size).ReadAt(p, off)
}

// Extents asks the filesystem where the file holds data, so a sparse flat
// file's holes stay holes; any other file is data throughout.
func (f *flat) Extents() ([]raw.Extent, error) {
	file, ok := f.r.(*os.File)
	if !ok {
		return []raw.Extent{{Offset: 0, Length: f.size}}, nil
	}
	exts, err := raw.NewFile(file, f.off+f.size).Extents()
	if err != nil {
		return nil, err
	}
	var out []raw.Extent
	for _, e := range exts {
		if e.End() > f.off {
			start := max(e.Offset, f.off)
			out = append(out, raw.Extent{Offset: start - f.off, Length: e.End() - start})
		}
	}
	return out, nil
}

// zeros is a ZERO extent: no file, every byte zero.
type zeros int64

func (z zeros) Size() int64 { return int64(z) }

func (z zeros) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(z) {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), int64(z)-off))
	clear(p[:n])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (zeros) Extents() ([]raw.Extent, error) { return nil, nil }

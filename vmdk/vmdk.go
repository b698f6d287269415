// Package vmdk reads VMware's VMDK images as the virtual disks they hold,
// following VMware's Virtual Disk Format 1.1: hosted sparse extents
// (monolithicSparse, twoGbMaxExtentSparse) with their grain directory,
// grain tables and redundant grain directory; streamOptimized images, whose
// grains are deflated behind markers and whose grain directory the footer
// names, as OVAs and vSphere exports hold them; and descriptor files naming
// flat, sparse and zero extents (monolithicFlat, twoGbMaxExtentFlat, ESXi's
// flat disks). Differencing images, seSparse and vmfsSparse deltas and raw
// device mappings are refused with the reason.
package vmdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"sort"

	"github.com/vhdprep/vhdprep/raw"
)

// Magic numbers, at the start of a file.
const (
	Magic           = "KDMV" // a hosted sparse extent
	DescriptorMagic = "# Disk DescriptorFile"
	cowdMagic       = "COWD"                             // ESXi's vmfsSparse snapshot delta
	seSparseMagic   = "\xbe\xba\xfe\xca\x00\x00\x00\x00" // ESXi's seSparse delta

	sectorSize = 512
	// qemuHint is what to do about a VMDK qemu-img reads and vhdprep
	// does not.
	qemuHint = "qemu-img may read it: qemu-img convert -f vmdk -O raw disk.vmdk disk.raw"
	// maxVirtualSize is above any disk Azure takes and keeps the offset
	// arithmetic far from overflow.
	maxVirtualSize = 64 << 40
)

// Errors.
var (
	ErrNotVMDK      = errors.New("not a VMDK image")
	ErrCorrupt      = errors.New("corrupt VMDK image")
	ErrUnsupported  = errors.New("unsupported VMDK image")
	ErrDifferencing = errors.New("differencing VMDK image")
)

// Info is what info shows of a VMDK image.
type Info struct {
	CreateType string            `json:"create_type"`
	CID        string            `json:"cid,omitempty"`
	DDB        map[string]string `json:"-"` // the disk database: geometry, adapter, hardware version
	Extents    []ExtentInfo      `json:"extents"`
}

// DDBEntry is one line of the disk database, as JSON lists it: its keys
// are VMware's names (ddb.adapterType without the prefix), not JSON's.
type DDBEntry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// MarshalJSON writes the disk database as a list of entries by key, and
// [] for no extents.
func (i Info) MarshalJSON() ([]byte, error) {
	type info Info // without this method
	ddb := []DDBEntry{}
	for _, k := range slices.Sorted(maps.Keys(i.DDB)) {
		ddb = append(ddb, DDBEntry{k, i.DDB[k]})
	}
	if i.Extents == nil {
		i.Extents = []ExtentInfo{}
	}
	return json.Marshal(struct {
		info
		DDB []DDBEntry `json:"ddb"`
	}{info(i), ddb})
}

// ExtentInfo describes one extent: a range of the disk and where it lives.
type ExtentInfo struct {
	Access string      `json:"access"`
	Type   string      `json:"type"` // SPARSE, FLAT, VMFS or ZERO
	File   string      `json:"file,omitempty"`
	Size   int64       `json:"size_bytes,string"`
	Offset int64       `json:"offset_bytes,string"` // where a flat extent starts in its file
	Sparse *SparseInfo `json:"sparse,omitempty"`
}

// Image is an open VMDK image. It implements raw.Disk and is safe for
// concurrent use.
type Image struct {
	parts   []raw.Disk // the extents, in disk order
	starts  []int64    // where each begins on the disk
	size    int64
	info    Info
	closers []io.Closer
}

// Detect tells whether a file's first bytes are a VMDK's: a sparse
// extent, a descriptor, or one of ESXi's snapshot deltas, which Open
// refuses by name.
func Detect(head []byte) bool {
	for _, m := range []string{Magic, DescriptorMagic, cowdMagic, seSparseMagic} {
		if bytes.HasPrefix(head, []byte(m)) {
			return true
		}
	}
	return false
}

// Open reads a VMDK image of size bytes from r: a hosted sparse extent
// (monolithicSparse, streamOptimized) or a descriptor file. dir holds the
// files a descriptor names, by the names it gives them (the descriptor's
// own directory, so a name cannot reach outside it); nil refuses a
// descriptor that names other files. Close closes what Open opened in dir.
func Open(r io.ReaderAt, size int64, dir fs.FS) (*Image, error) {
	head := make([]byte, min(size, sectorSize))
	if err := raw.ReadFull(r, head, 0); err != nil {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(head, []byte(Magic)):
		return openSparseImage(r, size)
	case bytes.HasPrefix(head, []byte(cowdMagic)):
		return nil, fmt.Errorf("%w: a vmfsSparse (COWD) extent, an ESXi snapshot's delta, which needs its parent disk; open the snapshot's descriptor with qemu-img, or consolidate the snapshots in vSphere", ErrUnsupported)
	case bytes.HasPrefix(head, []byte(seSparseMagic)):
		return nil, fmt.Errorf("%w: a seSparse extent, an ESXi snapshot's delta, which needs its parent disk; consolidate the snapshots in vSphere or export the VM", ErrUnsupported)
	}
	if size > maxDescriptor {
		return nil, ErrNotVMDK
	}
	text := make([]byte, size)
	if err := raw.ReadFull(r, text, 0); err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(text, []byte(DescriptorMagic)) {
		return nil, ErrNotVMDK
	}
	d, err := parseDescriptor(text)
	if err != nil {
		return nil, err
	}
	im := &Image{}
	if err := im.openExtents(d, dir); err != nil {
		im.Close()
		return nil, err
	}
	return im, nil
}

// openSparseImage opens a file that is one hosted sparse extent, its
// descriptor embedded, as monolithicSparse and streamOptimized images are.
func openSparseImage(r io.ReaderAt, size int64) (*Image, error) {
	s, err := openSparse(r, size)
	if err != nil {
		return nil, err
	}
	im := &Image{info: Info{CreateType: "monolithicSparse"}}
	if s.info.Compressed {
		im.info.CreateType = "streamOptimized"
	}
	access := "RW"
	if text, err := s.descriptor(); err != nil {
		return nil, err
	} else if text != nil {
		d, err := parseDescriptor(text)
		if err != nil {
			return nil, err
		}
		if err := d.checkParent(); err != nil {
			return nil, err
		}
		// Its extent line names this very file: the header, not the
		// descriptor, says how large the extent is, as qemu reads it.
		if d.createType != "" {
			im.info.CreateType = d.createType
		}
		if len(d.extents) > 0 {
			access = d.extents[0].access
		}
		im.info.CID, im.info.DDB = d.cid, d.ddb
	}
	im.add(s, ExtentInfo{Access: access, Type: "SPARSE", Size: s.size, Sparse: &s.info})
	return im, nil
}

// openExtents opens the extents a descriptor file names.
func (im *Image) openExtents(d *descriptor, dir fs.FS) error {
	if err := d.checkParent(); err != nil {
		return err
	}
	im.info = Info{CreateType: d.createType, CID: d.cid, DDB: d.ddb}
	for _, e := range d.extents {
		ei := ExtentInfo{Access: e.access, Type: e.kind, File: e.file, Size: e.sectors * sectorSize, Offset: e.offset * sectorSize}
		switch e.kind {
		case "ZERO":
			im.add(zeros(ei.Size), ei)
			continue
		case "FLAT", "VMFS", "SPARSE":
		case "VMFSSPARSE", "SESPARSE":
			return fmt.Errorf("%w: extent %q is an ESXi snapshot's delta (%s), which needs its parent disk; consolidate the snapshots in vSphere or export the VM", ErrUnsupported, e.file, e.kind)
		case "VMFSRDM", "VMFSRAW":
			return fmt.Errorf("%w: extent %q maps a raw device (%s): the data is on the LUN, not in a file; export the disk from vSphere", ErrUnsupported, e.file, e.kind)
		default:
			return fmt.Errorf("%w: extent type %q; %s", ErrUnsupported, e.kind, qemuHint)
		}
		if e.access == "NOACCESS" {
			return fmt.Errorf("%w: extent %q is NOACCESS: its data may not be read", ErrUnsupported, e.file)
		}
		r, size, err := im.openFile(dir, e.file)
		if err != nil {
			return err
		}
		if e.kind == "SPARSE" {
			s, err := openSparse(r, size)
			if err != nil {
				return fmt.Errorf("extent %q: %w", e.file, err)
			}
			if s.size != ei.Size {
				return fmt.Errorf("%w: the descriptor gives extent %q %d bytes, its header %d", ErrCorrupt, e.file, ei.Size, s.size)
			}
			ei.Sparse = &s.info
			im.add(s, ei)
			continue
		}
		if ei.Offset+ei.Size > size {
			return fmt.Errorf("%w: extent %q holds %d bytes, not the %d from offset %d the descriptor says (truncated?)", ErrCorrupt, e.file, size, ei.Size, ei.Offset)
		}
		im.add(newFlat(r, ei.Offset, ei.Size), ei)
	}
	if im.size == 0 {
		return fmt.Errorf("%w: the descriptor names no extent", ErrCorrupt)
	}
	return nil
}

// openFile opens an extent file in dir, keeping it for Close.
func (im *Image) openFile(dir fs.FS, name string) (io.ReaderAt, int64, error) {
	if dir == nil {
		return nil, 0, fmt.Errorf("%w: the descriptor names extent file %q, and no directory to find it in was given", ErrUnsupported, name)
	}
	if !fs.ValidPath(name) {
		return nil, 0, fmt.Errorf("%w: extent file %q is not a name inside the descriptor's directory; vhdprep opens extents only beside their descriptor: move the file there and name it so in the descriptor", ErrUnsupported, name)
	}
	f, err := dir.Open(name)
	if err != nil {
		return nil, 0, fmt.Errorf("opening extent file %q: %w", name, err)
	}
	im.closers = append(im.closers, f)
	st, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("extent file %q: %w", name, err)
	}
	r, ok := f.(io.ReaderAt)
	if !ok || !st.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%w: extent %q is not a regular file", ErrUnsupported, name)
	}
	return r, st.Size(), nil
}

// add appends an extent to the disk. parseDescriptor and openSparse have
// bounded the sizes, so their sum stays far from overflow.
func (im *Image) add(d raw.Disk, ei ExtentInfo) {
	im.parts = append(im.parts, d)
	im.starts = append(im.starts, im.size)
	im.size += d.Size()
	im.info.Extents = append(im.info.Extents, ei)
}

// Info is the image's descriptor and headers.
func (im *Image) Info() Info { return im.info }

// Size is the virtual size.
func (im *Image) Size() int64 { return im.size }

// Granularity is the grain of a disk whose grains are deflated
// (raw.Granular): a deflated grain is inflated whole for any part of it
// that is read. It is 0 where that unit is not one for the whole disk
// (extents of other grains, or one that begins inside a grain), and for a
// disk with no deflated grains.
func (im *Image) Granularity() int64 {
	var unit int64
	for i, d := range im.parts {
		s, ok := d.(*sparse)
		if !ok || !s.compressed {
			continue
		}
		if unit != 0 && s.grain != unit || im.starts[i]%s.grain != 0 {
			return 0
		}
		unit = s.grain
	}
	return unit
}

// Close closes the extent files Open opened.
func (im *Image) Close() error {
	var errs []error
	for _, c := range im.closers {
		errs = append(errs, c.Close())
	}
	im.closers = nil
	return errors.Join(errs...)
}

// ReadAt reads guest bytes.
func (im *Image) ReadAt(p []byte, off int64) (int, error) {
	p, eof := raw.Window(p, off, im.size)
	if len(p) == 0 {
		return 0, eof
	}
	i := sort.Search(len(im.starts), func(i int) bool { return im.starts[i] > off }) - 1
	for n := 0; n < len(p); i++ {
		within := off + int64(n) - im.starts[i]
		chunk := p[n:min(int64(len(p)), int64(n)+im.parts[i].Size()-within)]
		if err := raw.ReadFull(im.parts[i], chunk, within); err != nil {
			return n, err
		}
		n += len(chunk)
	}
	return len(p), eof
}

// Extents lists the data extents of every extent, each where it lies on
// the disk.
func (im *Image) Extents() ([]raw.Extent, error) {
	var exts []raw.Extent
	for i, d := range im.parts {
		es, err := d.Extents()
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			exts = append(exts, raw.Extent{Offset: im.starts[i] + e.Offset, Length: e.Length})
		}
	}
	return raw.Coalesce(exts), nil
}

package lvm

import (
	"fmt"
	"io"
	"sort"
)

// maxExtentBytes bounds what metadata may claim (8 EiB would overflow
// offsets; LVM itself stops far below this).
const maxExtentBytes = 1 << 56

// VG is a volume group as its metadata describes it.
type VG struct {
	Name       string
	ID         string
	SeqNo      int64
	ExtentSize int64 // bytes
	PVs        []PVInfo
	LVs        []LV
}

// PVInfo is a physical volume as the VG metadata lists it.
type PVInfo struct {
	Name    string // "pv0": how segments name it
	ID      string
	Device  string // the device path LVM last saw it at
	PEStart int64  // bytes from the PV's start to its first extent
	PECount int64
}

// LV is a logical volume.
type LV struct {
	Name     string
	ID       string
	Status   []string
	Segments []Segment
}

// Segment maps a run of an LV's extents to stripes on PVs.
type Segment struct {
	StartExtent int64
	ExtentCount int64
	Type        string // "striped" (linear is striped with one stripe)
	StripeSize  int64  // bytes; 0 for linear
	Stripes     []Stripe
}

// Stripe is where one stripe of a segment starts.
type Stripe struct {
	PV          string // a PVInfo.Name
	StartExtent int64
}

// ParseVG parses a volume group's text metadata.
func ParseVG(text []byte) (*VG, error) {
	root, err := parseText(text)
	if err != nil {
		return nil, err
	}
	// The VG is the one top-level section; the rest are plain values.
	if len(root.order) != 1 {
		return nil, fmt.Errorf("%w: %d top-level sections, want one volume group", ErrCorrupt, len(root.order))
	}
	name := root.order[0]
	s := root.sections[name]
	vg := &VG{Name: name, ID: s.str("id")}
	if vg.SeqNo, err = s.int("seqno"); err != nil {
		return nil, err
	}
	extentSectors, err := s.int("extent_size")
	if err != nil {
		return nil, err
	}
	if extentSectors <= 0 || extentSectors > 1<<32 {
		return nil, fmt.Errorf("%w: extent size %d sectors", ErrCorrupt, extentSectors)
	}
	vg.ExtentSize = extentSectors * sectorSize
	if pvs := s.sections["physical_volumes"]; pvs != nil {
		for _, n := range pvs.order {
			p := pvs.sections[n]
			start, err := p.int("pe_start")
			if err != nil {
				return nil, err
			}
			count, err := p.int("pe_count")
			if err != nil {
				return nil, err
			}
			if start < 0 || start > maxExtentBytes/sectorSize || count < 0 || count > maxExtentBytes/vg.ExtentSize {
				return nil, fmt.Errorf("%w: PV %s has pe_start %d and pe_count %d", ErrCorrupt, n, start, count)
			}
			vg.PVs = append(vg.PVs, PVInfo{Name: n, ID: p.str("id"), Device: p.str("device"), PEStart: start * sectorSize, PECount: count})
		}
	}
	if lvs := s.sections["logical_volumes"]; lvs != nil {
		for _, n := range lvs.order {
			lv, err := parseLV(n, lvs.sections[n], vg.ExtentSize)
			if err != nil {
				return nil, err
			}
			vg.LVs = append(vg.LVs, lv)
		}
	}
	return vg, nil
}

func parseLV(name string, s *section, extentSize int64) (LV, error) {
	lv := LV{Name: name, ID: s.str("id"), Status: s.strings("status")}
	var total int64
	for _, segName := range s.order {
		seg := s.sections[segName]
		var sg Segment
		var err error
		if sg.StartExtent, err = seg.int("start_extent"); err != nil {
			return LV{}, err
		}
		if sg.ExtentCount, err = seg.int("extent_count"); err != nil {
			return LV{}, err
		}
		sg.Type = seg.str("type")
		if sg.Type == "striped" {
			if size, ok := seg.values["stripe_size"].(int64); ok && size > 0 && size <= 1<<32 {
				sg.StripeSize = size * sectorSize
			}
			list, _ := seg.values["stripes"].([]any)
			for i := 0; i+1 < len(list); i += 2 {
				pv, _ := list[i].(string)
				start, _ := list[i+1].(int64)
				sg.Stripes = append(sg.Stripes, Stripe{pv, start})
			}
		}
		if sg.StartExtent < 0 || sg.ExtentCount <= 0 || sg.ExtentCount > maxExtentBytes/extentSize-total {
			return LV{}, fmt.Errorf("%w: LV %s segment %s has extents %d+%d", ErrCorrupt, name, segName, sg.StartExtent, sg.ExtentCount)
		}
		total += sg.ExtentCount
		lv.Segments = append(lv.Segments, sg)
	}
	sort.Slice(lv.Segments, func(i, j int) bool { return lv.Segments[i].StartExtent < lv.Segments[j].StartExtent })
	return lv, nil
}

// Size is the LV's size in bytes.
func (vg *VG) Size(lv *LV) int64 {
	var n int64
	for _, s := range lv.Segments {
		n += s.ExtentCount
	}
	return n * vg.ExtentSize
}

// LV returns the logical volume called name.
func (vg *VG) LV(name string) (*LV, error) {
	for i := range vg.LVs {
		if vg.LVs[i].Name == name {
			return &vg.LVs[i], nil
		}
	}
	return nil, fmt.Errorf("LV %s/%s: %w", vg.Name, name, ErrNotFound)
}

// Open returns the bytes of a linear or striped LV and its size. pvs gives
// each PV's bytes by its UUID (as LVM prints it); a PV that is missing
// means the VG spans disks that are not here, and a PV shorter than the LV
// needs means the disk is truncated.
func (vg *VG) Open(name string, pvs map[string]*io.SectionReader) (io.ReaderAt, int64, error) {
	lv, err := vg.LV(name)
	if err != nil {
		return nil, 0, err
	}
	byName := map[string]PVInfo{}
	for _, p := range vg.PVs {
		byName[p.Name] = p
	}
	m := &lvReader{vg: vg}
	var next int64
	for _, s := range lv.Segments {
		if s.Type != "striped" {
			return nil, 0, fmt.Errorf("LV %s/%s: segment type %q is not supported (only linear and striped)", vg.Name, name, s.Type)
		}
		if len(s.Stripes) == 0 {
			return nil, 0, fmt.Errorf("%w: LV %s/%s has a segment with no stripes", ErrCorrupt, vg.Name, name)
		}
		if s.StartExtent != next {
			return nil, 0, fmt.Errorf("%w: LV %s/%s has a gap at extent %d", ErrCorrupt, vg.Name, name, next)
		}
		next = s.StartExtent + s.ExtentCount
		// Each stripe holds an equal share of the segment's extents.
		if s.ExtentCount%int64(len(s.Stripes)) != 0 {
			return nil, 0, fmt.Errorf("%w: LV %s/%s has %d extents over %d stripes", ErrCorrupt, vg.Name, name, s.ExtentCount, len(s.Stripes))
		}
		perStripe := s.ExtentCount / int64(len(s.Stripes))
		seg := mappedSegment{Segment: s}
		for _, st := range s.Stripes {
			info, ok := byName[st.PV]
			if !ok {
				return nil, 0, fmt.Errorf("%w: LV %s/%s names PV %q the VG does not list", ErrCorrupt, vg.Name, name, st.PV)
			}
			r, ok := pvs[info.ID]
			if !ok {
				return nil, 0, fmt.Errorf("LV %s/%s needs PV %s (%s), which is not on this disk: VG %s spans several disks", vg.Name, name, info.ID, info.Device, vg.Name)
			}
			if st.StartExtent < 0 || st.StartExtent > info.PECount-perStripe {
				return nil, 0, fmt.Errorf("%w: LV %s/%s extends past the end of PV %s", ErrCorrupt, vg.Name, name, info.ID)
			}
			if end := info.PEStart + (st.StartExtent+perStripe)*vg.ExtentSize; end > r.Size() {
				return nil, 0, fmt.Errorf("%w: LV %s/%s needs %d bytes of PV %s, which has %d: the disk image is truncated", ErrCorrupt, vg.Name, name, end, info.ID, r.Size())
			}
			seg.pvs = append(seg.pvs, r)
			seg.bases = append(seg.bases, info.PEStart+st.StartExtent*vg.ExtentSize)
		}
		if len(s.Stripes) > 1 && (s.StripeSize <= 0 || vg.ExtentSize%s.StripeSize != 0) {
			return nil, 0, fmt.Errorf("%w: LV %s/%s stripe size %d", ErrCorrupt, vg.Name, name, s.StripeSize)
		}
		m.segs = append(m.segs, seg)
	}
	m.size = next * vg.ExtentSize
	return m, m.size, nil
}

type mappedSegment struct {
	Segment
	pvs   []io.ReaderAt
	bases []int64 // byte offset of each stripe's first extent on its PV
}

// lvReader reads an LV by mapping each offset to a stripe on a PV.
type lvReader struct {
	vg   *VG
	segs []mappedSegment
	size int64
}

func (m *lvReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("lvm: negative offset")
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= m.size {
			return n, io.EOF
		}
		r, at, run := m.locate(pos)
		chunk := p[n:min(len(p), n+int(run))]
		k, err := r.ReadAt(chunk, at)
		n += k
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
	return n, nil
}

// locate maps an LV offset to a PV, the offset there, and how many bytes
// continue contiguously.
func (m *lvReader) locate(pos int64) (io.ReaderAt, int64, int64) {
	es := m.vg.ExtentSize
	i := sort.Search(len(m.segs), func(i int) bool { return (m.segs[i].StartExtent+m.segs[i].ExtentCount)*es > pos })
	s := m.segs[i]
	within := pos - s.StartExtent*es
	segEnd := s.ExtentCount*es - within
	if len(s.pvs) == 1 {
		return s.pvs[0], s.bases[0] + within, segEnd
	}
	// Striped: chunks of StripeSize go round the stripes in turn.
	chunk := within / s.StripeSize
	stripe := chunk % int64(len(s.pvs))
	row := chunk / int64(len(s.pvs))
	inChunk := within % s.StripeSize
	return s.pvs[stripe], s.bases[stripe] + row*s.StripeSize + inChunk, min(segEnd, s.StripeSize-inChunk)
}

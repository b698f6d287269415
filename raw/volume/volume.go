// Package volume turns a virtual disk into its volumes: the partitions of
// its table (or the whole disk when it has none) and the logical volumes of
// the LVM physical volumes on it, each probed for what it holds.
package volume

import (
	"errors"
	"fmt"
	"io"

	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/raw/lvm"
	"github.com/vhdprep/vhdprep/raw/part"
	"github.com/vhdprep/vhdprep/raw/probe"
)

// Layout is a disk's partition table, volume groups and volumes.
type Layout struct {
	Table    *part.Table
	VGs      []*lvm.VG
	Volumes  []Volume
	Warnings []string

	pvs map[string]Volume // by PV UUID, the partition holding it
}

// Volume is a partition, a logical volume, or a disk without a table.
type Volume struct {
	// Name is "p1" for partition 1, "vg/lv" for a logical volume, "disk"
	// for a disk without a partition table.
	Name      string
	Partition *part.Partition // nil for logical volumes and whole disks
	VG, LV    string
	Offset    int64 // on the disk; 0 for logical volumes (see Layout.OnDisk)
	Size      int64
	R         io.ReaderAt // the volume's own bytes
	FS        probe.Result
}

// List reads the disk's layout. Damage that leaves the rest readable (a
// broken EBR chain, a PV whose metadata is corrupt, a volume that cannot
// be read) becomes a warning.
func List(d raw.Disk) (*Layout, error) {
	t, err := part.Read(d, d.Size())
	if err != nil {
		return nil, err
	}
	l := &Layout{Table: t, Warnings: append([]string{}, t.Warnings...)}
	if t.Scheme == part.SchemeNone {
		l.add(Volume{Name: "disk", Size: d.Size(), R: d})
	}
	for i := range t.Partitions {
		p := &t.Partitions[i]
		if p.IsExtended() {
			continue
		}
		size := min(p.Size, max(0, d.Size()-p.Start)) // a partition past the end is cut, and warned about
		l.add(Volume{Name: fmt.Sprintf("p%d", p.Number), Partition: p, Offset: p.Start, Size: size, R: io.NewSectionReader(d, p.Start, size)})
	}
	l.addLVs()
	return l, nil
}

// add probes a volume and lists it; one that cannot be read is listed
// with no type, and warned about.
func (l *Layout) add(v Volume) {
	res, err := probe.Probe(v.R, v.Size)
	if err != nil {
		l.Warnings = append(l.Warnings, fmt.Sprintf("%s: cannot read its signature: %v", v.Name, err))
	}
	v.FS = res
	l.Volumes = append(l.Volumes, v)
}

// addLVs opens every PV found and adds the logical volumes of its VG.
func (l *Layout) addLVs() {
	pvs := map[string]*io.SectionReader{}
	var vgs []*lvm.VG
	for _, v := range l.Volumes {
		if v.FS.Type != probe.LVM {
			continue
		}
		pv, err := lvm.ReadPV(v.R, v.Size)
		if err != nil {
			l.Warnings = append(l.Warnings, fmt.Sprintf("LVM physical volume on %s: %v", v.Name, err))
			continue
		}
		pvs[pv.UUID] = io.NewSectionReader(v.R, 0, v.Size)
		if v.Partition != nil {
			if l.pvs == nil {
				l.pvs = map[string]Volume{}
			}
			l.pvs[pv.UUID] = v
		}
		if pv.VG != nil && !hasVG(vgs, pv.VG) {
			vgs = append(vgs, pv.VG)
		}
	}
	l.VGs = vgs
	for _, vg := range vgs {
		for _, lv := range vg.LVs {
			r, size, err := vg.Open(lv.Name, pvs)
			if err != nil {
				l.Warnings = append(l.Warnings, err.Error())
				continue
			}
			l.add(Volume{Name: vg.Name + "/" + lv.Name, VG: vg.Name, LV: lv.Name, Size: size, R: r})
		}
	}
}

// OnDisk tells where v starts on the disk, when v is one run of the disk's
// bytes: a partition or a whole disk is; a logical volume only when it is
// linear, of one segment, on a physical volume that is a partition of this
// disk. Otherwise the error says why, as a clause about the logical volume
// ("has 2 segments").
func (l *Layout) OnDisk(v Volume) (int64, error) {
	if v.LV == "" {
		return v.Offset, nil
	}
	for _, vg := range l.VGs {
		if vg.Name != v.VG {
			continue
		}
		lv, err := vg.LV(v.LV)
		if err != nil {
			return 0, err
		}
		if len(lv.Segments) != 1 {
			return 0, fmt.Errorf("has %d segments", len(lv.Segments))
		}
		seg := lv.Segments[0]
		if seg.Type != "striped" || len(seg.Stripes) != 1 {
			return 0, fmt.Errorf("is %s over %d stripes", seg.Type, len(seg.Stripes))
		}
		for _, info := range vg.PVs {
			if info.Name != seg.Stripes[0].PV {
				continue
			}
			pv, ok := l.pvs[info.ID]
			if !ok {
				return 0, errors.New("lies on a physical volume that is not a partition of this disk")
			}
			return pv.Offset + info.PEStart + seg.Stripes[0].StartExtent*vg.ExtentSize, nil
		}
	}
	return 0, errors.New("vhdprep cannot place on the disk")
}

func hasVG(vgs []*lvm.VG, vg *lvm.VG) bool {
	for _, v := range vgs {
		if v.ID == vg.ID {
			return true
		}
	}
	return false
}

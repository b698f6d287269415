package guest

import (
	"github.com/vhdprep/vhdprep/diskimage"
	"github.com/vhdprep/vhdprep/kernel"
	"github.com/vhdprep/vhdprep/raw/part"
	"github.com/vhdprep/vhdprep/rootfs"
)

// Report is what `vhdprep inspect` prints.
type Report struct {
	Name        string           `json:"image"`
	Format      diskimage.Format `json:"format,omitempty"`
	VirtualSize int64            `json:"virtual_size_bytes,omitempty,string"`
	Table       *TableReport     `json:"partition_table,omitempty"`
	VGs         []VGReport       `json:"volume_groups"`
	Volumes     []VolumeReport   `json:"volumes"`
	Mounts      []rootfs.Mounted `json:"mounts"`
	RootError   string           `json:"root_error,omitempty"`
	OS          OS               `json:"os"`
	Arch        string           `json:"arch"`
	Kernels     []kernel.Kernel  `json:"kernels"`
	Init        string           `json:"init"`
	Boot        *Boot            `json:"boot,omitempty"`
	Warnings    []string         `json:"warnings"`
}

// TableReport is the partition table.
type TableReport struct {
	Scheme     part.Scheme      `json:"scheme"`
	DiskID     string           `json:"disk_id"`
	SectorSize int              `json:"sector_size_bytes,string"`
	Partitions []part.Partition `json:"partitions"`
}

// VGReport is a volume group.
type VGReport struct {
	Name string   `json:"name"`
	LVs  []string `json:"logical_volumes"`
}

// VolumeReport is a volume and what it holds.
type VolumeReport struct {
	Name   string `json:"name"`
	Size   int64  `json:"size_bytes,string"`
	FSType string `json:"fstype"`
	Label  string `json:"label,omitempty"`
	UUID   string `json:"uuid,omitempty"`
}

// Inspect gathers everything inspect reports.
func (g *Guest) Inspect() *Report {
	r := &Report{Name: g.Name, Mounts: g.Mounts, Warnings: append([]string{}, g.Warnings...), Kernels: []kernel.Kernel{}}
	if g.Image != nil {
		r.Format, r.VirtualSize = g.Image.Format, g.Image.Disk.Size()
		t := g.Layout.Table
		r.Table = &TableReport{Scheme: t.Scheme, DiskID: t.DiskID, SectorSize: t.SectorSize, Partitions: t.Partitions}
		for _, vg := range g.Layout.VGs {
			vr := VGReport{Name: vg.Name}
			for _, lv := range vg.LVs {
				vr.LVs = append(vr.LVs, lv.Name)
			}
			r.VGs = append(r.VGs, vr)
		}
		for _, v := range g.Layout.Volumes {
			r.Volumes = append(r.Volumes, VolumeReport{Name: v.Name, Size: v.Size, FSType: v.FS.Type, Label: v.FS.Label, UUID: v.FS.UUID})
		}
		boot := g.DetectBoot()
		r.Boot = &boot
	}
	if g.RootErr != nil {
		r.RootError = g.RootErr.Error()
		return r
	}
	r.OS = DetectOS(g.Root)
	r.Arch, _ = DetectArch(g.Root)
	kernels, err := kernel.InstalledKernels(g.Root)
	if err != nil {
		r.Warnings = append(r.Warnings, "kernels: "+err.Error())
	}
	r.Kernels = append(r.Kernels, kernels...)
	r.Init = DetectInit(g.Root)
	return r
}

package diskimage

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/vhdprep/vhdprep/ova"
	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/vdi"
	"github.com/vhdprep/vhdprep/vhd"
	"github.com/vhdprep/vhdprep/vhdx"
	"github.com/vhdprep/vhdprep/vmdk"
)

// Info describes an image file's container.
type Info struct {
	Path        string      `json:"image"`
	Format      Format      `json:"format"`
	FileSize    int64       `json:"file_size_bytes,string"`
	VirtualSize int64       `json:"virtual_size_bytes,string"`
	MiBAligned  bool        `json:"mib_aligned"`
	Footer      *FooterInfo `json:"footer,omitempty"`
	// VDI is a VDI image's header.
	VDI *vdi.Info `json:"vdi,omitempty"`
	// VHDX is a VHDX image's headers and metadata.
	VHDX *vhdx.Info `json:"vhdx,omitempty"`
	// VMDK is a VMDK image's descriptor and extents.
	VMDK *vmdk.Info `json:"vmdk,omitempty"`
	// OVA is an OVA's disks, the one read, and its VMDK.
	OVA *ova.Info `json:"ova,omitempty"`
	// Valid is true when Azure takes the file as it is (AzureVerdict);
	// Problems are what it objects to, Warnings what it takes but some
	// readers or VMs will not, each with its fix.
	Valid    bool     `json:"valid_for_azure"`
	Problems []string `json:"problems"`
	Warnings []string `json:"warnings"`
}

// FooterInfo is every field of a VHD footer, decoded.
type FooterInfo struct {
	Features       uint32    `json:"features"`
	FormatVersion  string    `json:"format_version"`
	DataOffset     uint64    `json:"data_offset_bytes,string"`
	Timestamp      time.Time `json:"timestamp"`
	CreatorApp     string    `json:"creator_application"`
	CreatorVersion string    `json:"creator_version"`
	CreatorHostOS  string    `json:"creator_host_os"`
	OriginalSize   int64     `json:"original_size_bytes,string"`
	CurrentSize    int64     `json:"current_size_bytes,string"`
	Cylinders      uint16    `json:"cylinders"`
	Heads          uint8     `json:"heads"`
	SectorsPerTrk  uint8     `json:"sectors_per_track"`
	GeometrySize   int64     `json:"geometry_size_bytes,string"`
	QemuSize       int64     `json:"qemu_size_bytes,string"`
	DiskType       string    `json:"disk_type"`
	Checksum       string    `json:"checksum"`
	UniqueID       string    `json:"unique_id"`
	SavedState     bool      `json:"saved_state"`
}

// Inspect opens path and describes its container: format, sizes, every VHD
// footer field, the other formats' own header fields and Azure's verdict. bootsGen2 tells, for a disk above
// 2 TiB, whether it boots through UEFI; nil when the caller cannot tell.
func Inspect(path string, bootsGen2 func() (bool, string)) (*Info, error) {
	im, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	info := &Info{
		Path:        path,
		Format:      im.Format,
		FileSize:    im.FileSize,
		VirtualSize: im.Disk.Size(),
		MiBAligned:  raw.IsMiBAligned(im.Disk.Size()),
		Problems:    []string{},
		Warnings:    []string{},
	}
	if im.Footer != nil {
		info.Footer = describeFooter(im.Footer)
	}
	if d, ok := im.Disk.(*vdi.Image); ok {
		vi := d.Info()
		info.VDI = &vi
	}
	if d, ok := im.Disk.(*vhdx.Image); ok {
		vi := d.Info()
		info.VHDX = &vi
	}
	if d, ok := im.Disk.(*vmdk.Image); ok {
		vi := d.Info()
		info.VMDK = &vi
	}
	if d, ok := im.Disk.(*ova.Image); ok {
		oi := d.Info()
		info.OVA = &oi
	}
	verdict := AzureVerdict(im.Container(bootsGen2))
	for _, p := range verdict {
		if p.Warning {
			info.Warnings = append(info.Warnings, p.String())
		} else {
			info.Problems = append(info.Problems, p.String())
		}
	}
	info.Valid = verdict.Accepted()
	return info, nil
}

func describeFooter(f *vhd.Footer) *FooterInfo {
	return &FooterInfo{
		Features:       f.Features,
		FormatVersion:  fmt.Sprintf("%d.%d", f.FormatVersion>>16, f.FormatVersion&0xffff),
		DataOffset:     f.DataOffset,
		Timestamp:      f.Timestamp.UTC(),
		CreatorApp:     f.CreatorApp,
		CreatorVersion: fmt.Sprintf("%d.%d", f.CreatorVersion>>16, f.CreatorVersion&0xffff),
		CreatorHostOS:  f.CreatorHostOS,
		OriginalSize:   f.OriginalSize,
		CurrentSize:    f.CurrentSize,
		Cylinders:      f.Geometry.Cylinders,
		Heads:          f.Geometry.Heads,
		SectorsPerTrk:  f.Geometry.SectorsPerTrack,
		GeometrySize:   f.Geometry.Size(),
		QemuSize:       f.QemuSize(),
		DiskType:       f.DiskType.String(),
		Checksum:       fmt.Sprintf("%08x", f.Checksum),
		UniqueID:       formatUUID(f.UniqueID),
		SavedState:     f.SavedState,
	}
}

func formatUUID(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

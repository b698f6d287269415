package diskimage

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/vhd"
)

// Info describes an image file's container.
type Info struct {
	Path        string      `json:"path"`
	Format      Format      `json:"format"`
	FileSize    int64       `json:"file_size"`
	VirtualSize int64       `json:"virtual_size"`
	MiBAligned  bool        `json:"mib_aligned"`
	Footer      *FooterInfo `json:"footer,omitempty"`
	// Valid is true when Azure would take the file as it is: a valid fixed
	// VHD whose virtual size is a whole MiB.
	Valid    bool     `json:"valid_for_azure"`
	Problems []string `json:"problems"`
}

// FooterInfo is every field of a VHD footer, decoded.
type FooterInfo struct {
	Features       uint32    `json:"features"`
	FormatVersion  string    `json:"format_version"`
	DataOffset     uint64    `json:"data_offset"`
	Timestamp      time.Time `json:"timestamp"`
	CreatorApp     string    `json:"creator_application"`
	CreatorVersion string    `json:"creator_version"`
	CreatorHostOS  string    `json:"creator_host_os"`
	OriginalSize   int64     `json:"original_size"`
	CurrentSize    int64     `json:"current_size"`
	Cylinders      uint16    `json:"cylinders"`
	Heads          uint8     `json:"heads"`
	SectorsPerTrk  uint8     `json:"sectors_per_track"`
	GeometrySize   int64     `json:"geometry_size"`
	QemuSize       int64     `json:"qemu_size"`
	DiskType       string    `json:"disk_type"`
	Checksum       string    `json:"checksum"`
	UniqueID       string    `json:"unique_id"`
	SavedState     bool      `json:"saved_state"`
}

// Inspect opens path and describes its container: format, sizes, every VHD
// footer field and what Azure would object to.
func Inspect(path string) (*Info, error) {
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
	}
	if im.Footer != nil {
		info.Footer = describeFooter(im.Footer)
		for _, err := range im.Footer.Validate() {
			info.Problems = append(info.Problems, err.Error())
		}
	}
	switch im.Format {
	case VHDFixed:
		if im.Footer.CurrentSize != im.Disk.Size() {
			info.Problems = append(info.Problems, fmt.Sprintf("footer says %d bytes but the file holds %d; run 'vhdprep resize --align'", im.Footer.CurrentSize, im.Disk.Size()))
		}
	default:
		info.Problems = append(info.Problems, fmt.Sprintf("Azure takes only fixed VHDs and this is %s; run 'vhdprep convert %s disk.vhd'", im.Format, path))
	}
	if !info.MiBAligned {
		info.Problems = append(info.Problems, fmt.Sprintf("virtual size %d is not a whole number of MiB; run 'vhdprep resize --align'", im.Disk.Size()))
	}
	if im.Footer != nil && im.Footer.QemuSize() != im.Footer.CurrentSize {
		info.Problems = append(info.Problems, fmt.Sprintf("qemu-img and Virtual PC will see %d bytes (from the CHS geometry), not %d; run 'vhdprep convert' to rewrite the footer", im.Footer.QemuSize(), im.Footer.CurrentSize))
	}
	info.Valid = len(info.Problems) == 0
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

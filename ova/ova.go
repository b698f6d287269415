// Package ova opens the disk inside an OVA, the tar of an OVF descriptor
// and its disks that vSphere, VMware Workstation and VirtualBox export:
// the first disk the OVF's DiskSection names, a VMDK (streamOptimized, as
// exports write it) read where it lies in the tar, never extracted.
package ova

import (
	"archive/tar"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/vmdk"
)

const (
	// tarMagicAt is where a ustar header says "ustar"; both POSIX and
	// GNU tar write it.
	tarMagicAt = 257
	tarMagic   = "ustar"
	// maxOVF bounds the descriptor read: an OVF is a few KiB of XML.
	maxOVF = 4 << 20
)

// Errors.
var (
	ErrNotOVA      = errors.New("not an OVA (a tar holding an .ovf)")
	ErrCorrupt     = errors.New("corrupt OVA")
	ErrUnsupported = errors.New("unsupported OVA")
)

// Info says what the OVA holds and which disk was opened.
type Info struct {
	OVF    string    `json:"ovf"` // the descriptor's name in the tar
	Disks  []Disk    `json:"disks"`
	Opened string    `json:"opened"` // the file of the disk read: the first
	VMDK   vmdk.Info `json:"vmdk"`
}

// Disk is a disk the OVF names.
type Disk struct {
	ID       string `json:"id"`
	File     string `json:"file"`
	Format   string `json:"format"`
	Capacity string `json:"capacity"` // in the OVF's own allocation units
}

// Image is the first disk of an OVA. It implements raw.Disk through the
// VMDK it embeds.
type Image struct {
	*vmdk.Image
	info Info
}

// Detect tells whether a file's first 512 bytes are a tar's. Every tar is
// taken for an OVA, so that one without an OVF is refused as such rather
// than read as a raw disk; no disk has "ustar" where a tar header has it.
func Detect(head []byte) bool {
	return len(head) >= tarMagicAt+len(tarMagic) && string(head[tarMagicAt:tarMagicAt+len(tarMagic)]) == tarMagic
}

// envelope is what vhdprep reads of an OVF: its files and its disks.
// Attributes match whatever prefix the OVF's namespace has.
type envelope struct {
	Files []struct {
		ID          string `xml:"id,attr"`
		Href        string `xml:"href,attr"`
		Compression string `xml:"compression,attr"`
		ChunkSize   int64  `xml:"chunkSize,attr"`
	} `xml:"References>File"`
	Disks []struct {
		ID        string `xml:"diskId,attr"`
		FileRef   string `xml:"fileRef,attr"`
		Format    string `xml:"format,attr"`
		Capacity  string `xml:"capacity,attr"`
		Allocated string `xml:"capacityAllocationUnits,attr"`
	} `xml:"DiskSection>Disk"`
}

// member is a regular file in the tar: where its bytes lie.
type member struct{ off, size int64 }

// Open reads the tar's headers and its OVF, and opens the first disk the
// OVF names.
func Open(r io.ReaderAt, size int64) (*Image, error) {
	members, ovf, err := readTar(r, size)
	if err != nil {
		return nil, err
	}
	m := members[ovf]
	if m.size > maxOVF {
		return nil, fmt.Errorf("%w: the descriptor %s is %d bytes, above the %d read", ErrUnsupported, ovf, m.size, maxOVF)
	}
	text := make([]byte, m.size)
	if err := raw.ReadFull(r, text, m.off); err != nil {
		return nil, fmt.Errorf("reading %s: %w", ovf, err)
	}
	var env envelope
	if err := xml.Unmarshal(text, &env); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, ovf, err)
	}
	info := Info{OVF: ovf}
	files := map[string]int{}
	for i, f := range env.Files {
		files[f.ID] = i
	}
	for _, d := range env.Disks {
		disk := Disk{ID: d.ID, Format: d.Format, Capacity: d.Capacity}
		if d.Allocated != "" {
			disk.Capacity += " " + d.Allocated
		}
		if i, ok := files[d.FileRef]; ok {
			disk.File = env.Files[i].Href
		}
		info.Disks = append(info.Disks, disk)
	}
	if len(info.Disks) == 0 || info.Disks[0].File == "" {
		return nil, fmt.Errorf("%w: %s names no disk file", ErrCorrupt, ovf)
	}
	first := env.Files[files[env.Disks[0].FileRef]]
	info.Opened = first.Href
	switch {
	case first.Compression != "" && first.Compression != "identity":
		return nil, fmt.Errorf("%w: disk %s is %s-compressed inside the OVA; extract it (tar xf), decompress it and convert the .vmdk", ErrUnsupported, first.Href, first.Compression)
	case first.ChunkSize != 0:
		return nil, fmt.Errorf("%w: disk %s is split in chunks of %d bytes; unpack the OVA and join them first (cat %s.0* > %s)", ErrUnsupported, first.Href, first.ChunkSize, first.Href, first.Href)
	}
	dm, ok := members[path.Clean(first.Href)]
	if !ok {
		return nil, fmt.Errorf("%w: the OVF's first disk, %s, is not in the tar", ErrCorrupt, first.Href)
	}
	d, err := vmdk.Open(io.NewSectionReader(r, dm.off, dm.size), dm.size, nil)
	if err != nil {
		return nil, fmt.Errorf("disk %s in the OVA: %w", first.Href, err)
	}
	info.VMDK = d.Info()
	return &Image{Image: d, info: info}, nil
}

// readTar lists the tar's regular files and finds its OVF.
func readTar(r io.ReaderAt, size int64) (map[string]member, string, error) {
	sr := io.NewSectionReader(r, 0, size)
	tr := tar.NewReader(sr)
	members := map[string]member{}
	ovf := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if len(members) == 0 {
				return nil, "", ErrNotOVA
			}
			return nil, "", fmt.Errorf("%w: reading the tar: %v", ErrCorrupt, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		// A sparse member's bytes are not where they lie in the tar;
		// no exporter writes one.
		sparse := false
		for k := range h.PAXRecords {
			sparse = sparse || strings.HasPrefix(k, "GNU.sparse.")
		}
		if sparse {
			continue
		}
		// After the header the reader stands at the member's data.
		off, err := sr.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, "", err
		}
		if h.Size > size-off {
			return nil, "", fmt.Errorf("%w: %s holds %d bytes of its %d (truncated?)", ErrCorrupt, h.Name, size-off, h.Size)
		}
		name := path.Clean(h.Name)
		members[name] = member{off: off, size: h.Size}
		if ovf == "" && strings.HasSuffix(strings.ToLower(name), ".ovf") {
			ovf = name
		}
	}
	if ovf == "" {
		return nil, "", fmt.Errorf("%w: the tar holds no .ovf; extract the disk image from it (tar xf) and convert that", ErrNotOVA)
	}
	return members, ovf, nil
}

// Info says what the OVA holds, which disk was opened and that disk's
// VMDK fields. It stands in for the embedded VMDK's own Info.
func (im *Image) Info() Info { return im.info }

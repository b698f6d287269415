// Package part reads partition tables: MBR with its extended/logical (EBR)
// chain, and GPT with its header and entry-array CRCs and backup header.
// It also moves a GPT's backup structures to a disk's new end after a
// resize. Input is untrusted: damaged tables give partial results with
// warnings, never panics or unbounded work.
package part

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Scheme is a partitioning scheme.
type Scheme string

// Schemes.
const (
	SchemeNone Scheme = "none"
	SchemeMBR  Scheme = "mbr"
	SchemeGPT  Scheme = "gpt"
)

// Errors.
var (
	ErrCorrupt = errors.New("corrupt partition table")
	ErrNoGPT   = errors.New("no valid GPT")
	// ErrTooSmall is returned by MoveGPTBackup for a size that cannot hold the table.
	ErrTooSmall = errors.New("disk too small for its partition table")
)

// Table is a disk's partition table.
type Table struct {
	Scheme     Scheme
	SectorSize int
	// DiskID is the MBR disk signature as 8 hex digits, or the GPT disk GUID.
	DiskID string
	// Partitions in table order; logical partitions are numbered from 5, as
	// Linux names them.
	Partitions []Partition
	// Protective is set for a GPT disk's protective MBR; Hybrid when that
	// MBR lists partitions besides the protective one.
	Protective bool
	Hybrid     bool
	// BackupUsed is set when the primary GPT was damaged and the backup
	// was read instead. BackupMisplaced is set when the primary points at
	// a backup that is not at the disk's last sector (the disk was resized
	// without moving it), BackupDamaged when the backup there is unreadable.
	BackupUsed      bool
	BackupMisplaced bool
	BackupDamaged   bool
	// BackupSize is how many bytes a GPT's backup entries and header take
	// at the end of the disk.
	BackupSize int64
	// Warnings list what is wrong but did not stop reading: a damaged EBR
	// chain, a partition past the disk's end, a misplaced backup GPT.
	Warnings []string
}

// Partition is one partition.
type Partition struct {
	Number int   `json:"number"`
	Start  int64 `json:"start_bytes,string"`
	Size   int64 `json:"size_bytes,string"`
	// Type is the GPT type GUID (lower case) or the MBR type as "0x83".
	Type       string `json:"type"`
	TypeName   string `json:"type_name"`
	Name       string `json:"name"`              // GPT partition name
	UUID       string `json:"uuid"`              // GPT unique GUID, or the MBR PARTUUID "<signature>-<NN>" as blkid prints it
	Bootable   bool   `json:"bootable"`          // MBR active flag
	Attributes uint64 `json:"attributes,string"` // GPT attributes
	Logical    bool   `json:"logical"`
}

// End is the offset one past the partition's last byte.
func (p Partition) End() int64 { return p.Start + p.Size }

// IsSwap tells whether the partition is typed as Linux swap.
func (p Partition) IsSwap() bool { return p.Type == "0x82" || p.Type == guidLinuxSwap }

// IsLVM tells whether the partition is typed as an LVM physical volume.
func (p Partition) IsLVM() bool { return p.Type == "0x8e" || p.Type == guidLinuxLVM }

// IsESP tells whether the partition is an EFI system partition.
func (p Partition) IsESP() bool { return p.Type == "0xef" || p.Type == guidESP }

// IsBIOSBoot tells whether the partition is a GRUB BIOS boot partition.
func (p Partition) IsBIOSBoot() bool { return p.Type == guidBIOSBoot }

// IsExtended tells whether the partition is an MBR extended partition.
func (p Partition) IsExtended() bool { return isExtendedType(p.Type) }

// End is the end of the last partition: how far a disk may shrink.
func (t *Table) End() int64 {
	var end int64
	for _, p := range t.Partitions {
		end = max(end, p.End())
	}
	return end
}

// Read reads a disk's partition table. A disk with none gives SchemeNone,
// not an error.
func Read(r io.ReaderAt, size int64) (*Table, error) {
	mbr, err := readMBR(r, size)
	if err != nil {
		return nil, err
	}
	if mbr == nil {
		// No MBR signature: a GPT without a protective MBR is still a GPT.
		if t, err := readGPT(r, size); err == nil {
			t.Warnings = append(t.Warnings, "the GPT has no protective MBR")
			return t, nil
		}
		return &Table{Scheme: SchemeNone, SectorSize: 512}, nil
	}
	if !mbr.protective {
		return mbr.table, nil
	}
	t, err := readGPT(r, size)
	if err != nil {
		return nil, fmt.Errorf("the protective MBR says GPT, but %w; repair the table (gdisk's recovery menu) or rewrite it with sfdisk", err)
	}
	t.Protective = true
	t.Hybrid = len(mbr.table.Partitions) > 0
	return t, nil
}

func (t *Table) warnf(format string, args ...any) {
	t.Warnings = append(t.Warnings, fmt.Sprintf(format, args...))
}

// checkBounds warns about partitions that reach past the disk's end, that
// overlap, and logical partitions outside their extended partition.
func (t *Table) checkBounds(size int64) {
	var ext *Partition
	var data []Partition
	for i, p := range t.Partitions {
		if p.End() > size {
			t.warnf("partition %d (%d bytes at %d) ends %d bytes past the end of the disk", p.Number, p.Size, p.Start, p.End()-size)
		}
		if p.IsExtended() {
			ext = &t.Partitions[i]
			continue
		}
		if p.Logical && ext != nil && (p.Start < ext.Start || p.End() > ext.End()) {
			t.warnf("logical partition %d lies outside extended partition %d", p.Number, ext.Number)
		}
		data = append(data, p)
	}
	slices.SortFunc(data, func(a, b Partition) int { return cmp.Compare(a.Start, b.Start) })
	// reach is the partition reaching furthest among those starting earlier.
	for i, reach := 1, 0; i < len(data); i++ {
		if data[i].Start < data[reach].End() {
			t.warnf("partitions %d and %d overlap", data[reach].Number, data[i].Number)
		}
		if data[i].End() > data[reach].End() {
			reach = i
		}
	}
}

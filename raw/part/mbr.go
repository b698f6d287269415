package part

import (
	"encoding/binary"
	"fmt"
	"io"
)

// MBR layout.
const (
	mbrSize          = 512
	mbrSignatureOff  = 510
	mbrDiskIDOff     = 440
	mbrEntriesOff    = 446
	mbrEntrySize     = 16
	mbrTypeProtect   = 0xee
	mbrActive        = 0x80
	maxLogicals      = 128 // far above what any tool makes; bounds a looping chain
	firstLogicalNum  = 5
	mbrSectorSize    = 512
	mbrPrimaryCount  = 4
	mbrBootSignature = 0xaa55
)

type mbrResult struct {
	table      *Table
	protective bool
}

type mbrEntry struct {
	status byte
	typ    byte
	start  uint32 // LBA
	count  uint32 // sectors
}

func parseMBREntries(sector []byte) [mbrPrimaryCount]mbrEntry {
	var es [mbrPrimaryCount]mbrEntry
	for i := range es {
		b := sector[mbrEntriesOff+i*mbrEntrySize:]
		es[i] = mbrEntry{
			status: b[0],
			typ:    b[4],
			start:  binary.LittleEndian.Uint32(b[8:]),
			count:  binary.LittleEndian.Uint32(b[12:]),
		}
	}
	return es
}

// readMBR reads sector 0; nil when it has no boot signature.
func readMBR(r io.ReaderAt, size int64) (*mbrResult, error) {
	if size < mbrSize {
		return nil, nil
	}
	sector := make([]byte, mbrSize)
	if _, err := r.ReadAt(sector, 0); err != nil {
		return nil, fmt.Errorf("reading the MBR: %w", err)
	}
	if binary.LittleEndian.Uint16(sector[mbrSignatureOff:]) != mbrBootSignature {
		return nil, nil
	}
	es := parseMBREntries(sector)
	if isVolumeBootSector(sector, es) {
		return nil, nil
	}
	sig := binary.LittleEndian.Uint32(sector[mbrDiskIDOff:])
	t := &Table{Scheme: SchemeMBR, SectorSize: mbrSectorSize, DiskID: fmt.Sprintf("%08x", sig)}
	res := &mbrResult{table: t}
	nextLogical := firstLogicalNum
	for i, e := range es {
		switch {
		case e.typ == 0 || e.count == 0:
			continue
		case e.typ == mbrTypeProtect:
			res.protective = true
			continue
		}
		p := Partition{
			Number:   i + 1,
			Start:    int64(e.start) * mbrSectorSize,
			Size:     int64(e.count) * mbrSectorSize,
			Type:     mbrType(e.typ),
			TypeName: mbrTypeName(e.typ),
			Bootable: e.status == mbrActive,
		}
		t.Partitions = append(t.Partitions, p)
		if p.IsExtended() {
			nextLogical = readLogicals(r, size, t, p, nextLogical)
		}
	}
	for i := range t.Partitions {
		t.Partitions[i].UUID = fmt.Sprintf("%s-%02d", t.DiskID, t.Partitions[i].Number)
	}
	t.checkBounds(size)
	return res, nil
}

// isVolumeBootSector tells a FAT, exFAT or NTFS boot sector of a
// filesystem written to the whole disk from an MBR: it too ends in 55 AA.
// As in Linux, entries with status bytes other than 0 and 0x80 are no MBR;
// as in blkid, a table without entries in a sector naming such a filesystem
// is none either.
func isVolumeBootSector(sector []byte, es [mbrPrimaryCount]mbrEntry) bool {
	empty := true
	for _, e := range es {
		if e.status != 0 && e.status != mbrActive {
			return true
		}
		empty = empty && e.typ == 0
	}
	if !empty {
		return false
	}
	oem := string(sector[3:11])
	return oem == "NTFS    " || oem == "EXFAT   " ||
		string(sector[0x36:0x39]) == "FAT" || string(sector[0x52:0x57]) == "FAT32"
}

// readLogicals follows the EBR chain inside an extended partition. Each EBR
// holds one logical partition (start relative to the EBR) and a link to the
// next EBR (relative to the extended partition's start). Logical
// partitions are numbered from n as Linux numbers them: only EBRs that
// hold a partition count, and a second extended partition's logicals go
// on from the first's. It returns the next number.
func readLogicals(r io.ReaderAt, size int64, t *Table, ext Partition, n int) int {
	seen := map[int64]bool{}
	ebr := ext.Start
	sector := make([]byte, mbrSize)
	for links := 0; ; links++ {
		if links >= maxLogicals {
			t.warnf("the extended partition's EBR chain has more than %d links; the rest is ignored", maxLogicals)
			return n
		}
		if seen[ebr] {
			t.warnf("the EBR chain loops back to offset %d; the rest is ignored", ebr)
			return n
		}
		seen[ebr] = true
		if ebr+mbrSize > size {
			t.warnf("an EBR at offset %d lies past the end of the disk", ebr)
			return n
		}
		if _, err := r.ReadAt(sector, ebr); err != nil {
			t.warnf("reading the EBR at offset %d: %v", ebr, err)
			return n
		}
		if binary.LittleEndian.Uint16(sector[mbrSignatureOff:]) != mbrBootSignature {
			t.warnf("the EBR at offset %d has no boot signature; the chain ends there", ebr)
			return n
		}
		es := parseMBREntries(sector)
		if es[0].typ != 0 && es[0].count != 0 {
			t.Partitions = append(t.Partitions, Partition{
				Number:   n,
				Start:    ebr + int64(es[0].start)*mbrSectorSize,
				Size:     int64(es[0].count) * mbrSectorSize,
				Type:     mbrType(es[0].typ),
				TypeName: mbrTypeName(es[0].typ),
				Bootable: es[0].status == mbrActive,
				Logical:  true,
			})
			n++
		}
		if es[1].typ == 0 || es[1].start == 0 {
			return n
		}
		ebr = ext.Start + int64(es[1].start)*mbrSectorSize
	}
}

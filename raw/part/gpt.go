package part

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

// GPT layout.
const (
	gptSignature     = "EFI PART"
	maxLBA           = 1 << 48 // keeps LBA*sector arithmetic far from overflow
	gptHeaderMinSize = 92
	gptEntryMinSize  = 128
	maxGPTEntries    = 4096 // sgdisk allows up to 1024 by default; bound the array
	maxGPTEntrySize  = 4096
)

// gptHeader is a decoded GPT header.
type gptHeader struct {
	raw            []byte // the header's bytes (headerSize long)
	myLBA, altLBA  uint64
	firstUsable    uint64
	lastUsable     uint64
	diskGUID       string
	entriesLBA     uint64
	numEntries     uint32
	entrySize      uint32
	entriesCRC     uint32
	sectorSize     int64
	entriesRawSize int64
}

// readGPT finds a GPT with 512- or 4096-byte sectors and reads it, falling
// back to the backup when the primary is damaged.
func readGPT(r io.ReaderAt, size int64) (*Table, error) {
	var firstErr error
	for _, ss := range []int64{512, 4096} {
		if size < 3*ss {
			continue
		}
		t, err := readGPTWithSectors(r, size, ss)
		if err == nil {
			return t, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("%w: the disk is too small", ErrNoGPT)
	}
	return nil, firstErr
}

func readGPTWithSectors(r io.ReaderAt, size, ss int64) (*Table, error) {
	lastLBA := uint64(size/ss - 1)
	h, entries, primaryErr := readGPTAt(r, size, ss, 1)
	t := &Table{Scheme: SchemeGPT, SectorSize: int(ss)}
	if primaryErr != nil {
		var backupErr error
		h, entries, backupErr = readGPTAt(r, size, ss, lastLBA)
		if backupErr != nil && backupErr.Error() == primaryErr.Error() {
			return nil, fmt.Errorf("%w: both headers: %v", ErrNoGPT, primaryErr)
		}
		if backupErr != nil {
			return nil, fmt.Errorf("%w: primary: %v; backup: %v", ErrNoGPT, primaryErr, backupErr)
		}
		t.BackupUsed = true
		t.warnf("the primary GPT is damaged (%v); the backup at the last sector was used", primaryErr)
	} else if h.altLBA != lastLBA {
		t.BackupMisplaced = true
		t.warnf("the backup GPT header is at LBA %d, not at the disk's last LBA %d: the disk was resized without moving it (vhdprep resize --align moves it)", h.altLBA, lastLBA)
	} else if _, _, err := readGPTAt(r, size, ss, lastLBA); err != nil {
		t.BackupDamaged = true
		t.warnf("the backup GPT is damaged: %v", err)
	}
	t.BackupSize = (h.entriesRawSize+ss-1)/ss*ss + ss
	t.DiskID = h.diskGUID
	t.Partitions = entries
	t.checkBounds(size)
	for _, p := range t.Partitions {
		if uint64(p.Start/ss) < h.firstUsable || uint64((p.End()-1)/ss) > h.lastUsable {
			t.warnf("partition %d lies outside the usable LBAs %d-%d", p.Number, h.firstUsable, h.lastUsable)
		}
	}
	return t, nil
}

// readGPTAt reads and checks the header at lba and its entry array.
func readGPTAt(r io.ReaderAt, size, ss int64, lba uint64) (*gptHeader, []Partition, error) {
	h, err := readGPTHeader(r, size, ss, lba)
	if err != nil {
		return nil, nil, err
	}
	array := make([]byte, h.entriesRawSize)
	if _, err := r.ReadAt(array, int64(h.entriesLBA)*ss); err != nil {
		return nil, nil, fmt.Errorf("reading the partition entries: %w", err)
	}
	if got := crc32.ChecksumIEEE(array); got != h.entriesCRC {
		return nil, nil, fmt.Errorf("partition entry array CRC %08x, header says %08x", got, h.entriesCRC)
	}
	var parts []Partition
	for i := 0; i < int(h.numEntries); i++ {
		e := array[i*int(h.entrySize):]
		typ := guidString(e[0:16])
		if typ == "00000000-0000-0000-0000-000000000000" {
			continue
		}
		first, last := binary.LittleEndian.Uint64(e[32:]), binary.LittleEndian.Uint64(e[40:])
		if last < first || last > maxLBA {
			return nil, nil, fmt.Errorf("partition %d has LBAs %d-%d", i+1, first, last)
		}
		parts = append(parts, Partition{
			Number:     i + 1,
			Start:      int64(first) * ss,
			Size:       int64(last-first+1) * ss,
			Type:       typ,
			TypeName:   gptTypeName(typ),
			UUID:       guidString(e[16:32]),
			Attributes: binary.LittleEndian.Uint64(e[48:]),
			Name:       utf16Name(e[56:128]),
		})
	}
	return h, parts, nil
}

func readGPTHeader(r io.ReaderAt, size, ss int64, lba uint64) (*gptHeader, error) {
	if int64(lba) >= size/ss {
		return nil, fmt.Errorf("header LBA %d is past the end of the disk", lba)
	}
	sector := make([]byte, ss)
	if _, err := r.ReadAt(sector, int64(lba)*ss); err != nil {
		return nil, fmt.Errorf("reading the GPT header at LBA %d: %w", lba, err)
	}
	if string(sector[:8]) != gptSignature {
		return nil, fmt.Errorf("no GPT signature at LBA %d", lba)
	}
	le := binary.LittleEndian
	hsize := le.Uint32(sector[12:])
	if hsize < gptHeaderMinSize || int64(hsize) > ss {
		return nil, fmt.Errorf("GPT header size %d", hsize)
	}
	raw := append([]byte{}, sector[:hsize]...)
	if got, want := headerCRC(raw), le.Uint32(raw[16:]); got != want {
		return nil, fmt.Errorf("GPT header CRC %08x, header says %08x", got, want)
	}
	h := &gptHeader{
		raw:         raw,
		myLBA:       le.Uint64(raw[24:]),
		altLBA:      le.Uint64(raw[32:]),
		firstUsable: le.Uint64(raw[40:]),
		lastUsable:  le.Uint64(raw[48:]),
		diskGUID:    guidString(raw[56:72]),
		entriesLBA:  le.Uint64(raw[72:]),
		numEntries:  le.Uint32(raw[80:]),
		entrySize:   le.Uint32(raw[84:]),
		entriesCRC:  le.Uint32(raw[88:]),
		sectorSize:  ss,
	}
	if h.myLBA != lba {
		return nil, fmt.Errorf("GPT header at LBA %d says it is at LBA %d", lba, h.myLBA)
	}
	if h.numEntries > maxGPTEntries {
		return nil, fmt.Errorf("GPT entry array of %d entries, more than the %d vhdprep reads (sgdisk makes 128: sgdisk --resize-table=128 shrinks it)", h.numEntries, maxGPTEntries)
	}
	if h.entrySize < gptEntryMinSize || h.entrySize > maxGPTEntrySize || h.entrySize%gptEntryMinSize != 0 {
		return nil, fmt.Errorf("GPT entry array of %d entries of %d bytes", h.numEntries, h.entrySize)
	}
	h.entriesRawSize = int64(h.numEntries) * int64(h.entrySize)
	if h.entriesLBA > uint64(size/ss) || int64(h.entriesLBA)*ss+h.entriesRawSize > size {
		return nil, fmt.Errorf("GPT entry array at LBA %d is past the end of the disk", h.entriesLBA)
	}
	return h, nil
}

// headerCRC is the CRC32 of a header with its CRC field zeroed.
func headerCRC(h []byte) uint32 {
	c := append([]byte{}, h...)
	binary.LittleEndian.PutUint32(c[16:], 0)
	return crc32.ChecksumIEEE(c)
}

// guidString prints a GUID stored in GPT's mixed-endian form.
func guidString(b []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(b[0:]), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16])
}

func utf16Name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return strings.TrimSpace(string(utf16.Decode(u)))
}

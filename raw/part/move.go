package part

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// ReadWriterAt is a disk that can be changed in place.
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// MoveGPTBackup rewrites a GPT for a disk that is now newSize bytes: the
// backup entry array and header go to the new last sectors, and the primary
// header's alternate and last usable LBAs, its CRC and the protective MBR's
// size follow, as `sgdisk -e` does. The primary GPT must be intact. Disks
// without a GPT are left alone.
func MoveGPTBackup(rw ReadWriterAt, newSize int64) error {
	t, err := Read(rw, newSize)
	if err != nil {
		return err
	}
	if t.Scheme != SchemeGPT {
		return nil
	}
	if t.BackupUsed {
		return fmt.Errorf("%w: the primary GPT is damaged; rebuild it from the backup first (gdisk's recovery menu: b, c, then w)", ErrCorrupt)
	}
	ss := int64(t.SectorSize)
	h, err := readGPTHeader(rw, newSize, ss, 1)
	if err != nil {
		return err
	}
	array := make([]byte, h.entriesRawSize)
	if _, err := rw.ReadAt(array, int64(h.entriesLBA)*ss); err != nil {
		return fmt.Errorf("reading the GPT entries: %w", err)
	}
	arraySectors := (h.entriesRawSize + ss - 1) / ss
	primaryEnd := int64(h.entriesLBA) + arraySectors // first LBA after the primary array
	if newSize/ss < primaryEnd+arraySectors+2 {
		return fmt.Errorf("%w: a %d-byte disk has no room for the backup GPT after the primary one", ErrTooSmall, newSize)
	}
	newLast := uint64(newSize/ss - 1)
	backupArrayLBA := newLast - uint64(arraySectors)
	newLastUsable := backupArrayLBA - 1
	if newLastUsable < h.firstUsable {
		return fmt.Errorf("%w: a %d-byte disk ends before the GPT's first usable LBA %d", ErrTooSmall, newSize, h.firstUsable)
	}
	for _, p := range t.Partitions {
		if uint64((p.End()-1)/ss) > newLastUsable {
			return fmt.Errorf("%w: partition %d ends at LBA %d, past the last usable LBA %d of a %d-byte disk; keep the disk at least %d bytes", ErrTooSmall, p.Number, (p.End()-1)/ss, newLastUsable, newSize, p.End()+(arraySectors+1)*ss)
		}
	}

	le := binary.LittleEndian
	primary := append([]byte{}, h.raw...)
	le.PutUint64(primary[32:], newLast)
	le.PutUint64(primary[48:], newLastUsable)
	le.PutUint32(primary[16:], headerCRC(primary))

	backup := append([]byte{}, primary...)
	le.PutUint64(backup[24:], newLast)
	le.PutUint64(backup[32:], 1)
	le.PutUint64(backup[72:], backupArrayLBA)
	le.PutUint32(backup[88:], crc32.ChecksumIEEE(array))
	le.PutUint32(backup[16:], headerCRC(backup))

	// Backup first: until the primary points at it, readers use the old one.
	if _, err := rw.WriteAt(array, int64(backupArrayLBA)*ss); err != nil {
		return fmt.Errorf("writing the backup GPT entries: %w", err)
	}
	if _, err := rw.WriteAt(padSector(backup, ss), int64(newLast)*ss); err != nil {
		return fmt.Errorf("writing the backup GPT header: %w", err)
	}
	if _, err := rw.WriteAt(padSector(primary, ss), ss); err != nil {
		return fmt.Errorf("writing the primary GPT header: %w", err)
	}
	if t.Hybrid {
		// A hybrid MBR's 0xEE entry covers only the GPT's own sectors,
		// not the disk; sgdisk -e leaves it alone too.
		return nil
	}
	return resizeProtectiveMBR(rw, newSize/ss)
}

func padSector(b []byte, ss int64) []byte {
	s := make([]byte, ss)
	copy(s, b)
	return s
}

// resizeProtectiveMBR sets the 0xEE entry to cover the disk (capped at the
// 32-bit maximum, as the UEFI specification says).
func resizeProtectiveMBR(rw ReadWriterAt, sectors int64) error {
	mbr := make([]byte, mbrSize)
	if _, err := rw.ReadAt(mbr, 0); err != nil {
		return fmt.Errorf("reading the protective MBR: %w", err)
	}
	for i := 0; i < mbrPrimaryCount; i++ {
		e := mbr[mbrEntriesOff+i*mbrEntrySize:]
		if e[4] != mbrTypeProtect {
			continue
		}
		binary.LittleEndian.PutUint32(e[12:], uint32(min(sectors-1, 0xffffffff)))
		if _, err := rw.WriteAt(mbr, 0); err != nil {
			return fmt.Errorf("writing the protective MBR: %w", err)
		}
		return nil
	}
	return nil
}

// Package probe identifies what a byte range holds (a filesystem, swap, an
// LVM physical volume, LUKS) by its signature, and reads its label and
// UUID, using blkid's names so results compare with `blkid -p`.
package probe

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// Types, as blkid names them.
const (
	Ext2  = "ext2"
	Ext3  = "ext3"
	Ext4  = "ext4"
	XFS   = "xfs"
	Btrfs = "btrfs"
	VFAT  = "vfat"
	Swap  = "swap"
	LUKS  = "crypto_LUKS"
	LVM   = "LVM2_member"
	ISO   = "iso9660"
)

// Result is what a signature says.
type Result struct {
	Type    string // "" when nothing is recognized
	Version string
	Label   string
	UUID    string
}

// prober recognizes one type; ok is false when the signature is absent.
type prober func(r io.ReaderAt, size int64) (res Result, ok bool, err error)

// probers run in this order; LVM and LUKS come first because they wrap
// other content, swap last because its signature sits at the end of a page.
var probers = []prober{probeLVM, probeLUKS, probeExt, probeXFS, probeBtrfs, probeVFAT, probeISO, probeSwap}

// Probe identifies the content of a volume of size bytes.
func Probe(r io.ReaderAt, size int64) (Result, error) {
	for _, p := range probers {
		res, ok, err := p(r, size)
		if err != nil {
			return Result{}, err
		}
		if ok {
			return res, nil
		}
	}
	return Result{}, nil
}

// read returns n bytes at off, or nil when the volume is too small.
func read(r io.ReaderAt, size, off int64, n int) ([]byte, error) {
	if off+int64(n) > size {
		return nil, nil
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, off); err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}

// Superblock offsets and flags.
const (
	extSuperOff      = 1024
	extMagic         = 0xef53
	extCompatJournal = 0x4
	// Features ext2/ext3 know; anything else makes it ext4, as blkid decides.
	ext3Incompat = 0x2 | 0x4 | 0x8 | 0x10
	ext3ROCompat = 0x1 | 0x2 | 0x4
)

func probeExt(r io.ReaderAt, size int64) (Result, bool, error) {
	sb, err := read(r, size, extSuperOff, 1024)
	if sb == nil || err != nil || binary.LittleEndian.Uint16(sb[56:]) != extMagic {
		return Result{}, false, err
	}
	le := binary.LittleEndian
	compat, incompat, rocompat := le.Uint32(sb[92:]), le.Uint32(sb[96:]), le.Uint32(sb[100:])
	typ := Ext2
	switch {
	case incompat&^ext3Incompat != 0 || rocompat&^ext3ROCompat != 0:
		typ = Ext4
	case compat&extCompatJournal != 0:
		typ = Ext3
	}
	return Result{Type: typ, Version: "1.0", UUID: uuid(sb[104:120]), Label: cstring(sb[120:136])}, true, nil
}

func probeXFS(r io.ReaderAt, size int64) (Result, bool, error) {
	sb, err := read(r, size, 0, 512)
	if sb == nil || err != nil || string(sb[:4]) != "XFSB" {
		return Result{}, false, err
	}
	version := binary.BigEndian.Uint16(sb[100:]) & 0xf
	return Result{Type: XFS, Version: fmt.Sprint(version), UUID: uuid(sb[32:48]), Label: cstring(sb[108:120])}, true, nil
}

const btrfsSuperOff = 0x10000

func probeBtrfs(r io.ReaderAt, size int64) (Result, bool, error) {
	sb, err := read(r, size, btrfsSuperOff, 0x300)
	if sb == nil || err != nil || string(sb[0x40:0x48]) != "_BHRfS_M" {
		return Result{}, false, err
	}
	return Result{Type: Btrfs, UUID: uuid(sb[0x20:0x30]), Label: cstring(sb[0x12b : 0x12b+256])}, true, nil
}

func probeVFAT(r io.ReaderAt, size int64) (Result, bool, error) {
	bs, err := read(r, size, 0, 512)
	if bs == nil || err != nil || bs[510] != 0x55 || bs[511] != 0xaa {
		return Result{}, false, err
	}
	le := binary.LittleEndian
	bytesPerSector, sectorsPerCluster, fats := le.Uint16(bs[11:]), bs[13], bs[16]
	if bytesPerSector < 512 || bytesPerSector > 4096 || bytesPerSector&(bytesPerSector-1) != 0 || sectorsPerCluster == 0 || fats == 0 || fats > 4 {
		return Result{}, false, nil
	}
	// FAT32 keeps its serial and label after a longer BPB.
	serialOff, labelOff, version := 39, 43, "FAT16"
	if le.Uint16(bs[22:]) == 0 { // sectors per FAT (16-bit) is zero on FAT32
		serialOff, labelOff, version = 67, 71, "FAT32"
	} else if string(bs[54:59]) == "FAT12" {
		version = "FAT12"
	}
	serial := le.Uint32(bs[serialOff:])
	label := strings.TrimRight(string(bs[labelOff:labelOff+11]), " ")
	if label == "NO NAME" {
		label = ""
	}
	return Result{Type: VFAT, Version: version, UUID: fmt.Sprintf("%04X-%04X", serial>>16, serial&0xffff), Label: label}, true, nil
}

const isoDescriptorOff = 32768

func probeISO(r io.ReaderAt, size int64) (Result, bool, error) {
	pvd, err := read(r, size, isoDescriptorOff, 2048)
	if pvd == nil || err != nil || string(pvd[1:6]) != "CD001" {
		return Result{}, false, err
	}
	return Result{Type: ISO, Label: strings.TrimRight(string(pvd[40:72]), " ")}, true, nil
}

// Swap signatures end the first page; pages are 4 KiB on x86 and up to
// 64 KiB on arm64.
var swapPageSizes = []int64{4096, 8192, 16384, 65536}

func probeSwap(r io.ReaderAt, size int64) (Result, bool, error) {
	for _, page := range swapPageSizes {
		sig, err := read(r, size, page-10, 10)
		if err != nil {
			return Result{}, false, err
		}
		if sig == nil || (string(sig) != "SWAPSPACE2" && string(sig) != "SWAP-SPACE") {
			continue
		}
		// Version 0 swap ("SWAP-SPACE", before Linux 2.2) has no UUID or label.
		res := Result{Type: Swap, Version: "0"}
		if string(sig) == "SWAPSPACE2" {
			res.Version = "1"
			hdr, err := read(r, size, 1024, 44)
			if err != nil {
				return Result{}, false, err
			}
			res.UUID, res.Label = uuid(hdr[12:28]), cstring(hdr[28:44])
		}
		return res, true, nil
	}
	return Result{}, false, nil
}

func probeLUKS(r io.ReaderAt, size int64) (Result, bool, error) {
	hdr, err := read(r, size, 0, 208)
	if hdr == nil || err != nil || !bytes.Equal(hdr[:6], []byte("LUKS\xba\xbe")) {
		return Result{}, false, err
	}
	version := binary.BigEndian.Uint16(hdr[6:])
	res := Result{Type: LUKS, Version: fmt.Sprint(version), UUID: cstring(hdr[168:208])}
	if version == 2 {
		res.Label = cstring(hdr[24:72])
	}
	return res, true, nil
}

// LVM's label sits in one of the first four sectors.
const lvmLabelSectors = 4

func probeLVM(r io.ReaderAt, size int64) (Result, bool, error) {
	for s := int64(0); s < lvmLabelSectors; s++ {
		sec, err := read(r, size, s*512, 512)
		if sec == nil || err != nil {
			return Result{}, false, err
		}
		if string(sec[:8]) == "LABELONE" && string(sec[24:32]) == "LVM2 001" {
			res := Result{Type: LVM, Version: "LVM2 001"}
			// The PV header, which starts with the UUID, is where the label says.
			if off := binary.LittleEndian.Uint32(sec[20:]); off >= 32 && off <= 512-32 {
				res.UUID = LVMUUID(string(sec[off : off+32]))
			}
			return res, true, nil
		}
	}
	return Result{}, false, nil
}

// LVMUUID formats LVM's 32-character IDs the way LVM and blkid print them.
func LVMUUID(id string) string {
	if len(id) != 32 {
		return id
	}
	return id[0:6] + "-" + id[6:10] + "-" + id[10:14] + "-" + id[14:18] + "-" + id[18:22] + "-" + id[22:26] + "-" + id[26:32]
}

func uuid(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

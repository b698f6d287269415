package disktest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"unicode/utf16"
)

// The VHDX layout (MS-VHDX), written out here rather than taken from
// package vhdx, so that a wrong constant there shows as a difference from
// qemu-img.
const (
	vhdxMiB       = 1 << 20
	vhdxHeader1   = 64 << 10
	vhdxHeader2   = 128 << 10
	vhdxRegions1  = 192 << 10
	vhdxRegions2  = 256 << 10
	vhdxMetaLen   = 64 << 10 // the metadata table; the items follow it
	vhdxPresent   = 6        // a payload block fully present
	vhdxRequired  = 4        // a metadata item a reader must know
	vhdxVirtual   = 2        // a metadata item of the virtual disk
	vhdxFixedFlag = 1        // file parameters: leave blocks allocated
)

// The GUIDs as the file stores them (the first three fields little endian).
var (
	vhdxBAT         = vhdxGUID(0x2DC27766, 0xF623, 0x4200, 0x9D64115E9BFD4A08)
	vhdxMetadata    = vhdxGUID(0x8B7CA206, 0x4790, 0x4B9A, 0xB8FE575F050F886E)
	vhdxFileParams  = vhdxGUID(0xCAA16737, 0xFA36, 0x4D43, 0xB3B633F0AA44E76B)
	vhdxVirtualSize = vhdxGUID(0x2FA54224, 0xCD1B, 0x4876, 0xB2115DBED83BF4B8)
	vhdxPage83      = vhdxGUID(0xBECA12AB, 0xB2E6, 0x4523, 0x93EFC309E000C746)
	vhdxLogical     = vhdxGUID(0x8141BF1D, 0xA96F, 0x4709, 0xBA47F233A8FAAB5F)
	vhdxPhysical    = vhdxGUID(0xCDA348C7, 0x445D, 0x4471, 0x9CC9E9885251C556)
)

func vhdxGUID(a uint32, b, c uint16, d uint64) []byte {
	g := binary.LittleEndian.AppendUint32(nil, a)
	g = binary.LittleEndian.AppendUint16(g, b)
	g = binary.LittleEndian.AppendUint16(g, c)
	return binary.BigEndian.AppendUint64(g, d)
}

// VHDX writes data, a whole number of 512-byte sectors, as a VHDX with
// blocks of blockSize, as small as the format allows: the 1 MiB header
// section (both headers, the second current, and both region tables), the
// metadata and the BAT each at the next MiB, then the blocks, the last
// stopping where the disk does, and an empty log's region after them,
// past the file's end (an empty log is never read). A dynamic one leaves
// blocks of zeros out; a fixed one has every block.
func VHDX(data []byte, blockSize int64, fixed bool) []byte {
	le := binary.LittleEndian
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	size := int64(len(data))
	blocks := (size + blockSize - 1) / blockSize
	chunkRatio := (1 << 23) * 512 / blockSize
	entries := blocks + (blocks-1)/chunkRatio
	const metaAt, batAt = vhdxMiB, 2 * vhdxMiB
	dataAt := int64(3 * vhdxMiB)

	out := make([]byte, batAt+entries*8)
	copy(out, "vhdxfile")
	for i, c := range utf16.Encode([]rune("disktest")) {
		le.PutUint16(out[8+2*i:], c)
	}
	for _, at := range []int{vhdxRegions1, vhdxRegions2} {
		r := out[at : at+64<<10]
		copy(r, "regi")
		le.PutUint32(r[8:], 2)
		for i, reg := range []struct {
			guid        []byte
			off, length int64
		}{{vhdxBAT, batAt, entries * 8}, {vhdxMetadata, metaAt, vhdxMetaLen + 4096}} {
			e := r[16+32*i:]
			copy(e, reg.guid)
			le.PutUint64(e[16:], uint64(reg.off))
			le.PutUint32(e[24:], uint32(reg.length))
			le.PutUint32(e[28:], 1) // required
		}
		le.PutUint32(r[4:], crc32.Checksum(r, castagnoli))
	}

	m := out[metaAt:]
	copy(m, "metadata")
	params := le.AppendUint32(nil, uint32(blockSize))
	if fixed {
		params = le.AppendUint32(params, vhdxFixedFlag)
	} else {
		params = le.AppendUint32(params, 0)
	}
	items := []struct {
		guid, value []byte
		flags       uint32
	}{
		{vhdxFileParams, params, vhdxRequired},
		{vhdxVirtualSize, le.AppendUint64(nil, uint64(size)), vhdxRequired | vhdxVirtual},
		{vhdxPage83, bytes.Repeat([]byte{0x83}, 16), vhdxRequired | vhdxVirtual},
		{vhdxLogical, le.AppendUint32(nil, 512), vhdxRequired | vhdxVirtual},
		{vhdxPhysical, le.AppendUint32(nil, 4096), vhdxRequired | vhdxVirtual},
	}
	le.PutUint16(m[10:], uint16(len(items)))
	for i, it := range items {
		e := m[32+32*i:]
		off := vhdxMetaLen + 64*i
		copy(e, it.guid)
		le.PutUint32(e[16:], uint32(off))
		le.PutUint32(e[20:], uint32(len(it.value)))
		le.PutUint32(e[24:], it.flags)
		copy(m[off:], it.value)
	}

	for b := range blocks {
		block := data[b*blockSize : min(size, (b+1)*blockSize)]
		if !fixed && len(bytes.Trim(block, "\x00")) == 0 {
			continue
		}
		le.PutUint64(out[batAt+8*(b+b/chunkRatio):], uint64(dataAt)|vhdxPresent)
		out = append(out, make([]byte, dataAt-int64(len(out)))...)
		out = append(out, block...)
		dataAt += blockSize
	}
	for seq, at := range []int{vhdxHeader1, vhdxHeader2} {
		h := out[at : at+4096]
		copy(h, "head")
		le.PutUint64(h[8:], uint64(seq+1))
		h[16], h[32] = 1, 2 // file and data write GUIDs
		le.PutUint16(h[0x42:], 1)
		le.PutUint32(h[0x44:], vhdxMiB) // an empty log, which qemu wants
		le.PutUint64(h[0x48:], uint64(dataAt))
		le.PutUint32(h[4:], crc32.Checksum(h, castagnoli))
	}
	return out
}

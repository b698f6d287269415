package disktest

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
)

// The VMDK layout, written out here rather than taken from package vmdk,
// so that a wrong constant there shows as a difference from qemu-img.
const (
	vmdkSector      = 512
	vmdkMagic       = "KDMV"
	vmdkDescriptor  = "# Disk DescriptorFile"
	vmdkEOLCheck    = "\n \r\n"
	vmdkFlagEOL     = 1 << 0
	vmdkFlagRGD     = 1 << 1
	vmdkFlagZero    = 1 << 2
	vmdkFlagDeflate = 1 << 16
	vmdkFlagMarkers = 1 << 17
	vmdkGDAtEnd     = ^uint64(0)
)

// VMDK writes data, a whole number of sectors, as a hosted sparse
// extent with grains of grainSectors and tables of gtes entries, leaving
// grains of zeros unallocated. A hosted one has its redundant directory
// and tables, then the primary ones, before the grains, as VMware lays
// them out; a stream is written as VMware's exports are: deflated grains
// behind markers, each grain table after its grains, then the directory
// and the footer that names it.
func VMDK(data []byte, grainSectors, gtes int64, stream bool) []byte {
	le := binary.LittleEndian
	grain := grainSectors * vmdkSector
	capacity := int64(len(data)) / vmdkSector
	grains := (capacity + grainSectors - 1) / grainSectors
	nGT := (grains + gtes - 1) / gtes
	secs := func(n int64) int64 { return (n + vmdkSector - 1) / vmdkSector }
	gtSecs, gdSecs := secs(gtes*4), secs(nGT*4)
	var out []byte
	pad := func() { out = append(out, make([]byte, secs(int64(len(out)))*vmdkSector-int64(len(out)))...) }
	at := func() int64 { return int64(len(out)) / vmdkSector }
	grainData := func(g int64) []byte { return data[g*grain : min(int64(len(data)), (g+1)*grain)] }

	h := make([]byte, vmdkSector)
	copy(h, vmdkMagic)
	flags, createType := uint32(vmdkFlagEOL), "monolithicSparse"
	if stream {
		le.PutUint32(h[4:], 3)
		flags |= vmdkFlagDeflate | vmdkFlagMarkers
		le.PutUint64(h[56:], vmdkGDAtEnd)
		le.PutUint16(h[77:], 1) // deflate
		createType = "streamOptimized"
	} else {
		le.PutUint32(h[4:], 1)
		flags |= vmdkFlagRGD
	}
	le.PutUint32(h[8:], flags)
	le.PutUint64(h[12:], uint64(capacity))
	le.PutUint64(h[20:], uint64(grainSectors))
	le.PutUint64(h[28:], 1)
	le.PutUint64(h[36:], 1)
	le.PutUint32(h[44:], uint32(gtes))
	copy(h[73:], vmdkEOLCheck)
	out = append(out, h...)
	out = append(out, fmt.Sprintf("%s\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=%q\n\nRW %d SPARSE \"disk.vmdk\"\n", vmdkDescriptor, createType, capacity)...)
	pad()

	gd, gts := make([]byte, nGT*4), make([]byte, nGT*gtes*4)
	if !stream {
		rgdAt := at()
		out = append(out, make([]byte, (gdSecs+nGT*gtSecs)*vmdkSector*2)...)
		gdAt := rgdAt + gdSecs + nGT*gtSecs
		le.PutUint64(h[48:], uint64(rgdAt))
		le.PutUint64(h[56:], uint64(gdAt))
		le.PutUint64(h[64:], uint64(at()))
		copy(out, h)
		for g := range grains {
			if b := grainData(g); len(bytes.Trim(b, "\x00")) > 0 {
				le.PutUint32(gts[4*g:], uint32(at()))
				out = append(out, b...)
				out = append(out, make([]byte, grain-int64(len(b)))...)
			}
		}
		for _, dirAt := range []int64{rgdAt, gdAt} {
			for i := range nGT {
				le.PutUint32(gd[4*i:], uint32(dirAt+gdSecs+i*gtSecs))
				copy(out[(dirAt+gdSecs+i*gtSecs)*vmdkSector:], gts[4*i*gtes:4*(i+1)*gtes])
			}
			copy(out[dirAt*vmdkSector:], gd)
		}
		return out
	}

	le.PutUint64(h[64:], uint64(at()))
	copy(out, h)
	marker := func(n int64, typ uint32) {
		m := make([]byte, vmdkSector)
		le.PutUint64(m, uint64(n))
		le.PutUint32(m[12:], typ)
		out = append(out, m...)
	}
	for i := range nGT {
		any := false
		for g := i * gtes; g < min(grains, (i+1)*gtes); g++ {
			b := grainData(g)
			if len(bytes.Trim(b, "\x00")) == 0 {
				continue
			}
			var z bytes.Buffer
			w := zlib.NewWriter(&z)
			w.Write(b)
			w.Close()
			le.PutUint32(gts[4*g:], uint32(at()))
			out = le.AppendUint64(out, uint64(g*grainSectors))
			out = le.AppendUint32(out, uint32(z.Len()))
			out = append(out, z.Bytes()...)
			pad()
			any = true
		}
		if any {
			marker(gtSecs, 1) // a grain table's
			le.PutUint32(gd[4*i:], uint32(at()))
			out = append(out, gts[4*i*gtes:4*(i+1)*gtes]...)
			pad()
		}
	}
	marker(gdSecs, 2) // the directory's
	gdAt := at()
	out = append(out, gd...)
	pad()
	marker(1, 3) // the footer's
	le.PutUint64(h[56:], uint64(gdAt))
	out = append(out, h...)
	return append(out, make([]byte, vmdkSector)...) // end of stream
}

// VMDKZeroGrain turns grain 0 of a hosted image from VMDK into a
// grain of zeros (a grain table entry of 1, version 2's zeroed grains).
func VMDKZeroGrain(b []byte) []byte {
	le := binary.LittleEndian
	le.PutUint32(b[4:], 2)
	le.PutUint32(b[8:], le.Uint32(b[8:])|vmdkFlagZero)
	for _, dirAt := range []uint64{le.Uint64(b[48:]), le.Uint64(b[56:])} {
		gt := le.Uint32(b[dirAt*vmdkSector:])
		le.PutUint32(b[int64(gt)*vmdkSector:], 1)
	}
	return b
}

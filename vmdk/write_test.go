package vmdk

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
)

// makeSparse writes data, a whole number of sectors, as a hosted sparse
// extent with grains of grainSectors and tables of gtes entries, leaving
// grains of zeros unallocated. A hosted one has its redundant directory
// and tables, then the primary ones, before the grains, as VMware lays
// them out; a stream is written as VMware's exports are: deflated grains
// behind markers, each grain table after its grains, then the directory
// and the footer that names it.
func makeSparse(data []byte, grainSectors, gtes int64, stream bool) []byte {
	le := binary.LittleEndian
	grain := grainSectors * sectorSize
	capacity := int64(len(data)) / sectorSize
	grains := (capacity + grainSectors - 1) / grainSectors
	nGT := (grains + gtes - 1) / gtes
	secs := func(n int64) int64 { return (n + sectorSize - 1) / sectorSize }
	gtSecs, gdSecs := secs(gtes*4), secs(nGT*4)
	var out []byte
	pad := func() { out = append(out, make([]byte, secs(int64(len(out)))*sectorSize-int64(len(out)))...) }
	at := func() int64 { return int64(len(out)) / sectorSize }
	grainData := func(g int64) []byte { return data[g*grain : min(int64(len(data)), (g+1)*grain)] }

	h := make([]byte, sectorSize)
	copy(h, Magic)
	flags, createType := uint32(flagEOLCheck), "monolithicSparse"
	if stream {
		le.PutUint32(h[4:], 3)
		flags |= 1<<16 | flagMarkers
		le.PutUint64(h[56:], gdAtEnd)
		le.PutUint16(h[77:], compressDeflate)
		createType = "streamOptimized"
	} else {
		le.PutUint32(h[4:], 1)
		flags |= flagRedundantGD
	}
	le.PutUint32(h[8:], flags)
	le.PutUint64(h[12:], uint64(capacity))
	le.PutUint64(h[20:], uint64(grainSectors))
	le.PutUint64(h[28:], 1)
	le.PutUint64(h[36:], 1)
	le.PutUint32(h[44:], uint32(gtes))
	copy(h[73:], eolCheck)
	out = append(out, h...)
	out = append(out, fmt.Sprintf("%s\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=%q\n\nRW %d SPARSE \"disk.vmdk\"\n", DescriptorMagic, createType, capacity)...)
	pad()

	gd, gts := make([]byte, nGT*4), make([]byte, nGT*gtes*4)
	if !stream {
		rgdAt := at()
		out = append(out, make([]byte, (gdSecs+nGT*gtSecs)*sectorSize*2)...)
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
				copy(out[(dirAt+gdSecs+i*gtSecs)*sectorSize:], gts[4*i*gtes:4*(i+1)*gtes])
			}
			copy(out[dirAt*sectorSize:], gd)
		}
		return out
	}

	le.PutUint64(h[64:], uint64(at()))
	copy(out, h)
	marker := func(n int64, typ uint32) {
		m := make([]byte, sectorSize)
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
			marker(gtSecs, 1)
			le.PutUint32(gd[4*i:], uint32(at()))
			out = append(out, gts[4*i*gtes:4*(i+1)*gtes]...)
			pad()
		}
	}
	marker(gdSecs, 2)
	gdAt := at()
	out = append(out, gd...)
	pad()
	marker(1, markerFooter)
	le.PutUint64(h[56:], uint64(gdAt))
	out = append(out, h...)
	return append(out, make([]byte, sectorSize)...) // end of stream
}

// withZeroGrain turns grain 0 of a hosted image from makeSparse into a
// grain of zeros (a grain table entry of 1, version 2's zeroed grains).
func withZeroGrain(b []byte) []byte {
	le := binary.LittleEndian
	le.PutUint32(b[4:], 2)
	le.PutUint32(b[8:], le.Uint32(b[8:])|flagZeroGrains)
	for _, dirAt := range []uint64{le.Uint64(b[48:]), le.Uint64(b[56:])} {
		gt := le.Uint32(b[dirAt*sectorSize:])
		le.PutUint32(b[int64(gt)*sectorSize:], gteZero)
	}
	return b
}

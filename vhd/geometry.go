package vhd

// Geometry is a disk's cylinders, heads and sectors per track.
type Geometry struct {
	Cylinders       uint16
	Heads           uint8
	SectorsPerTrack uint8
}

// maxGeometry is the largest geometry a footer can hold (about 127 GiB).
var maxGeometry = Geometry{65535, 16, 255}

// Size is the number of bytes the geometry addresses.
func (g Geometry) Size() int64 {
	return int64(g.Cylinders) * int64(g.Heads) * int64(g.SectorsPerTrack) * 512
}

// CHS computes a disk's geometry from its size with the specification's
// algorithm (appendix "CHS calculation"). The geometry usually addresses a
// little less than the size; disks above 127 GiB get the maximum.
func CHS(size int64) Geometry {
	sectors := size / 512
	if maxSectors := int64(65535) * 16 * 255; sectors > maxSectors {
		sectors = maxSectors
	}
	var spt, heads, cylTimesHeads int64
	if sectors >= 65535*16*63 {
		spt, heads = 255, 16
		cylTimesHeads = sectors / spt
	} else {
		spt = 17
		cylTimesHeads = sectors / spt
		heads = max((cylTimesHeads+1023)/1024, 4)
		if cylTimesHeads >= heads*1024 || heads > 16 {
			spt, heads = 31, 16
			cylTimesHeads = sectors / spt
		}
		if cylTimesHeads >= heads*1024 {
			spt, heads = 63, 16
			cylTimesHeads = sectors / spt
		}
	}
	return Geometry{uint16(cylTimesHeads / heads), uint8(heads), uint8(spt)}
}

package raw

// MiB is the unit Azure requires a VHD's virtual size to be a multiple of.
const MiB = 1 << 20

// IsMiBAligned tells whether size is a whole number of MiB.
func IsMiBAligned(size int64) bool { return size%MiB == 0 }

// AlignMiB rounds size up to the next whole MiB.
func AlignMiB(size int64) int64 { return (size + MiB - 1) / MiB * MiB }

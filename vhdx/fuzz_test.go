package vhdx

import (
	"bytes"
	"testing"

	"github.com/vhdprep/vhdprep/internal/disktest"
)

// FuzzOpen opens arbitrary input, walks its BAT and reads a few blocks.
// Seeds: the smallest images the format allows (2 and 3 MiB, where
// qemu-img's are 9), one without a block and one with a block of data.
func FuzzOpen(f *testing.F) {
	data := make([]byte, 4096)
	copy(data[100:], "vhdprep!")
	f.Add(disktest.VHDX(data, 1<<20, false))
	f.Add(disktest.VHDX(make([]byte, 4096), 1<<20, false))
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		disktest.Exercise(t, im)
	})
}

// FuzzLogReplay finds the active sequence of an arbitrary log and reads a
// file as replaying it leaves it. Seeds: logs of 16 KiB holding a sequence
// of two entries, one as written and one wrapping around the log's end.
func FuzzLogReplay(f *testing.F) {
	guid := [16]byte{1}
	page := bytes.Repeat([]byte("page"), logSector/4)
	for _, aAt := range []int{0, 3 * logSector} {
		a := makeEntry(10, int64(aAt), 8192, 1<<20, guid, []logWrite{{off: logSector, length: logSector, data: page}})
		b := makeEntry(11, int64(aAt), 8192, 1<<20, guid, []logWrite{{off: 2 * logSector, length: 3 * logSector}})
		log := make([]byte, 4*logSector)
		for i := range a {
			log[(aAt+i)%len(log)] = a[i]
		}
		copy(log[(aAt+len(a))%len(log):], b)
		f.Add(log)
	}
	file := bytes.Repeat([]byte("file"), 4096)
	f.Fuzz(func(t *testing.T, log []byte) {
		log = log[:len(log)/logSector*logSector]
		if len(log) == 0 {
			return
		}
		seq := activeSequence(log, guid)
		if len(seq) == 0 {
			return
		}
		rp, err := replay(bytes.NewReader(file), int64(len(file)), seq)
		if err != nil {
			return
		}
		buf := make([]byte, 3*logSector)
		for _, off := range []int64{0, 5000, rp.size - 100} {
			if n, err := rp.ReadAt(buf, off); err == nil && n != len(buf) {
				t.Fatalf("ReadAt at %d returned %d bytes and no error", off, n)
			}
		}
	})
}

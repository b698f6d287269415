package vhd

import (
	"bytes"
	"io"
	"testing"
	"time"
)

func FuzzParseFooter(f *testing.F) {
	good, _ := NewFixedFooter(30<<20, time.Unix(1700000000, 0))
	b, _ := good.MarshalBinary()
	f.Add(b)
	f.Add(make([]byte, 512))
	f.Add([]byte("conectix"))
	f.Fuzz(func(t *testing.T, b []byte) {
		footer, err := ParseFooter(b)
		if err != nil {
			return
		}
		footer.Validate()
		footer.QemuSize()
		if enc, err := footer.MarshalBinary(); err == nil {
			again, err := ParseFooter(enc)
			if err != nil || again.CurrentSize != footer.CurrentSize || again.Geometry != footer.Geometry {
				t.Fatalf("re-encoded footer does not decode the same: %v", err)
			}
		}
	})
}

func FuzzOpenDynamic(f *testing.F) {
	f.Add(hostile(DiskDynamic, 1<<20, 1, 2<<20, 1536))
	f.Add(hostile(DiskDynamic, 4<<20, 2, 2<<20, 1536))
	f.Add(hostile(DiskDifferencing, 1<<20, 1, 2<<20, 1536))
	f.Fuzz(func(t *testing.T, img []byte) {
		d, err := OpenDynamic(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			return
		}
		exts, _ := d.Extents()
		buf := make([]byte, 4096)
		for _, e := range exts[:min(len(exts), 4)] {
			if _, err := d.ReadAt(buf, e.Offset); err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
				return
			}
		}
		d.ReadAt(buf, d.Size()-1)
	})
}

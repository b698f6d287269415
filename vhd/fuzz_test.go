package vhd

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Seeds made by qemu-img 7.2 (testdata/README lists the commands).
func qemuSamples(f *testing.F) [][]byte {
	var out [][]byte
	for _, name := range []string{"qemu-dynamic-1m.vhd", "qemu-dynamic-5m-force.vhd", "qemu-fixed-20m.footer"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzParseFooter(f *testing.F) {
	good, _ := NewFixedFooter(30<<20, time.Unix(1700000000, 0))
	b, _ := good.MarshalBinary()
	f.Add(b)
	for _, s := range qemuSamples(f) {
		f.Add(s[len(s)-FooterSize:])
	}
	f.Add(make([]byte, 512))
	f.Add([]byte("conectix"))
	f.Fuzz(func(t *testing.T, b []byte) {
		footer, err := ParseFooter(b)
		if err != nil {
			return
		}
		footer.Validate()
		footer.QemuSize()
		read := *footer
		enc, err := footer.MarshalBinary()
		if err != nil {
			if footer.CurrentSize >= 0 && footer.OriginalSize >= 0 {
				t.Fatalf("MarshalBinary: %v", err)
			}
			return
		}
		// Encoding gives back the input but for the checksum (recomputed)
		// and the saved-state byte (normalized to 0 or 1).
		in := bytes.Clone(b[:FooterSize])
		copy(in[64:68], enc[64:68])
		in[84] = enc[84]
		if !bytes.Equal(in, enc) {
			t.Fatalf("re-encoded footer differs from the input")
		}
		again, err := ParseFooter(enc)
		if err != nil {
			t.Fatal(err)
		}
		read.Checksum = again.Checksum
		if *again != read {
			t.Fatalf("re-encoded footer decodes as %+v, want %+v", again, read)
		}
		for _, err := range again.Validate() {
			if errors.Is(err, ErrChecksum) {
				t.Fatalf("a fresh checksum is wrong: %v", err)
			}
		}
	})
}

func FuzzOpenDynamic(f *testing.F) {
	for _, s := range qemuSamples(f)[:2] {
		f.Add(s)
	}
	f.Add(buildDynamic(DiskDynamic, 16<<10, 4096, map[int][]byte{1: {1, 2, 3}, 3: {4}}).img)
	partial := buildDynamic(DiskDynamic, 8<<10, 4096, map[int][]byte{0: bytes.Repeat([]byte{9}, 4096)})
	partial.img[partial.blockAt[0]] = 0x5a
	f.Add(partial.img)
	f.Add(hostile(DiskDynamic, 4<<20, 2, 2<<20, 1536))
	f.Add(hostile(DiskDifferencing, 512, 1, 512, 1536))
	f.Fuzz(func(t *testing.T, img []byte) {
		d, err := OpenDynamic(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			return
		}
		exts, err := d.Extents()
		if err != nil {
			t.Fatal(err)
		}
		var end int64
		for _, e := range exts {
			if e.Offset < end || e.Length <= 0 || e.End() > d.Size() {
				t.Fatalf("extents out of order or bounds: %v (size %d)", exts, d.Size())
			}
			end = e.End()
		}
		// The start of the disk reads fully, and as zeros outside extents.
		buf := make([]byte, min(d.Size(), 8<<10))
		if n, err := d.ReadAt(buf, 0); n != len(buf) && err == nil {
			t.Fatalf("short read %d of %d without an error", n, len(buf))
		} else if err == nil || n == len(buf) {
			// Walk the sorted extents alongside the bytes: linear, since a
			// fuzzed BAT can hold many thousands of them.
			for i, c := range buf {
				for len(exts) > 0 && exts[0].End() <= int64(i) {
					exts = exts[1:]
				}
				if c != 0 && (len(exts) == 0 || int64(i) < exts[0].Offset) {
					t.Fatalf("byte %d is %d outside every extent", i, c)
				}
			}
		}
		if n, _ := d.ReadAt(buf[:2], d.Size()-1); n != 1 {
			t.Fatalf("read across the end returned %d bytes", n)
		}
	})
}

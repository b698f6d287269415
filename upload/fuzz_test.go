package upload

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/binary"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/progress"
	"github.com/vhdprep/vhdprep/raw"
)

// sparseDisk reads as zeros but for content at base.
type sparseDisk struct {
	content []byte
	base    int64
	size    int64
}

func (d *sparseDisk) ReadAt(p []byte, off int64) (int, error) {
	if off >= d.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), d.size-off)
	clear(p[:n])
	if lo, hi := max(off, d.base), min(off+n, d.base+int64(len(d.content))); lo < hi {
		copy(p[lo-off:hi-off], d.content[lo-d.base:hi-d.base])
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

func (d *sparseDisk) bytes() []byte {
	b := make([]byte, d.size)
	d.ReadAt(b, 0)
	return b
}

// ranges decodes pairs of little-endian uint16s into extents, in units of
// unit bytes plus an odd offset: unsorted, overlapping, out of bounds, as
// a server or a filesystem might report them.
func ranges(b []byte, unit int64) []raw.Extent {
	var out []raw.Extent
	for ; len(b) >= 4 && len(out) < 64; b = b[4:] {
		off := int64(binary.LittleEndian.Uint16(b)) * unit
		n := int64(binary.LittleEndian.Uint16(b[2:])) * unit / 4
		out = append(out, raw.Extent{Offset: off, Length: n})
	}
	return out
}

// FuzzPipeline uploads a sparse disk to a page blob that already holds
// data in the fuzzed ranges (correct data if trusted, as after an
// interruption; junk if not, as on a used managed disk), and checks the
// blob ends up holding exactly the disk, with only Azure-valid requests,
// no data page sent twice, no zero page sent, and the right MD5.
func FuzzPipeline(f *testing.F) {
	f.Add([]byte("hello, world"), uint16(0), uint16(3), []byte{}, []byte{}, false)
	f.Add(bytes.Repeat([]byte{1, 0, 0, 0, 0, 0, 0, 0}, 1000), uint16(63), uint16(1), []byte{0, 1, 0, 2}, []byte{1, 0, 3, 0, 60, 0, 200, 0}, true)
	f.Add(bytes.Repeat([]byte{7}, 70000), uint16(127), uint16(130), []byte{5, 0, 9, 0}, []byte{0, 0, 255, 255}, false)
	f.Add(append(make([]byte, 5000), 9), uint16(200), uint16(0), []byte{}, []byte{100, 0, 100, 0, 0, 0, 1, 0}, true)
	f.Fuzz(func(t *testing.T, content []byte, base, tail uint16, extBytes, haveBytes []byte, trusted bool) {
		if len(content) > 1<<17 {
			return
		}
		const unit = 64 << 10 // base and tail in 64 KiB: disks up to ~8 MiB, over two windows
		d := &sparseDisk{content: content, base: int64(base%128) * unit}
		d.size = (d.base + int64(len(content)) + int64(tail%128)*unit + PageSize) / PageSize * PageSize
		disk := d.bytes()

		// Extents must cover the data; extra ones cover zeros.
		exts := append(ranges(extBytes, 4099), raw.Extent{Offset: d.base, Length: int64(len(content))})
		exts = raw.Clip(sortedExtents(exts), d.size) // Clip wants them sorted

		have := ranges(haveBytes, 4096)
		mb := newMemBlob(d.size)
		for _, h := range sortedSpans(append([]raw.Extent(nil), have...), d.size) {
			for p := h.Offset; p < h.End(); p += PageSize {
				if trusted {
					copy(mb.data[p:p+PageSize], disk[p:])
				} else {
					copy(mb.data[p:p+PageSize], bytes.Repeat([]byte{0xEE}, PageSize))
				}
				mb.written[p/PageSize] = true
			}
		}
		before := append([]bool(nil), mb.written...)

		o := Options{Blob: mb, Concurrency: 3}
		o.defaults()
		sum := &Summary{}
		p := newPipeline(o, d, d.size, exts, &destination{have: have, trusted: trusted}, sum, progress.Discard)
		if err := p.run(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, err := contentMD5(context.Background(), d, d.size, p.spans)
		if err != nil {
			t.Fatal(err)
		}
		if want := md5.Sum(disk); !bytes.Equal(got, want[:]) {
			t.Fatalf("MD5 %x, want %x", got, want)
		}
		if !bytes.Equal(mb.data, disk) {
			t.Fatal("the blob differs from the disk")
		}
		var want int64
		zero := make([]byte, PageSize)
		for i := range mb.written {
			isZero := bytes.Equal(disk[i*PageSize:(i+1)*PageSize], zero)
			if mb.written[i] && isZero {
				t.Fatalf("page %d holds data in the blob where the disk is zero", i)
			}
			if !isZero && !(trusted && before[i]) {
				want += PageSize
			}
		}
		if mb.putBytes != want || sum.SentBytes != want {
			t.Fatalf("sent %d bytes (counted %d), want %d", mb.putBytes, sum.SentBytes, want)
		}
	})
}

// sortedExtents orders and merges extents, as Disk.Extents returns them.
func sortedExtents(exts []raw.Extent) []raw.Extent {
	out := append([]raw.Extent(nil), exts...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Offset < out[j-1].Offset; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return raw.Coalesce(out)
}

var unredacted = regexp.MustCompile(`(?i)\b(sig|AccountKey|SharedAccessSignature)=`)

// FuzzRedact checks that every secret parameter Redact leaves is followed
// by the redaction mark or by what ends a value (regexp's \s is space,
// \t, \n, \f and \r), and that redacting twice changes nothing.
func FuzzRedact(f *testing.F) {
	f.Add("https://a.blob.core.windows.net/c/b?sv=2024&sig=abc%2Bdef&se=x")
	f.Add("AccountName=a;AccountKey=k3y==;BlobEndpoint=http://x;SharedAccessSignature=sv=1&sig=s;")
	f.Add(`Put "http://h/c/b?SIG=abc": EOF`)
	f.Fuzz(func(t *testing.T, s string) {
		r := Redact(s)
		for _, m := range unredacted.FindAllStringIndex(r, -1) {
			if !strings.HasPrefix(r[m[1]:], Redacted) && m[1] < len(r) && !strings.ContainsRune("&; \t\n\f\r\"'<>", rune(r[m[1]])) {
				t.Fatalf("Redact(%q) = %q leaves a secret at %d", s, r, m[0])
			}
		}
		if Redact(r) != r {
			t.Fatalf("Redact is not idempotent on %q", s)
		}
	})
}

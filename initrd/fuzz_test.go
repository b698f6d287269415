package initrd

import (
	"bytes"
	"io"
	"io/fs"
	"strings"
	"testing"
)

// FuzzWalk walks mutations of small real initramfs files. A walk must not
// panic, must report only valid names and segments in file order, and
// Modules must agree with Walk on whether the input reads and list a
// module only for the kernel whose directory holds it.
func FuzzWalk(f *testing.F) {
	for _, recipe := range []string{"initrd-layers", "initrd-dracut-xz", "initrd-debian-zstd", "initrd-nostorvsc-gzip", "initrd-arch-lz4", "initrd-dracut-hostonly"} {
		f.Add(image(f, recipe))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var last Segment
		w := &walker{r: bytes.NewReader(b), size: int64(len(b)), budget: 64 << 20}
		w.onSegment = func(s Segment) {
			if s.Offset < last.Offset || s.Offset >= int64(len(b)) || (last.Compression != "" && s == last) {
				t.Fatalf("segment %+v after %+v in %d bytes", s, last, len(b))
			}
			last = s
		}
		w.fn = func(s Segment, e Entry, content io.Reader) error {
			if e.Name != cleanName(e.Name) || strings.HasPrefix(e.Name, "/") {
				t.Fatalf("entry name %q", e.Name)
			}
			n, err := io.Copy(io.Discard, content)
			if err == nil && n != e.Size && e.Mode&fs.ModeSymlink == 0 {
				t.Fatalf("%s: read %d of %d bytes", e.Name, n, e.Size)
			}
			return err
		}
		err := w.run()
		inv, merr := modules(bytes.NewReader(b), int64(len(b)), 64<<20)
		if (err == nil) != (merr == nil) {
			t.Fatalf("Walk: %v, Modules: %v", err, merr)
		}
		if merr == nil && len(inv.Segments) == 0 && len(bytes.Trim(b, "\x00")) > 0 {
			t.Fatalf("no segment in %d bytes that read", len(b))
		}
		if merr == nil {
			// A module counts only in its own kernel's directory.
			for v, km := range inv.Kernels {
				for _, p := range km.Files {
					if !strings.HasPrefix(strings.TrimPrefix(p, "usr/"), "lib/modules/"+v+"/") {
						t.Fatalf("module %s listed for kernel %s", p, v)
					}
				}
			}
		}
	})
}

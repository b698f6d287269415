package rootfs

import (
	"bytes"
	"encoding/binary"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// fuzzWalk opens fstype in r and walks a few levels, returning how many
// entries it met: every error is fine, a panic, a hang or a huge
// allocation is not.
func fuzzWalk(r io.ReaderAt, size int64, fstype string) int {
	tr, err := OpenFS(r, size, fstype)
	if err != nil {
		return 0
	}
	n := 0
	fs.WalkDir(tr, ".", func(p string, d fs.DirEntry, err error) error {
		if n++; n > 64 {
			return fs.SkipAll
		}
		if err != nil || d.IsDir() {
			return nil
		}
		d.Info()
		if d.Type()&fs.ModeSymlink != 0 {
			tr.ReadLink(p)
		}
		if f, err := tr.Open(p); err == nil {
			io.CopyN(io.Discard, f, 8192)
			f.Close()
		}
		return nil
	})
	return n
}

// fuzzTree is the small tree the fuzz seeds hold: a file, a directory of
// n entries, and absolute and relative symlinks.
func fuzzTree(f *testing.F, n int) string {
	tree := filepath.Join(f.TempDir(), "tree")
	os.MkdirAll(filepath.Join(tree, "etc", "sub"), 0o755)
	os.WriteFile(filepath.Join(tree, "etc", "fstab"), []byte("UUID=x / ext4 defaults 0 1\n"), 0o644)
	for i := range n {
		os.WriteFile(filepath.Join(tree, "etc", "sub", "entry-"+string(rune('a'+i))), nil, 0o644)
	}
	os.Symlink("etc", filepath.Join(tree, "link"))
	os.Symlink("/etc/fstab", filepath.Join(tree, "abs"))
	return tree
}

// FuzzExt4 opens arbitrary bytes as ext4 and walks them.
func FuzzExt4(f *testing.F) {
	tree := fuzzTree(f, 8)
	for _, opts := range [][]string{{"-O", "^has_journal,^resize_inode"}, {"-O", "^has_journal,^resize_inode,inline_data", "-I", "256"}} {
		img := filepath.Join(f.TempDir(), "small.ext4")
		os.WriteFile(img, nil, 0o644)
		os.Truncate(img, 64<<10)
		args := append([]string{"-q", "-F", "-b", "1024", "-N", "32", "-d", tree}, opts...)
		if exec.Command("mkfs.ext4", append(args, img)...).Run() == nil {
			if b, err := os.ReadFile(img); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) { fuzzWalk(bytes.NewReader(b), int64(len(b)), "ext4") })
}

// The smallest XFS mkfs.xfs makes is 16 MiB, too big to mutate; its seed
// is compact: records of (offset/64 as uint32, count as uint16, count*64
// bytes), the nonzero 64-byte chunks of the image, read back as a 16 MiB
// volume that is zero elsewhere.
const (
	compactUnit = 64
	compactSize = 16 << 20
)

// compact encodes img's nonzero chunks.
func compact(img []byte) []byte {
	var out []byte
	zero := make([]byte, compactUnit)
	for i := 0; i+compactUnit <= len(img); {
		if bytes.Equal(img[i:i+compactUnit], zero) {
			i += compactUnit
			continue
		}
		j := i
		for j+compactUnit <= len(img) && j-i < 0xFFFF*compactUnit && !bytes.Equal(img[j:j+compactUnit], zero) {
			j += compactUnit
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(i/compactUnit))
		out = binary.LittleEndian.AppendUint16(out, uint16((j-i)/compactUnit))
		out = append(out, img[i:j]...)
		i = j
	}
	return out
}

// sparseImage is a compact encoding read as a volume.
type sparseImage map[int64][]byte // chunk index -> 64 bytes

func decompact(b []byte) sparseImage {
	m := sparseImage{}
	for len(b) >= 6 {
		at, n := int64(binary.LittleEndian.Uint32(b)), int(binary.LittleEndian.Uint16(b[4:]))
		b = b[6:]
		for k := 0; k < n && len(b) >= compactUnit && (at+int64(k))*compactUnit < compactSize; k++ {
			m[at+int64(k)] = b[:compactUnit]
			b = b[compactUnit:]
		}
	}
	return m
}

func (s sparseImage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= compactSize {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off+int64(n) < compactSize {
		pos := off + int64(n)
		chunk, within := pos/compactUnit, pos%compactUnit
		k := min(len(p)-n, int(compactUnit-within))
		if c, ok := s[chunk]; ok {
			copy(p[n:n+k], c[within:])
		} else {
			clear(p[n : n+k])
		}
		n += k
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// FuzzXFS opens arbitrary compact images as XFS and walks them.
func FuzzXFS(f *testing.F) {
	tree := fuzzTree(f, 30) // a block-form directory
	dir := f.TempDir()
	proto := filepath.Join(dir, "proto")
	img := filepath.Join(dir, "small.xfs")
	os.WriteFile(img, nil, 0o644)
	os.Truncate(img, compactSize)
	script := `. testdata/images/lib.sh; xfs_proto "$1" > "$2" && mkfs.xfs -q -f -b size=1024 -p "$2" "$3"`
	cmd := exec.Command("bash", "-c", script, "mkxfs", tree, proto, img)
	cmd.Dir = ".."
	if cmd.Run() == nil {
		if b, err := os.ReadFile(img); err == nil {
			f.Add(compact(b))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) { fuzzWalk(decompact(b), compactSize, "xfs") })
}

// The fuzz seeds must be real filesystems the walk gets through, or the
// fuzzers start from nothing.
func TestFuzzSeedsWalk(t *testing.T) {
	testimage.RequireTools(t, "mkfs.xfs")
	img := filepath.Join(t.TempDir(), "x")
	os.WriteFile(img, nil, 0o644)
	os.Truncate(img, compactSize)
	tree := t.TempDir()
	os.WriteFile(filepath.Join(tree, "f"), []byte("x"), 0o644)
	cmd := exec.Command("bash", "-c", `. testdata/images/lib.sh; xfs_proto "$1" > "$1.proto" && mkfs.xfs -q -f -b size=1024 -p "$1.proto" "$2"`, "mkxfs", tree, img)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	b, _ := os.ReadFile(img)
	c := compact(b)
	if n := fuzzWalk(decompact(c), compactSize, "xfs"); n != 2 || len(c) > 64<<10 {
		t.Fatalf("compact XFS seed of %d bytes: walked %d entries", len(c), n)
	}
}

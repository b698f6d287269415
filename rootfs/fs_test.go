package rootfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// openImage opens a bare filesystem image built by a recipe.
func openImage(t *testing.T, recipe, fstype string) *Tree {
	t.Helper()
	return openFile(t, testimage.Path(t, recipe), fstype)
}

func openFile(t *testing.T, path, fstype string) *Tree {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := OpenFS(f, st.Size(), fstype)
	if err != nil {
		t.Fatalf("OpenFS %s: %v", fstype, err)
	}
	return tr
}

// seqOutput is what `seq 1 n` prints.
func seqOutput(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintln(&b, i)
	}
	return b.Bytes()
}

// checkFSTree checks the tree rootfs_fs_tree (testdata/images/rootfs-fs-lib.sh)
// builds, as read through tr.
func checkFSTree(t *testing.T, tr *Tree, sparse bool) {
	t.Helper()
	files := map[string]string{
		"etc/hostname":            "guest\n",
		"etc/tiny":                "tiny",
		"etc/empty":               "",
		"etc/medium":              fmt.Sprintf("%0100d", 7),
		"etc/many/entry-1.conf":   "1\n",
		"etc/many/entry-400.conf": "400\n",
		"inl/f8":                  "8\n",
		"hostname-abs":            "guest\n", // an absolute symlink, resolved in the guest
		"deep/a/climb":            "guest\n", // ".." stops at the root
		"deeplink/file":           "deep\n",
	}
	for name, want := range files {
		if b, err := tr.ReadFile(name); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	big := seqOutput(500000)
	for _, name := range []string{"usr/bin/big", "bin/big"} {
		if b, err := tr.ReadFile(name); err != nil || !bytes.Equal(b, big) {
			t.Errorf("%s: %d bytes, %v; want %d bytes of seq output", name, len(b), err, len(big))
		}
	}
	ents, err := tr.ReadDir("etc/many")
	if err != nil || len(ents) != 400 || ents[0].Name() != "entry-1.conf" || ents[0].Type() != 0 {
		t.Errorf("etc/many: %d entries, %v", len(ents), err)
	}
	for dir, n := range map[string]int{"inl": 8, "blockdir": 40, "nodedir": 3000} {
		if ents, err := tr.ReadDir(dir); err != nil || len(ents) != n {
			t.Errorf("%s: %d entries, %v; want %d", dir, len(ents), err, n)
		}
	}
	if b, err := tr.ReadFile("nodedir/f2999"); err != nil || len(b) != 0 {
		t.Errorf("nodedir/f2999: %q %v", b, err)
	}
	long := strings.Repeat("long/", 100) + "target"
	if target, err := tr.ReadLink("slowlink"); err != nil || target != long {
		t.Errorf("slow symlink: %q %v", target, err)
	}
	if target, err := tr.ReadLink("bin"); err != nil || target != "usr/bin" {
		t.Errorf("fast symlink: %q %v", target, err)
	}
	if info, err := tr.Lstat("slowlink"); err != nil || info.Mode().Type() != fs.ModeSymlink || info.Size() != int64(len(long)) {
		t.Errorf("lstat slowlink: %v %v", info, err)
	}
	if _, err := tr.ReadFile("loop-a"); !errors.Is(err, ErrLoop) {
		t.Errorf("symlink loop: %v", err)
	}
	if _, err := tr.ReadFile("etc/nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := tr.ReadFile("etc/hostname/x"); err == nil {
		t.Error("a file was read as a directory")
	}

	owners := []struct {
		name     string
		mode     uint32
		uid, gid uint32
		fsMode   fs.FileMode
	}{
		{"etc/shadow", 0o100640, 0, 42, 0o640},
		{"usr/bin/big", 0o104755, 1000, 1001, fs.ModeSetuid | 0o755},
		{"tmp", 0o041777, ^uint32(0), ^uint32(0), fs.ModeDir | fs.ModeSticky | 0o777},
	}
	for _, o := range owners {
		info, err := tr.Stat(o.name)
		if err != nil {
			t.Errorf("stat %s: %v", o.name, err)
			continue
		}
		st, ok := info.Sys().(*Stat)
		if !ok || st.Mode != o.mode || info.Mode() != o.fsMode || (o.uid != ^uint32(0) && (st.UID != o.uid || st.GID != o.gid)) || st.Inode == 0 {
			t.Errorf("%s: mode %v, stat %+v; want %o %d:%d", o.name, info.Mode(), info.Sys(), o.mode, o.uid, o.gid)
		}
	}

	if sparse {
		checkSparse(t, tr)
	}
	if err := fstest.TestFS(subFS(t, tr, "deep"), "a/b/c/d/e/file"); err != nil {
		t.Error(err)
	}
}

func checkSparse(t *testing.T, tr *Tree) {
	t.Helper()
	if info, err := tr.Lstat("fifo"); err != nil || info.Mode().Type() != fs.ModeNamedPipe {
		t.Errorf("fifo: %v %v", info, err)
	}
	f, err := tr.Open("sparse")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, _ := f.Stat()
	r := f.(io.ReaderAt)
	if info.Size() != 100<<20 {
		t.Errorf("sparse size %d", info.Size())
	}
	for _, c := range []struct {
		off  int64
		want string
	}{{50 << 20, "middle"}, {100<<20 - 3, "end"}, {50<<20 - 2, "\x00\x00mid"}, {12345678, "\x00\x00\x00\x00"}} {
		b := make([]byte, len(c.want))
		if _, err := r.ReadAt(b, c.off); (err != nil && err != io.EOF) || string(b) != c.want {
			t.Errorf("sparse at %d: %q %v; want %q", c.off, b, err, c.want)
		}
	}
	islands, err := tr.ReadFile("islands")
	if err != nil || len(islands) != 39*256*1024+9 {
		t.Fatalf("islands: %d bytes, %v", len(islands), err)
	}
	for i := range 40 {
		at := i * 256 * 1024
		if got := string(islands[at : at+9]); got != fmt.Sprintf("island-%02d", i) || (i > 0 && islands[at-1] != 0) {
			t.Errorf("island %d: %q", i, got)
		}
	}
}

func TestXFS(t *testing.T) {
	checkFSTree(t, openImage(t, "rootfs-fs-xfs", "xfs"), false)
}

func TestExtFamily(t *testing.T) {
	for _, c := range []struct{ recipe, fstype string }{
		{"rootfs-fs-ext4", "ext4"},
		{"rootfs-fs-ext4-inline", "ext4"},
		{"rootfs-fs-ext3", "ext3"},
		{"rootfs-fs-ext2", "ext2"},
	} {
		t.Run(c.recipe, func(t *testing.T) {
			checkFSTree(t, openImage(t, c.recipe, c.fstype), true)
		})
	}
}

// TestExt4MetaBG reads a filesystem whose group descriptors are spread
// over meta block groups (64 groups of 1024 blocks, 16 descriptors per
// block), with 16 inodes a group so the files lie in the later ones.
func TestExt4MetaBG(t *testing.T) {
	testimage.RequireTools(t, "mkfs.ext4")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	for i := range 200 {
		os.MkdirAll(filepath.Join(tree, fmt.Sprint("d", i)), 0o755)
		os.WriteFile(filepath.Join(tree, fmt.Sprint("d", i), "f"), []byte(fmt.Sprint(i)), 0o644)
	}
	img := filepath.Join(dir, "metabg.ext4")
	os.WriteFile(img, nil, 0o644)
	os.Truncate(img, 64<<20)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-b", "1024", "-g", "1024", "-N", "1024", "-O", "meta_bg,^resize_inode", "-d", tree, img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	tr := openFile(t, img, "ext4")
	for i := range 200 {
		if b, err := tr.ReadFile(fmt.Sprint("d", i, "/f")); err != nil || string(b) != fmt.Sprint(i) {
			t.Fatalf("d%d/f: %q %v", i, b, err)
		}
	}
}

// smallExt4 makes a 1 MiB ext4 holding etc/hostname, with extra mkfs
// options, then runs debugfs commands on it (which may corrupt it on
// purpose).
func smallExt4(t testing.TB, mkfs []string, debugfs ...string) string {
	t.Helper()
	testimage.RequireTools(t, "mkfs.ext4", "debugfs")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "etc", "sub"), 0o755)
	os.WriteFile(filepath.Join(tree, "etc", "hostname"), []byte("guest\n"), 0o644)
	img := filepath.Join(dir, "small.ext4")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, 1<<20)
	args := append([]string{"-q", "-F", "-b", "1024", "-N", "32", "-d", tree}, mkfs...)
	if out, err := exec.Command("mkfs.ext4", append(args, img)...).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	if len(debugfs) > 0 {
		cmd := exec.Command("debugfs", "-w", "-f", "-", img)
		cmd.Stdin = strings.NewReader(strings.Join(debugfs, "\n") + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("debugfs: %v\n%s", err, out)
		}
	}
	return img
}

// TestExt4Attributes reads owners above 65535 and timestamps from large
// and from 128-byte inodes (which have no room for nanoseconds).
func TestExt4Attributes(t *testing.T) {
	for _, inodeSize := range []string{"128", "256"} {
		img := smallExt4(t, []string{"-I", inodeSize}, "sif /etc/hostname mtime 20200102030405", "sif /etc/hostname uid 70000",
			"sif /etc/hostname gid 131079")
		info, err := openFile(t, img, "ext4").Stat("etc/hostname")
		if err != nil {
			t.Fatal(err)
		}
		st := info.Sys().(*Stat)
		if st.UID != 70000 || st.GID != 2<<16|7 || !info.ModTime().Equal(time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)) || info.Size() != 6 {
			t.Errorf("%s-byte inodes: %+v, mtime %v", inodeSize, st, info.ModTime())
		}
	}
}

func TestExt4BadInput(t *testing.T) {
	t.Run("10 TB claimed by a file in a 1 MiB filesystem", func(t *testing.T) {
		tr := openFile(t, smallExt4(t, nil, "sif /etc/hostname size 10995116277760"), "ext4")
		info, err := tr.Stat("etc/hostname")
		if err != nil || info.Size() != 10995116277760 {
			t.Fatalf("stat: %v %v", info, err)
		}
		if _, err := tr.ReadFile("etc/hostname"); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("ReadFile of 10 TB: %v", err)
		}
		f, _ := tr.Open("etc/hostname")
		b := make([]byte, 4096)
		if n, err := f.(io.ReaderAt).ReadAt(b, 3<<40); n != len(b) || err != nil || !bytes.Equal(b, make([]byte, 4096)) {
			t.Fatalf("read far into the hole: %d %v", n, err)
		}
	})
	t.Run("directory loop", func(t *testing.T) {
		tr := openFile(t, smallExt4(t, nil, "ln /etc /etc/sub/back"), "ext4")
		walked := 0
		err := fs.WalkDir(tr, ".", func(p string, d fs.DirEntry, err error) error {
			if walked++; walked > 1000 {
				return fs.SkipAll
			}
			return err
		})
		if walked > 1000 || !errors.Is(err, ErrDirLoop) {
			t.Fatalf("walk over a directory loop: %d entries, %v", walked, err)
		}
	})
	t.Run("corrupt extent header", func(t *testing.T) {
		tr := openFile(t, smallExt4(t, nil, "sif /etc/hostname block[0] 0x1234"), "ext4")
		if _, err := tr.ReadFile("etc/hostname"); err == nil || !strings.Contains(err.Error(), "extent header") {
			t.Fatalf("corrupt extent header: %v", err)
		}
	})
	t.Run("extent past the end", func(t *testing.T) {
		tr := openFile(t, smallExt4(t, nil, "sif /etc/hostname block[5] 0x7fffff"), "ext4")
		if _, err := tr.ReadFile("etc/hostname"); err == nil || !strings.Contains(err.Error(), "past the end") {
			t.Fatalf("extent past the end: %v", err)
		}
	})
	t.Run("2 TB claimed by a directory", func(t *testing.T) {
		tr := openFile(t, smallExt4(t, nil, "sif /etc size 2199023255552"), "ext4")
		ents, err := tr.ReadDir("etc") // the holes are skipped, not read
		if err != nil || len(ents) != 2 || ents[0].Name() != "hostname" {
			t.Fatalf("%v %v", ents, err)
		}
	})
	t.Run("not ext4", func(t *testing.T) {
		if _, err := OpenFS(bytes.NewReader(make([]byte, 4096)), 4096, "ext4"); err == nil {
			t.Fatal("zeros opened as ext4")
		}
	})
}

// smallXFS makes a 16 MiB XFS (1 KiB blocks) holding f ("hello\n") and a
// directory, with mkfs options, then runs xfs_db -x commands on it.
func smallXFS(t *testing.T, mkfs []string, xfsdb ...string) string {
	t.Helper()
	testimage.RequireTools(t, "mkfs.xfs", "xfs_db")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "d"), 0o755)
	os.WriteFile(filepath.Join(tree, "f"), []byte("hello\n"), 0o644)
	img := filepath.Join(dir, "small.xfs")
	os.WriteFile(img, nil, 0o644)
	os.Truncate(img, 16<<20)
	script := `. testdata/images/lib.sh; t=$1; shift; xfs_proto "$t" > "$t.proto" && mkfs.xfs -q -f -b size=1024 -p "$t.proto" "$@"`
	cmd := exec.Command("bash", append([]string{"-c", script, "mkxfs", tree}, append(mkfs, img)...)...)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v\n%s", err, out)
	}
	if len(xfsdb) > 0 {
		args := []string{"-x"}
		for _, c := range xfsdb {
			args = append(args, "-c", c)
		}
		if out, err := exec.Command("xfs_db", append(args, img)...).CombinedOutput(); err != nil {
			t.Fatalf("xfs_db: %v\n%s", err, out)
		}
	}
	return img
}

func TestXFSBadInput(t *testing.T) {
	t.Run("version 4", func(t *testing.T) {
		img := smallXFS(t, []string{"-m", "crc=0"})
		f, _ := os.Open(img)
		defer f.Close()
		_, err := OpenFS(f, 16<<20, "xfs")
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "version 4") {
			t.Fatalf("XFS v4: %v", err)
		}
	})
	t.Run("10 TB claimed by a file in a 16 MiB filesystem", func(t *testing.T) {
		tr := openFile(t, smallXFS(t, nil, "path /f", "write core.size 10995116277760"), "xfs")
		if info, err := tr.Stat("f"); err != nil || info.Size() != 10995116277760 {
			t.Fatalf("stat: %v %v", info, err)
		}
		if _, err := tr.ReadFile("f"); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("ReadFile of 10 TB: %v", err)
		}
		f, _ := tr.Open("f")
		b := make([]byte, 4096)
		if n, err := f.(io.ReaderAt).ReadAt(b, 9<<40); n != len(b) || err != nil || !bytes.Equal(b, make([]byte, 4096)) {
			t.Fatalf("read far into the hole: %d %v", n, err)
		}
		if n, err := f.(io.ReaderAt).ReadAt(b[:6], 0); n != 6 || err != nil || string(b[:6]) != "hello\n" {
			t.Fatalf("the real data: %q %v", b[:6], err)
		}
	})
	t.Run("extent past the end", func(t *testing.T) {
		tr := openFile(t, smallXFS(t, nil, "path /f", "write u3.bmx[0].startblock 999999"), "xfs")
		if _, err := tr.ReadFile("f"); err == nil || !strings.Contains(err.Error(), "outside the filesystem") {
			t.Fatalf("extent past the end: %v", err)
		}
	})
	t.Run("bad inode", func(t *testing.T) {
		tr := openFile(t, smallXFS(t, nil, "path /d", "write -d core.magic 0"), "xfs")
		if _, err := tr.ReadDir("d"); err == nil || !strings.Contains(err.Error(), "bad header") {
			t.Fatalf("bad inode magic: %v", err)
		}
		if b, err := tr.ReadFile("f"); err != nil || string(b) != "hello\n" {
			t.Fatalf("the rest of the filesystem: %q %v", b, err)
		}
	})
}

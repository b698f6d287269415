package vhd

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/raw"
)

// qemuSize is the virtual size qemu-img reports for a VHD.
func qemuSize(t *testing.T, path string) int64 {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "-f", "vpc", "--output", "json", path).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v %s", path, err, out)
	}
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	return info.VirtualSize
}

// qemuImg runs qemu-img with args.
func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %v: %v %s", args, err, out)
	}
}

// writeFixed writes a sparse fixed VHD with footer f and returns its path.
func writeFixed(t *testing.T, f *Footer) string {
	t.Helper()
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fixed.vhd")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fh, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteAt(b, f.CurrentSize); err != nil {
		t.Fatal(err)
	}
	return path
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// dynImage is a dynamic VHD built by hand: footer copy, header, BAT at 1536,
// then each allocated block (bitmap with every sector marked, then data) in
// block order, then the footer. blockAt is where each block's bitmap starts.
type dynImage struct {
	img     []byte
	blockAt map[int]int
}

func buildDynamic(diskType DiskType, size int64, blockSize int, blocks map[int][]byte) dynImage {
	f, _ := NewFixedFooter(size, time.Unix(1700000000, 0))
	f.DiskType, f.DataOffset = diskType, FooterSize
	foot, _ := f.MarshalBinary()
	entries := int((size + int64(blockSize) - 1) / int64(blockSize))
	batLen := (entries*4 + 511) / 512 * 512
	bitmapLen := (blockSize/512/8 + 511) / 512 * 512

	img := append([]byte{}, foot...)
	h := make([]byte, headerSize)
	copy(h, headerCookie)
	binary.BigEndian.PutUint64(h[8:], 0xFFFFFFFFFFFFFFFF)
	binary.BigEndian.PutUint64(h[16:], FooterSize+headerSize)
	binary.BigEndian.PutUint32(h[24:], headerVersion)
	binary.BigEndian.PutUint32(h[28:], uint32(entries))
	binary.BigEndian.PutUint32(h[32:], uint32(blockSize))
	for i, c := range "parent.vhd" {
		binary.BigEndian.PutUint16(h[64+2*i:], uint16(c))
	}
	binary.BigEndian.PutUint32(h[36:], checksum(h, 36))
	img = append(img, h...)
	bat := make([]byte, batLen)
	for i := range bat {
		bat[i] = 0xff
	}
	batAt := len(img)
	img = append(img, bat...)
	d := dynImage{blockAt: map[int]int{}}
	for i := 0; i < entries; i++ {
		data, ok := blocks[i]
		if !ok {
			continue
		}
		d.blockAt[i] = len(img)
		binary.BigEndian.PutUint32(img[batAt+4*i:], uint32(len(img)/512))
		for j := 0; j < bitmapLen; j++ {
			img = append(img, 0xff)
		}
		block := make([]byte, blockSize)
		copy(block, data)
		img = append(img, block...)
	}
	d.img = append(img, foot...)
	return d
}

// editFooters rewrites both footer copies of a dynamic image.
func editFooters(img []byte, edit func(*Footer)) {
	for _, at := range []int{0, len(img) - FooterSize} {
		f, err := ParseFooter(img[at:])
		if err != nil {
			panic(err)
		}
		edit(f)
		b, _ := f.MarshalBinary()
		copy(img[at:], b)
	}
}

// inExtents tells whether off lies in one of exts.
func inExtents(exts []raw.Extent, off int64) bool {
	for _, e := range exts {
		if off >= e.Offset && off < e.End() {
			return true
		}
	}
	return false
}

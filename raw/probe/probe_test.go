package probe

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// blkid is the oracle: what `blkid -p` says of a file.
func blkid(t *testing.T, path string) map[string]string {
	t.Helper()
	out, _ := exec.Command("blkid", "-p", "-o", "export", path).Output()
	kv := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = v
		}
	}
	return kv
}

func probeFile(t *testing.T, path string) Result {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	res, err := Probe(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestAgreesWithBlkid(t *testing.T) {
	testimage.RequireTools(t, "blkid", "mkfs.xfs", "genisoimage")
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	os.WriteFile(key, []byte("passphrase"), 0o600)
	luks := []string{"cryptsetup", "luksFormat", "-q", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", key, "--uuid", "0c1a2b3c-0000-4000-8000-123456789abc"}
	cases := map[string]struct {
		size int64
		cmd  []string
	}{
		"ext2":   {8 << 20, []string{"mkfs.ext2", "-q", "-F", "-L", "boot", "-U", "11111111-2222-3333-4444-555555555555"}},
		"ext3":   {8 << 20, []string{"mkfs.ext3", "-q", "-F", "-L", "data"}},
		"ext4":   {8 << 20, []string{"mkfs.ext4", "-q", "-F", "-L", "root"}},
		"xfs":    {320 << 20, []string{"mkfs.xfs", "-q", "-f", "-L", "xroot", "-m", "uuid=6b8f4c64-1c1e-4f0e-9a0b-0000000000aa"}},
		"fat12":  {2 << 20, []string{"mkfs.vfat", "-F", "12", "-n", "ESP12", "-i", "1234abcd"}},
		"fat16":  {32 << 20, []string{"mkfs.vfat", "-F", "16", "-n", "ESP16"}},
		"fat32":  {64 << 20, []string{"mkfs.vfat", "-F", "32", "-n", "EFI"}},
		"swap":   {8 << 20, []string{"mkswap", "-L", "swap0", "-U", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"}},
		"noname": {32 << 20, []string{"mkfs.vfat", "-F", "16"}},
		"xfs-v4": {320 << 20, []string{"mkfs.xfs", "-q", "-f", "-m", "crc=0", "-L", "old"}},
		"btrfs":  {128 << 20, []string{"mkfs.btrfs", "-q", "-f", "-L", "data", "-U", "11111111-2222-3333-4444-666666666666"}},
		"luks1":  {20 << 20, append(luks, "--type", "luks1")},
		"luks2":  {20 << 20, append(luks, "--type", "luks2", "--label", "cryptroot")},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			testimage.RequireTools(t, c.cmd[0])
			path := filepath.Join(dir, name)
			os.WriteFile(path, nil, 0o644)
			os.Truncate(path, c.size)
			if out, err := exec.Command(c.cmd[0], append(c.cmd[1:], path)...).CombinedOutput(); err != nil {
				t.Fatalf("%v: %v\n%s", c.cmd, err, out)
			}
			got, want := probeFile(t, path), blkid(t, path)
			if got.Type != want["TYPE"] || got.UUID != want["UUID"] || got.Label != want["LABEL"] || (want["VERSION"] != "" && got.Version != want["VERSION"]) {
				t.Fatalf("probe = %+v; blkid = %v", got, want)
			}
		})
	}
	if got := probeFile(t, filepath.Join(dir, "xfs-v4")); got.Version != "4" {
		t.Errorf("mkfs.xfs -m crc=0 probes as XFS version %q, want 4", got.Version)
	}
	if got := probeFile(t, filepath.Join(dir, "xfs")); got.Version != "5" {
		t.Errorf("mkfs.xfs probes as XFS version %q, want 5", got.Version)
	}
	// Version 0 swap can no longer be made by mkswap: write its signature.
	swap0 := filepath.Join(dir, "swap0")
	os.WriteFile(swap0, append(make([]byte, 4086), "SWAP-SPACE"...), 0o644)
	os.Truncate(swap0, 1<<20)
	if got, want := probeFile(t, swap0), blkid(t, swap0); got.Type != "swap" || got.Version != "0" || want["TYPE"] != "swap" || want["VERSION"] != got.Version {
		t.Errorf("old swap: probe %+v, blkid %v", got, want)
	}
	iso := filepath.Join(dir, "cd.iso")
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "ovf-env.xml"), []byte("<x/>"), 0o644)
	if out, err := exec.Command("genisoimage", "-quiet", "-V", "rd_rdfe_stable", "-o", iso, src).CombinedOutput(); err != nil {
		t.Fatalf("genisoimage: %v %s", err, out)
	}
	if got, want := probeFile(t, iso), blkid(t, iso); got.Type != "iso9660" || got.Label != want["LABEL"] {
		t.Fatalf("iso: probe %+v, blkid %v", got, want)
	}
}

func TestHandMadeSignatures(t *testing.T) {
	luks := make([]byte, 64<<10)
	copy(luks, "LUKS\xba\xbe\x00\x02")
	copy(luks[24:], "cryptroot")
	copy(luks[168:], "0c1a2b3c-0000-4000-8000-123456789abc")
	lvm := make([]byte, 64<<10)
	copy(lvm[512:], "LABELONE")
	lvm[512+20] = 32 // the PV header's offset in the label sector
	copy(lvm[512+24:], "LVM2 001")
	copy(lvm[512+32:], "abcdefghijklmnopqrstuvwxyz012345")
	for name, c := range map[string]struct {
		b    []byte
		want Result
	}{
		"luks2": {luks, Result{Type: LUKS, Version: "2", Label: "cryptroot", UUID: "0c1a2b3c-0000-4000-8000-123456789abc"}},
		"lvm":   {lvm, Result{Type: LVM, Version: "LVM2 001", UUID: "abcdef-ghij-klmn-opqr-stuv-wxyz-012345"}},
		"zeros": {make([]byte, 1<<20), Result{}},
		"tiny":  {[]byte("x"), Result{}},
	} {
		got, err := Probe(bytes.NewReader(c.b), int64(len(c.b)))
		if err != nil || got != c.want {
			t.Errorf("%s: %+v, %v; want %+v", name, got, err, c.want)
		}
	}
}

// placed is a volume of zeros with b at off: it lets fuzz inputs stay
// small while reaching signatures that sit far into a volume.
type placed struct {
	off int64
	b   []byte
}

func (p placed) ReadAt(buf []byte, off int64) (int, error) {
	clear(buf)
	if lo, hi := max(off, p.off), min(off+int64(len(buf)), p.off+int64(len(p.b))); lo < hi {
		copy(buf[lo-off:hi-off], p.b[lo-p.off:hi-p.off])
	}
	return len(buf), nil
}

// Where signatures live: the start, the ext superblock, ISO9660's volume
// descriptors, btrfs's superblock.
var fuzzRegions = []int64{0, extSuperOff, isoDescriptorOff, btrfsSuperOff}

// sig returns size zero bytes with each string written at its offset.
func sig(size int, at map[int]string) []byte {
	b := make([]byte, size)
	for off, s := range at {
		copy(b[off:], s)
	}
	return b
}

func FuzzProbe(f *testing.F) {
	// region, extra size past the placed bytes, the placed bytes
	f.Add(uint8(0), uint16(0), make([]byte, 4096))
	f.Add(uint8(1), uint16(0), sig(1024, map[int]string{56: "\x53\xef", 92: "\x04"})) // ext3
	f.Add(uint8(0), uint16(0), sig(512, map[int]string{0: "XFSB", 100: "\xb4\xa5", 108: "root"}))
	f.Add(uint8(0), uint16(0), sig(512, map[int]string{11: "\x00\x02\x08", 16: "\x02", 54: "FAT12", 510: "\x55\xaa"}))
	f.Add(uint8(0), uint16(0), sig(512, map[int]string{11: "\x00\x02\x08", 16: "\x02", 71: "EFI        ", 510: "\x55\xaa"}))
	f.Add(uint8(3), uint16(0), sig(0x300, map[int]string{0x40: "_BHRfS_M"}))
	f.Add(uint8(2), uint16(0), sig(2048, map[int]string{1: "CD001", 40: "CDROM"}))
	f.Add(uint8(0), uint16(0), sig(4096, map[int]string{1024: "\x01", 4086: "SWAPSPACE2"}))
	f.Add(uint8(0), uint16(0), sig(1024, map[int]string{0: "LUKS\xba\xbe\x00\x01", 168: "0c1a2b3c-0000-4000-8000-123456789abc"}))
	f.Add(uint8(0), uint16(0), sig(2048, map[int]string{512: "LABELONE", 532: "\x20", 536: "LVM2 001"}))
	f.Fuzz(func(t *testing.T, region uint8, extra uint16, b []byte) {
		off := fuzzRegions[int(region)%len(fuzzRegions)]
		Probe(placed{off, b}, off+int64(len(b))+int64(extra))
	})
}

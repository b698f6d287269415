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

func FuzzProbe(f *testing.F) {
	f.Add(make([]byte, 4096))
	f.Add(append(make([]byte, 1080), 0x53, 0xef))
	f.Fuzz(func(t *testing.T, b []byte) {
		Probe(bytes.NewReader(b), int64(len(b)))
	})
}

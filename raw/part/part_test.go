package part

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

const mib = 1 << 20

// sfdiskImage makes a sparse disk of size bytes partitioned by sfdisk from
// script.
func sfdiskImage(t testing.TB, size int64, script string) string {
	t.Helper()
	testimage.RequireTools(t, "sfdisk")
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.Truncate(createEmpty(t, path), size); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sfdisk", "-q", path)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	return path
}

func createEmpty(t testing.TB, path string) string {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

func readTable(t *testing.T, path string) *Table {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestMBR(t *testing.T) {
	t.Parallel()
	tab := readTable(t, sfdiskImage(t, 64*mib, "label: dos\nlabel-id: 0x1dea5e11\n1MiB,20MiB,L,*\n,10MiB,S\n,,8e\n"))
	if tab.Scheme != SchemeMBR || tab.DiskID != "1dea5e11" || len(tab.Partitions) != 3 || len(tab.Warnings) != 0 {
		t.Fatalf("table = %+v", tab)
	}
	p := tab.Partitions
	if p[0].Start != mib || p[0].Size != 20*mib || !p[0].Bootable || p[0].Type != "0x83" || p[0].UUID != "1dea5e11-01" {
		t.Errorf("partition 1 = %+v", p[0])
	}
	if !p[1].IsSwap() || p[1].TypeName != "Linux swap" || !p[2].IsLVM() || p[2].End() != 64*mib {
		t.Errorf("partitions 2, 3 = %+v %+v", p[1], p[2])
	}
	if tab.End() != 64*mib {
		t.Errorf("End = %d", tab.End())
	}
}

func TestExtendedAndLogical(t *testing.T) {
	t.Parallel()
	tab := readTable(t, sfdiskImage(t, 64*mib, "label: dos\n1MiB,20MiB,L\n,,E\n,10MiB,L\n,10MiB,S\n,,L\n"))
	var nums []int
	for _, p := range tab.Partitions {
		nums = append(nums, p.Number)
	}
	if len(nums) != 5 || nums[0] != 1 || nums[1] != 2 || nums[2] != 5 || nums[3] != 6 || nums[4] != 7 {
		t.Fatalf("partition numbers %v, want [1 2 5 6 7]; %+v", nums, tab)
	}
	if !tab.Partitions[1].IsExtended() || !tab.Partitions[3].IsSwap() || !tab.Partitions[3].Logical {
		t.Errorf("types wrong: %+v", tab.Partitions)
	}
}

func TestSfdiskAgrees(t *testing.T) {
	t.Parallel()
	for _, script := range []string{
		"label: dos\n1MiB,20MiB,L\n,,E\n,10MiB,L\n,10MiB,S\n,,L\n",
		"label: gpt\n,1MiB,21686148-6449-6E6F-744E-656564454649\n,20MiB,U\n,,L\n",
	} {
		path := sfdiskImage(t, 64*mib, script)
		tab := readTable(t, path)
		out, err := exec.Command("sfdisk", "-d", path).Output()
		if err != nil {
			t.Fatal(err)
		}
		var starts []string
		for _, line := range strings.Split(string(out), "\n") {
			if i := strings.Index(line, "start="); i >= 0 {
				starts = append(starts, strings.Fields(strings.TrimSuffix(line[i+6:], ","))[0])
			}
		}
		if len(starts) != len(tab.Partitions) {
			t.Fatalf("sfdisk sees %d partitions, we see %d", len(starts), len(tab.Partitions))
		}
		for i, p := range tab.Partitions {
			if got := strings.TrimSuffix(starts[i], ","); got != strconv.FormatInt(p.Start/512, 10) {
				t.Errorf("partition %d starts at sector %d, sfdisk says %s", p.Number, p.Start/512, got)
			}
		}
	}
}

func TestGPT(t *testing.T) {
	t.Parallel()
	path := sfdiskImage(t, 64*mib, "label: gpt\nlabel-id: 11111111-2222-3333-4444-555555555555\nsize=1MiB, type=21686148-6449-6E6F-744E-656564454649\nsize=20MiB, type=U, name=esp\ntype=L, uuid=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, name=root\n")
	tab := readTable(t, path)
	if tab.Scheme != SchemeGPT || !tab.Protective || tab.Hybrid || tab.BackupUsed || len(tab.Warnings) != 0 {
		t.Fatalf("table = %+v", tab)
	}
	if tab.DiskID != "11111111-2222-3333-4444-555555555555" {
		t.Errorf("disk GUID %s", tab.DiskID)
	}
	p := tab.Partitions
	if !p[0].IsBIOSBoot() || !p[1].IsESP() || p[1].Name != "esp" || p[2].UUID != "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee" || p[2].TypeName != "Linux filesystem" {
		t.Errorf("partitions = %+v", p)
	}
}

func TestGPTDamagedPrimaryUsesBackup(t *testing.T) {
	t.Parallel()
	path := sfdiskImage(t, 64*mib, "label: gpt\n,20MiB,L\n,,L\n")
	b, _ := os.ReadFile(path)
	copy(b[512:1024], make([]byte, 512)) // wipe the primary header
	tab, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if !tab.BackupUsed || len(tab.Partitions) != 2 || len(tab.Warnings) == 0 {
		t.Fatalf("table = %+v", tab)
	}
	// Both damaged: an error, not a guess.
	copy(b[len(b)-512:], make([]byte, 512))
	if _, err := Read(bytes.NewReader(b), int64(len(b))); err == nil {
		t.Fatal("a GPT with both headers wiped was read")
	}
}

func TestGPTCorruptEntriesAndGrownDisk(t *testing.T) {
	t.Parallel()
	path := sfdiskImage(t, 64*mib, "label: gpt\n,20MiB,L\n")
	b, _ := os.ReadFile(path)
	grown := append(append([]byte{}, b...), make([]byte, 16*mib)...)
	tab, err := Read(bytes.NewReader(grown), int64(len(grown)))
	if err != nil || len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "resized") {
		t.Fatalf("grown disk: %v %+v", err, tab)
	}
	b[1024+40] ^= 0xff // a partition entry byte: the array CRC no longer matches
	tab, err = Read(bytes.NewReader(b), int64(len(b)))
	if err != nil || !tab.BackupUsed {
		t.Fatalf("corrupt primary entries: %v %+v", err, tab)
	}
}

func TestEBRLoopAndPartitionPastEnd(t *testing.T) {
	t.Parallel()
	path := sfdiskImage(t, 64*mib, "label: dos\n1MiB,20MiB,L\n,,E\n,10MiB,L\n,10MiB,L\n")
	b, _ := os.ReadFile(path)
	tab := readTable(t, path)
	second := tab.Partitions[3].Start - 2048*512 // sfdisk leaves 1 MiB before each logical
	// Point the second EBR's link back at itself.
	ext := tab.Partitions[1].Start
	ebr2 := second
	binary.LittleEndian.PutUint32(b[ebr2+446+16+8:], uint32((ebr2-ext)/512))
	b[ebr2+446+16+4] = 0x05
	tab, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil || !strings.Contains(strings.Join(tab.Warnings, ";"), "loops") {
		t.Fatalf("looping EBR chain: %v %+v", err, tab)
	}
	// The disk was truncated: partition 1 now ends past its end.
	short := b[:10*mib]
	tab, err = Read(bytes.NewReader(short), int64(len(short)))
	if err != nil || !strings.Contains(strings.Join(tab.Warnings, ";"), "past the end") {
		t.Fatalf("partition past the end: %v %+v", err, tab)
	}
}

func TestNoTable(t *testing.T) {
	t.Parallel()
	b := make([]byte, 4*mib)
	tab, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil || tab.Scheme != SchemeNone {
		t.Fatalf("blank disk: %v %+v", err, tab)
	}
}

// memDisk is an in-memory ReadWriterAt.
type memDisk []byte

func (m memDisk) ReadAt(p []byte, off int64) (int, error) { return bytes.NewReader(m).ReadAt(p, off) }
func (m memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, fmt.Errorf("write of %d bytes at %d past the end of a %d-byte disk", len(p), off, len(m))
	}
	return copy(m[off:], p), nil
}

func TestMoveGPTBackupSatisfiesSfdisk(t *testing.T) {
	t.Parallel()
	testimage.RequireTools(t, "sgdisk")
	path := sfdiskImage(t, 40*mib, "label: gpt\n,10MiB,L\n,10MiB,S\n")
	before, _ := exec.Command("sfdisk", "-d", path).Output()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 * mib); err != nil {
		t.Fatal(err)
	}
	if err := MoveGPTBackup(f, 64*mib); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command("sfdisk", "--verify", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No errors detected") || strings.Contains(string(out), "mismatch") {
		t.Fatalf("sfdisk --verify after MoveGPTBackup: %v\n%s", err, out)
	}
	after, _ := exec.Command("sfdisk", "-d", path).Output()
	strip := func(b []byte) string {
		var keep []string
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, "last-lba") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if strip(before) != strip(after) {
		t.Fatalf("partitions changed:\n%s\n---\n%s", before, after)
	}
	out, err = exec.Command("sgdisk", "-v", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") {
		t.Fatalf("sgdisk -v after MoveGPTBackup: %v\n%s", err, out)
	}
	tab := readTable(t, path)
	if len(tab.Warnings) != 0 {
		t.Fatalf("warnings after the move: %v", tab.Warnings)
	}
	// Shrinking into the last partition is refused.
	d := memDisk(mustRead(t, path))
	if err := MoveGPTBackup(d, 21*mib); err == nil {
		t.Fatal("moving the backup into the last partition was accepted")
	}
}

func mustRead(t testing.TB, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fdisk4K makes a 64 MiB disk with 4096-byte sectors partitioned by fdisk
// (sfdisk 2.38 has no sector-size option): an 8 MiB ESP and a Linux
// partition filling the rest.
func fdisk4K(t *testing.T) string {
	t.Helper()
	testimage.RequireTools(t, "fdisk")
	path := filepath.Join(t.TempDir(), "disk4k.img")
	if err := os.Truncate(createEmpty(t, path), 64*mib); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("fdisk", "-b", "4096", path)
	cmd.Stdin = strings.NewReader("g\nn\n\n\n+8M\nt\n1\nn\n\n\n\nw\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fdisk: %v\n%s", err, out)
	}
	return path
}

func TestGPT4KSectors(t *testing.T) {
	t.Parallel()
	path := fdisk4K(t)
	tab := readTable(t, path)
	if tab.Scheme != SchemeGPT || tab.SectorSize != 4096 || !tab.Protective || len(tab.Warnings) != 0 || len(tab.Partitions) != 2 {
		t.Fatalf("table = %+v", tab)
	}
	p := tab.Partitions
	if !p[0].IsESP() || p[0].Start != mib || p[0].Size != 8*mib || p[1].Start != 9*mib || p[1].TypeName != "Linux filesystem" {
		t.Errorf("partitions = %+v", p)
	}
	b := mustRead(t, path)
	copy(b[4096:8192], make([]byte, 4096))
	damaged, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil || !damaged.BackupUsed || damaged.SectorSize != 4096 || len(damaged.Partitions) != 2 || damaged.Partitions[1].Start != 9*mib {
		t.Fatalf("4K disk with its primary header wiped: %v %+v", err, damaged)
	}
}

func TestMoveGPTBackup4K(t *testing.T) {
	t.Parallel()
	path := fdisk4K(t)
	before := readTable(t, path)
	if err := os.Truncate(path, 80*mib); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := MoveGPTBackup(f, 80*mib); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("fdisk", "-b", "4096", "-l", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "mismatch") || strings.Contains(string(out), "not on the end") {
		t.Fatalf("fdisk -l after the move: %v\n%s", err, out)
	}
	after := readTable(t, path)
	if len(after.Warnings) != 0 || after.BackupUsed || len(after.Partitions) != len(before.Partitions) || after.Partitions[1] != before.Partitions[1] {
		t.Fatalf("after the move: %+v, before: %+v", after, before)
	}
	// The backup alone must now describe the same disk.
	b := mustRead(t, path)
	copy(b[4096:8192], make([]byte, 4096))
	backup, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil || !backup.BackupUsed || backup.Partitions[1] != before.Partitions[1] {
		t.Fatalf("the moved backup: %v %+v", err, backup)
	}
}

func TestHybridMBR(t *testing.T) {
	t.Parallel()
	testimage.RequireTools(t, "sgdisk")
	path := sfdiskImage(t, 64*mib, "label: gpt\n,8MiB,L\n,8MiB,S\n")
	// sgdisk -h puts GPT partition 1 into the MBR beside the 0xEE entry.
	if out, err := exec.Command("sgdisk", "-h", "1:EE", path).CombinedOutput(); err != nil {
		t.Fatalf("sgdisk -h: %v\n%s", err, out)
	}
	tab := readTable(t, path)
	if tab.Scheme != SchemeGPT || !tab.Protective || !tab.Hybrid || len(tab.Partitions) != 2 || !tab.Partitions[1].IsSwap() {
		t.Fatalf("table = %+v", tab)
	}
	// Growing keeps the hybrid MBR as it is, as sgdisk -e does.
	mbrBefore := mustRead(t, path)[:512]
	d := memDisk(append(mustRead(t, path), make([]byte, 16*mib)...))
	if err := MoveGPTBackup(d, int64(len(d))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d[:512], mbrBefore) {
		t.Fatal("MoveGPTBackup changed a hybrid MBR")
	}
	if err := os.WriteFile(path, d, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sgdisk", "-v", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") {
		t.Fatalf("sgdisk -v after moving a hybrid GPT's backup: %v\n%s", err, out)
	}
}

func TestGPTWithoutProtectiveMBR(t *testing.T) {
	t.Parallel()
	b := mustRead(t, sfdiskImage(t, 64*mib, "label: gpt\n,8MiB,L\n"))
	copy(b[:512], make([]byte, 512))
	tab, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil || tab.Scheme != SchemeGPT || tab.Protective || len(tab.Partitions) != 1 || len(tab.Warnings) != 1 {
		t.Fatalf("GPT without an MBR: %v %+v", err, tab)
	}
}

// A FAT filesystem written to a whole disk ends its boot sector in 55 AA
// too; it has no partition table.
func TestWholeDiskFAT(t *testing.T) {
	t.Parallel()
	testimage.RequireTools(t, "mkfs.vfat")
	path := filepath.Join(t.TempDir(), "fat.img")
	if out, err := exec.Command("mkfs.vfat", "-C", path, "8192").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v\n%s", err, out)
	}
	if tab := readTable(t, path); tab.Scheme != SchemeNone {
		t.Fatalf("a FAT superfloppy read as %+v", tab)
	}
}

// An EBR whose own entry is empty only links on: Linux gives the next
// logical partition the number it would have had.
func TestEmptyEBRTakesNoNumber(t *testing.T) {
	t.Parallel()
	path := sfdiskImage(t, 64*mib, "label: dos\n1MiB,20MiB,L\n,,E\n,10MiB,L\n,10MiB,S\n")
	tab := readTable(t, path)
	b := mustRead(t, path)
	ebr5 := tab.Partitions[2].Start - mib // sfdisk puts each EBR 1 MiB before its partition
	copy(b[ebr5+446:ebr5+446+16], make([]byte, 16))
	tab, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil || len(tab.Partitions) != 3 || tab.Partitions[2].Number != 5 || !tab.Partitions[2].IsSwap() {
		t.Fatalf("after emptying the first EBR: %v %+v", err, tab)
	}
}

func TestOverlapsAreWarnings(t *testing.T) {
	t.Parallel()
	path := sfdiskImage(t, 64*mib, "label: dos\n1MiB,20MiB,L\n,10MiB,L\n,,E\n,10MiB,L\n")
	b := mustRead(t, path)
	// Partition 2 starts inside partition 1; partition 5 is moved past the
	// extended partition's end.
	binary.LittleEndian.PutUint32(b[446+16+8:], 2048+100)
	tab := readTable(t, path)
	ebr := tab.Partitions[3].Start - mib
	binary.LittleEndian.PutUint32(b[ebr+446+8:], 200*2048)
	tab, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(tab.Warnings, ";")
	if len(tab.Partitions) != 4 || !strings.Contains(w, "partitions 1 and 2 overlap") || !strings.Contains(w, "logical partition 5 lies outside extended partition 3") {
		t.Fatalf("warnings %q, partitions %+v", tab.Warnings, tab.Partitions)
	}
}

package part_test

import (
	"os"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/qcow2"
	"github.com/vhdprep/vhdprep/raw/part"
	"github.com/vhdprep/vhdprep/vhd"
)

const mib = 1 << 20

// want is one partition a recipe makes.
type want struct {
	number      int
	start, size int64
	typ, uuid   string
	logical     bool
}

func readRecipe(t *testing.T, name string) *part.Table {
	t.Helper()
	f, err := os.Open(testimage.Path(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	tab, err := part.Read(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func checkPartitions(t *testing.T, tab *part.Table, ws []want) {
	t.Helper()
	if len(tab.Partitions) != len(ws) {
		t.Fatalf("%d partitions, want %d: %+v", len(tab.Partitions), len(ws), tab.Partitions)
	}
	for i, w := range ws {
		p := tab.Partitions[i]
		if p.Number != w.number || p.Start != w.start || p.Size != w.size || p.Type != w.typ || p.UUID != w.uuid || p.Logical != w.logical {
			t.Errorf("partition %d = %+v, want %+v", i, p, w)
		}
	}
	if len(tab.Warnings) != 0 {
		t.Errorf("warnings: %v", tab.Warnings)
	}
}

func TestRecipeDebianMBR(t *testing.T) {
	tab := readRecipe(t, "disk-debian-mbr")
	if tab.Scheme != part.SchemeMBR || tab.DiskID != "1dea5e11" || !tab.Partitions[0].Bootable {
		t.Fatalf("table = %+v", tab)
	}
	checkPartitions(t, tab, []want{{1, mib, 95 * mib, "0x83", "1dea5e11-01", false}})
}

// The qcow2 and dynamic VHD copies hold the same table, read through their
// format readers.
func TestRecipeDebianMBRContainers(t *testing.T) {
	for _, name := range []string{"disk-debian-mbr-qcow2", "disk-debian-mbr-vhd"} {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(testimage.Path(t, name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			var tab *part.Table
			if name == "disk-debian-mbr-qcow2" {
				im, err := qcow2.Open(f, st.Size())
				if err != nil {
					t.Fatal(err)
				}
				tab, err = part.Read(im, im.Size())
				if err != nil {
					t.Fatal(err)
				}
			} else {
				d, err := vhd.OpenDynamic(f, st.Size())
				if err != nil {
					t.Fatal(err)
				}
				tab, err = part.Read(d, d.Size())
				if err != nil {
					t.Fatal(err)
				}
			}
			if tab.DiskID != "1dea5e11" {
				t.Fatalf("table = %+v", tab)
			}
			checkPartitions(t, tab, []want{{1, mib, 95 * mib, "0x83", "1dea5e11-01", false}})
		})
	}
}

func TestRecipeUbuntuGPT(t *testing.T) {
	tab := readRecipe(t, "disk-ubuntu-gpt")
	if tab.Scheme != part.SchemeGPT || tab.SectorSize != 512 || !tab.Protective || tab.Hybrid || tab.BackupUsed ||
		tab.DiskID != "0b0b0000-0000-4000-8000-0000000d15c0" {
		t.Fatalf("table = %+v", tab)
	}
	checkPartitions(t, tab, []want{
		{1, 1 * mib, 1 * mib, "21686148-6449-6e6f-744e-656564454649", "0b0b0000-0000-4000-8000-0000000000b1", false},
		{2, 2 * mib, 32 * mib, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "0b0b0000-0000-4000-8000-0000000000e1", false},
		{3, 34 * mib, 64 * mib, "bc13c2ff-59e6-4262-a352-b275fd6f7172", "0b0b0000-0000-4000-8000-0000000000b0", false},
		{4, 98 * mib, 96 * mib, "0fc63daf-8483-4772-8e79-3d69d8477de4", "0b0b0000-0000-4000-8000-0000000000f1", false},
	})
	p := tab.Partitions
	if !p[0].IsBIOSBoot() || !p[1].IsESP() || p[2].TypeName != "Linux extended boot" || p[3].Name != "root" {
		t.Errorf("kinds: %+v", p)
	}
}

func TestRecipeMBRLogical(t *testing.T) {
	tab := readRecipe(t, "disk-mbr-logical")
	if tab.Scheme != part.SchemeMBR || tab.DiskID != "10910000" {
		t.Fatalf("table = %+v", tab)
	}
	// sfdisk leaves 1 MiB before each logical partition for its EBR.
	checkPartitions(t, tab, []want{
		{1, 1 * mib, 64 * mib, "0x83", "10910000-01", false},
		{2, 65 * mib, 47 * mib, "0x05", "10910000-02", false},
		{5, 66 * mib, 16 * mib, "0x82", "10910000-05", true},
		{6, 83 * mib, 16 * mib, "0x83", "10910000-06", true},
	})
	if !tab.Partitions[1].IsExtended() || !tab.Partitions[2].IsSwap() || tab.End() != 112*mib {
		t.Errorf("kinds: %+v, end %d", tab.Partitions, tab.End())
	}
}

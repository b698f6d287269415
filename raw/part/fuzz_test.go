package part

import (
	"bytes"
	"testing"
)

// Seeds are tiny real disks (sfdisk and fdisk accept sector-sized
// partitions and short GPT entry arrays), so the fuzzer mutates tables,
// not megabytes of zeros, and minimizes new inputs quickly. No branch may
// depend on the input's length alone: the fuzzer would find it with a
// megabyte input and spend minutes minimizing it.

func seedSfdisk(f *testing.F, size int64, script string) {
	f.Add(mustRead(f, sfdiskImage(f, size, script)))
}

// checkTable asserts what every successful Read promises.
func checkTable(t *testing.T, tab *Table) {
	if tab.SectorSize != 512 && tab.SectorSize != 4096 {
		t.Fatalf("sector size %d", tab.SectorSize)
	}
	seen := map[int]bool{}
	for _, p := range tab.Partitions {
		if p.Start < 0 || p.Size <= 0 || p.End() < p.Start || seen[p.Number] || p.Number < 1 || p.Logical != (p.Number >= firstLogicalNum && tab.Scheme == SchemeMBR) {
			t.Fatalf("partition %+v in %+v", p, tab)
		}
		seen[p.Number] = true
	}
	if tab.End() < 0 {
		t.Fatalf("End %d", tab.End())
	}
}

func FuzzReadMBR(f *testing.F) {
	seedSfdisk(f, 8<<10, "label: dos\nlabel-id: 0x1dea5e11\nstart=1, size=2, type=L, bootable\nstart=3, type=E\nsize=2, type=L\ntype=S\n")
	seedSfdisk(f, 2<<10, "label: dos\nstart=1, size=1, type=83\nstart=2, size=1, type=8e\nstart=3, type=82\n")
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		checkTable(t, tab)
		if tab.Scheme == SchemeMBR && len(tab.Partitions) > mbrPrimaryCount+maxLogicals {
			t.Fatalf("%d partitions", len(tab.Partitions))
		}
	})
}

// FuzzReadGPT reads a disk and, when it holds a GPT, grows it by a few
// sectors and moves the backup: the moved table must read back the same,
// from the primary and from the backup alone.
func FuzzReadGPT(f *testing.F) {
	seedSfdisk(f, 4<<10, "label: gpt\ntable-length: 4\nfirst-lba: 3\nstart=3, size=1, type=L, name=root\nstart=4, size=2, type=S\n")
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		checkTable(t, tab)
		if tab.Scheme != SchemeGPT || tab.BackupUsed {
			return
		}
		ss := int64(tab.SectorSize)
		d := memDisk(append(append([]byte{}, b...), make([]byte, 8*ss)...))
		if MoveGPTBackup(d, int64(len(d))) != nil {
			return
		}
		moved, err := Read(bytes.NewReader(d), int64(len(d)))
		if err != nil || moved.BackupUsed || len(moved.Partitions) != len(tab.Partitions) {
			t.Fatalf("after the move: %v %+v; before %+v", err, moved, tab)
		}
		copy(d[ss:2*ss], make([]byte, ss))
		backup, err := Read(bytes.NewReader(d), int64(len(d)))
		if err != nil || !backup.BackupUsed || len(backup.Partitions) != len(tab.Partitions) {
			t.Fatalf("the moved backup alone: %v %+v; before %+v", err, backup, tab)
		}
	})
}

package part

import (
	"bytes"
	"os"
	"testing"
)

// seedDisk adds a small real disk sfdisk partitioned.
func seedDisk(f *testing.F, script string) {
	path := sfdiskImage(f, 256<<10, script)
	if b, err := os.ReadFile(path); err == nil {
		f.Add(b)
	}
}

func FuzzReadMBR(f *testing.F) {
	seedDisk(f, "label: dos\n64,64,L,*\n,,E\n,32,L\n,,S\n")
	mbr := make([]byte, 4096)
	mbr[510], mbr[511] = 0x55, 0xaa
	f.Add(mbr)
	f.Fuzz(func(t *testing.T, b []byte) {
		if tab, err := Read(bytes.NewReader(b), int64(len(b))); err == nil {
			tab.End()
		}
	})
}

func FuzzReadGPT(f *testing.F) {
	seedDisk(f, "label: gpt\nsize=64, type=L\ntype=S\n")
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		d := memDisk(append([]byte{}, b...))
		MoveGPTBackup(d, int64(len(d)))
		_ = tab
	})
}

package ext4

import (
	"encoding/binary"
	"errors"
	"testing"
)

// dirent encodes one ext4_dir_entry_2.
func dirent(ino uint32, recLen uint16, nameLen uint8, name string) []byte {
	b := make([]byte, max(int(recLen), 8+len(name)))
	binary.LittleEndian.PutUint32(b, ino)
	binary.LittleEndian.PutUint16(b[4:], recLen)
	b[6], b[7] = nameLen, 1
	copy(b[8:], name)
	return b
}

func TestParseDirBlock(t *testing.T) {
	f := &FS{bs: 1024, incompat: incompatFiletype}
	block := func(ents ...[]byte) []byte {
		var b []byte
		for _, e := range ents {
			b = append(b, e...)
		}
		return b
	}
	ents, err := f.parseDirBlock(nil, block(dirent(2, 12, 1, "."), dirent(2, 12, 2, ".."), dirent(12, 16, 5, "hello"), dirent(0, 984, 0, "")), 2)
	if err != nil || len(ents) != 1 || ents[0].Name != "hello" || ents[0].Ino != 12 {
		t.Fatalf("%+v %v", ents, err)
	}
	for name, b := range map[string][]byte{
		// Found by FuzzExt4: an unused entry whose name length runs past its record.
		"unused entry with a long name": block(dirent(0, 12, 255, ""), dirent(0, 1012, 0, "")),
		"record past the block":         block(dirent(11, 12, 1, "a"), dirent(12, 1016, 1, "b"))[:1024],
		"name past the record":          block(dirent(11, 12, 9, "a"), dirent(0, 1012, 0, "")),
		"record too short":              block(dirent(11, 4, 1, "a")),
		"slash in a name":               block(dirent(11, 1024, 3, "a/b")),
	} {
		ents, err := f.parseDirBlock(nil, b, 2)
		if name == "unused entry with a long name" {
			if err != nil || len(ents) != 0 {
				t.Errorf("%s: %v %v", name, ents, err)
			}
			continue
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v %v", name, ents, err)
		}
	}
}

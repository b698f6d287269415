package vhdx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/disktest"
)

// makeEntry writes a log entry as Hyper-V does: a header sector with the
// descriptors, then a data sector for each data write, its first 8 and
// last 4 bytes moved into the descriptor.
func makeEntry(seq uint64, tail, flushed, last int64, guid [16]byte, writes []logWrite) []byte {
	le := binary.LittleEndian
	descSectors := (entryHeaderLen + descLen*int64(len(writes)) + logSector - 1) / logSector
	b := make([]byte, descSectors*logSector)
	copy(b, entrySig)
	le.PutUint32(b[12:], uint32(tail))
	le.PutUint64(b[16:], seq)
	le.PutUint32(b[24:], uint32(len(writes)))
	copy(b[32:], guid[:])
	le.PutUint64(b[48:], uint64(flushed))
	le.PutUint64(b[56:], uint64(last))
	for i, w := range writes {
		d := b[entryHeaderLen+descLen*i:]
		le.PutUint64(d[16:], uint64(w.off))
		le.PutUint64(d[24:], seq)
		if w.data == nil {
			copy(d, zeroSig)
			le.PutUint64(d[8:], uint64(w.length))
			continue
		}
		copy(d, descSig)
		copy(d[4:8], w.data[logSector-4:])
		copy(d[8:16], w.data[:8])
		s := make([]byte, logSector)
		copy(s, dataSig)
		le.PutUint32(s[4:], uint32(seq>>32))
		copy(s[8:], w.data[8:logSector-4])
		le.PutUint32(s[logSector-4:], uint32(seq))
		b = append(b, s...)
	}
	le.PutUint32(b[8:], uint32(len(b)))
	le.PutUint32(b[4:], crc32.Checksum(b, castagnoli))
	return b
}

// dirty is a compact image (blocks 0 and 2 present) whose log, in the
// MiB after its last block, holds what a crash left: a sequence of two
// entries that allocate block 1 in the BAT past the file's end, write its
// first and last sectors (so the file grows to hold it) and zero a sector
// of block 2, and an older entry of another sequence that must not be
// replayed. The entries say the file held flushed bytes; with wrap, the
// first entry wraps around the log's end.
func dirty(t *testing.T, flushed int64, wrap bool) []byte {
	le := binary.LittleEndian
	guid := [16]byte{0x10, 0x6c}
	b := compact(t, header2At, func(b []byte) {
		copy(b[header2At+0x30:], guid[:])
	})
	logAt := int64(le.Uint64(b[header2At+0x48:]))
	if int64(len(b)) != logAt {
		t.Fatalf("the compact image ends at %d, its log starts at %d", len(b), logAt)
	}
	batAt := int64(2 << 20)
	bat := bytes.Clone(b[batAt : batAt+logSector])
	blockAt := logAt + 1<<20
	le.PutUint64(bat[8:], uint64(blockAt)|blockPresent)
	data := make([]byte, logSector)
	copy(data, "logged!!")
	copy(data[logSector-6:], "tail!!")
	stale := make([]byte, logSector)
	copy(stale, "stale")

	log := make([]byte, 1<<20)
	aAt := int64(0)
	if wrap {
		aAt = int64(len(log)) - logSector
	}
	a := makeEntry(10, aAt, flushed, blockAt+1<<20, guid, []logWrite{{off: batAt, length: logSector, data: bat}})
	bb := makeEntry(11, aAt, flushed, blockAt+1<<20, guid, []logWrite{
		{off: blockAt, length: logSector, data: data},
		{off: blockAt + 1<<20 - logSector, length: logSector, data: data},
		{off: 4<<20 + 8192, length: logSector},
	})
	old := makeEntry(3, 512<<10, flushed, blockAt+1<<20, guid, []logWrite{{off: blockAt, length: logSector, data: stale}})
	for i := range a {
		log[(aAt+int64(i))%int64(len(log))] = a[i]
	}
	copy(log[(aAt+int64(len(a)))%int64(len(log)):], bb)
	copy(log[512<<10:], old)
	return append(b, log...)
}

// A log a crash left is replayed in memory, to the disk qemu-img reads
// once it has replayed the log into the file (qemu-img check -r all); the
// file is left as it was. The same entries wrapping around the log's end
// give the same disk (qemu-img, which replays only the wrapping entry,
// cannot be the oracle there).
func TestReplaysLog(t *testing.T) {
	b := dirty(t, 1<<20, false)
	before := bytes.Clone(b)
	im, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if im.Info().LogEntriesReplayed != 2 {
		t.Fatalf("%d entries replayed, want 2", im.Info().LogEntriesReplayed)
	}
	path := filepath.Join(t.TempDir(), "dirty.vhdx")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	disktest.Qemu(t, "check", "-r", "all", path)
	want := disktest.QemuRaw(t, "vhdx", path)
	if !bytes.Contains(want, []byte("logged!!")) || bytes.Contains(want, []byte("stale")) {
		t.Fatal("qemu-img did not replay the test's log as the test means it")
	}
	disktest.AssertSame(t, im, want)
	if !bytes.Equal(b, before) {
		t.Fatal("the replay changed the file's bytes")
	}
	w := dirty(t, 1<<20, true)
	im, err = Open(bytes.NewReader(w), int64(len(w)))
	if err != nil {
		t.Fatal(err)
	}
	disktest.AssertSame(t, im, want)
}

// A log without a valid sequence of entries, or whose entries say the file
// was longer, is refused, with what to do.
func TestRefusesBadLog(t *testing.T) {
	for name, c := range map[string]struct {
		flushed int64
		edit    func(b []byte, log int)
		want    string
	}{
		"checksums": {1 << 20, func(b []byte, log int) { b[log+100] ^= 1; b[log+512<<10+100] ^= 1 }, "no valid sequence"},
		"guid":      {1 << 20, func(b []byte, log int) { b[log+32] ^= 1; b[log+8192+32] ^= 1; b[log+512<<10+32] ^= 1 }, "no valid sequence"},
		"truncated": {64 << 20, func([]byte, int) {}, "truncated"},
	} {
		t.Run(name, func(t *testing.T) {
			b := dirty(t, c.flushed, false)
			c.edit(b, len(b)-1<<20)
			_, err := Open(bytes.NewReader(b), int64(len(b)))
			if !errors.Is(err, ErrLog) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "qemu-img check -r all") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

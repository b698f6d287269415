package vhdx

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/vhdprep/vhdprep/raw"
)

// The log (MS-VHDX 2.3): entries of 4 KiB sectors in a circular region,
// each a header and descriptors, then a data sector per data descriptor.
const (
	logSector      = 4 << 10
	entrySig       = "loge"
	zeroSig        = "zero"
	descSig        = "desc"
	dataSig        = "data"
	entryHeaderLen = 64
	descLen        = 32
	// maxLog bounds the log read into memory to replay it, and the work
	// of replaying: Hyper-V and qemu write 1 MiB logs.
	maxLog = 4 << 20
	// maxFileSize is above what any file holds: the disk, its sector
	// bitmaps and metadata.
	maxFileSize = 2 * maxVirtualSize
)

// logEntry is a valid log entry: where it is, and what it writes.
type logEntry struct {
	at, length    int64
	tail          int64
	seq           uint64
	flushed, last int64
	writes        []logWrite
}

// logWrite is a descriptor: data to write at a file offset, or, with data
// nil, length bytes of zeros.
type logWrite struct {
	off, length int64
	data        []byte
}

// replayed is the file as it is once its log is replayed, in memory: the
// log's writes over the file's bytes, and its size grown to what the log
// says. The file itself is never written.
type replayed struct {
	r     io.ReaderAt
	file  int64            // the file's own size
	size  int64            // the size after the replay
	pages map[int64][]byte // 4 KiB sectors the log writes, by offset
	zeros [][2]int64       // ranges it zeros, where no later page is
}

// replayLog finds the log's active sequence (MS-VHDX 2.3.3) and returns
// the file as replaying it would leave it, or the reason it cannot.
func replayLog(r io.ReaderAt, fileSize int64, h *header) (*replayed, int, error) {
	off, length := int64(h.logOffset), int64(h.logLength)
	switch {
	case length > maxLog:
		return nil, 0, fmt.Errorf("a log of %d bytes, above the %d this reader replays in memory", length, maxLog)
	case off%headerSection != 0 || length%headerSection != 0 || off < headerSection || off > fileSize-length:
		return nil, 0, fmt.Errorf("%w: a log of %d bytes at offset %d does not fit the %d-byte file", ErrCorrupt, length, off, fileSize)
	}
	log := make([]byte, length)
	if err := raw.ReadFull(r, log, off); err != nil {
		return nil, 0, fmt.Errorf("reading the VHDX log: %w", err)
	}
	seq := activeSequence(log, h.logGUID)
	if len(seq) == 0 {
		return nil, 0, fmt.Errorf("%w: the log holds no valid sequence of entries", ErrCorrupt)
	}
	rp, err := replay(r, fileSize, seq)
	return rp, len(seq), err
}

// replay lays the writes of a sequence of entries over the file's bytes.
func replay(r io.ReaderAt, fileSize int64, seq []*logEntry) (*replayed, error) {
	head := seq[len(seq)-1]
	if fileSize < head.flushed {
		return nil, fmt.Errorf("%w: the log says the file held %d bytes, it holds %d (truncated?)", ErrCorrupt, head.flushed, fileSize)
	}
	rp := &replayed{r: r, file: fileSize, size: max(fileSize, head.last), pages: map[int64][]byte{}}
	for _, e := range seq {
		for _, w := range e.writes {
			rp.apply(w)
		}
	}
	return rp, nil
}

// apply records a write; a later write of a sector wins over an earlier.
func (rp *replayed) apply(w logWrite) {
	rp.size = max(rp.size, w.off+w.length)
	if w.data != nil {
		rp.pages[w.off] = w.data
		return
	}
	for p := range rp.pages {
		if p >= w.off && p < w.off+w.length {
			delete(rp.pages, p)
		}
	}
	rp.zeros = append(rp.zeros, [2]int64{w.off, w.off + w.length})
}

// ReadAt reads the replayed file: its bytes (zeros past its end), zeroed
// ranges, then the sectors written.
func (rp *replayed) ReadAt(p []byte, off int64) (int, error) {
	p, eof := raw.Window(p, off, rp.size)
	if len(p) == 0 {
		return 0, eof
	}
	end := off + int64(len(p))
	clear(p)
	if off < rp.file {
		if err := raw.ReadFull(rp.r, p[:min(end, rp.file)-off], off); err != nil {
			return 0, err
		}
	}
	for _, z := range rp.zeros {
		if z[0] < end && z[1] > off {
			clear(p[max(z[0], off)-off : min(z[1], end)-off])
		}
	}
	for s := off &^ (logSector - 1); s < end; s += logSector {
		if page, ok := rp.pages[s]; ok {
			lo, hi := max(s, off), min(s+logSector, end)
			copy(p[lo-off:hi-off], page[lo-s:])
		}
	}
	return len(p), eof
}

// activeSequence scans the log for its newest valid and complete sequence
// of entries, as MS-VHDX 2.3.3 steps through it, and returns the entries
// to replay: from the head entry's tail to the head.
func activeSequence(log []byte, guid [16]byte) []*logEntry {
	n := int64(len(log))
	// Each offset is checked once, however many passes reach it.
	seen := map[int64]*logEntry{}
	entry := func(at int64) *logEntry {
		e, ok := seen[at]
		if !ok {
			e = readEntry(log, at, guid)
			seen[at] = e
		}
		return e
	}
	var best []*logEntry
	var tail, oldTail int64
	// Each pass starts at a later sector, so the log's sector count
	// bounds the passes.
	for range n / logSector {
		var cur []*logEntry
		head := tail
		for int64(len(cur)) < n/logSector {
			e := entry(head)
			if e == nil || (len(cur) > 0 && e.seq != cur[len(cur)-1].seq+1) {
				break
			}
			cur = append(cur, e)
			head = (head + e.length) % n
		}
		start := -1
		if len(cur) > 0 {
			last := cur[len(cur)-1]
			start = slices.IndexFunc(cur, func(e *logEntry) bool { return e.at == last.tail })
		}
		if start >= 0 && (best == nil || cur[len(cur)-1].seq > best[len(best)-1].seq) {
			best = cur[start:]
		}
		if start < 0 {
			tail = (tail + logSector) % n
		} else {
			tail = head
		}
		if tail <= oldTail {
			break
		}
		oldTail = tail
	}
	return best
}

// readEntry returns the valid entry at offset at of the log, nil if there
// is none: its header, descriptors, data sectors and checksum all check.
// An entry may wrap around the log's end.
func readEntry(log []byte, at int64, guid [16]byte) *logEntry {
	n := int64(len(log))
	le := binary.LittleEndian
	sector := func(i int64) []byte { o := (at + i*logSector) % n; return log[o : o+logSector] }
	h := sector(0)
	length := int64(le.Uint32(h[8:]))
	count := int64(le.Uint32(h[24:]))
	if string(h[:4]) != entrySig || length == 0 || length%logSector != 0 || length > n ||
		[16]byte(h[32:48]) != guid || le.Uint32(h[28:]) != 0 {
		return nil
	}
	e := &logEntry{
		at: at, length: length, tail: int64(le.Uint32(h[12:])), seq: le.Uint64(h[16:]),
		flushed: int64(le.Uint64(h[48:])), last: int64(le.Uint64(h[56:])),
	}
	descSectors := (entryHeaderLen + descLen*count + logSector - 1) / logSector
	if e.seq == 0 || e.tail%logSector != 0 || e.tail >= n || descSectors > length/logSector ||
		e.flushed < 0 || e.flushed > maxFileSize || e.last < 0 || e.last > maxFileSize {
		return nil
	}
	// The checksum covers the whole entry, its own field as zero.
	c := crc32.Update(0, castagnoli, h[:4])
	c = crc32.Update(c, castagnoli, make([]byte, 4))
	c = crc32.Update(c, castagnoli, h[8:])
	for i := int64(1); i < length/logSector; i++ {
		c = crc32.Update(c, castagnoli, sector(i))
	}
	if c != le.Uint32(h[4:]) {
		return nil
	}
	data := descSectors
	for i := range count {
		d := sector((entryHeaderLen + descLen*i) / logSector)[(entryHeaderLen+descLen*i)%logSector:][:descLen]
		off := int64(le.Uint64(d[16:]))
		if le.Uint64(d[24:]) != e.seq || off < 0 || off > maxFileSize || off%logSector != 0 {
			return nil
		}
		switch string(d[:4]) {
		case zeroSig:
			zl := int64(le.Uint64(d[8:]))
			if le.Uint32(d[4:]) != 0 || zl < 0 || zl%logSector != 0 || zl > maxFileSize-off {
				return nil
			}
			e.writes = append(e.writes, logWrite{off: off, length: zl})
		case descSig:
			if data >= length/logSector {
				return nil
			}
			s := sector(data)
			data++
			if string(s[:4]) != dataSig || le.Uint32(s[4:]) != uint32(e.seq>>32) || le.Uint32(s[logSector-4:]) != uint32(e.seq) {
				return nil
			}
			page := make([]byte, logSector)
			copy(page, d[8:16]) // the leading bytes the data sector's signature displaced
			copy(page[8:], s[8:logSector-4])
			copy(page[logSector-4:], d[4:8]) // and the trailing ones
			e.writes = append(e.writes, logWrite{off: off, length: logSector, data: page})
		default:
			return nil
		}
	}
	if data != length/logSector {
		return nil
	}
	return e
}

package rootfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/vhdprep/vhdprep/rootfs/internal/inode"
)

// A small read-only FAT12/16/32 reader for EFI system partitions: 8.3 and
// long names, case-insensitive lookups as the firmware does them. Every
// cluster chain is bounded by the cluster count, so a looping FAT ends.

// FAT layout.
const (
	fatDirEntrySize = 32
	fatAttrDir      = 0x10
	fatAttrVolume   = 0x08
	fatAttrLFN      = 0x0f
	fatDeleted      = 0xe5
	maxFATBytes     = 64 << 20 // a 2 TiB FAT32 has a 1 GiB FAT; ESPs are tiny
)

var errFATCorrupt = errors.New("corrupt FAT filesystem")

type fatFS struct {
	r           io.ReaderAt
	clusterSize int64
	dataStart   int64 // byte offset of cluster 2
	clusters    uint32
	fat         []uint32 // next cluster of each cluster
	eoc         uint32   // values at or above this end a chain
	rootCluster uint32   // FAT32: the root directory's first cluster
	rootOffset  int64    // FAT12/16: the fixed root directory
	rootEntries int64
}

func openFAT(r io.ReaderAt, size int64) (*fatFS, error) {
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, 0); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	bps, spc := int64(le.Uint16(bs[11:])), int64(bs[13])
	reserved, fats, rootEntries := int64(le.Uint16(bs[14:])), int64(bs[16]), int64(le.Uint16(bs[17:]))
	total := int64(le.Uint16(bs[19:]))
	if total == 0 {
		total = int64(le.Uint32(bs[32:]))
	}
	fatSectors := int64(le.Uint16(bs[22:]))
	if fatSectors == 0 {
		fatSectors = int64(le.Uint32(bs[36:]))
	}
	if bps < 512 || bps > 4096 || bps&(bps-1) != 0 || spc == 0 || spc&(spc-1) != 0 || fats == 0 || fatSectors == 0 || total*bps > size {
		return nil, fmt.Errorf("%w: boot sector geometry", errFATCorrupt)
	}
	rootSectors := (rootEntries*fatDirEntrySize + bps - 1) / bps
	dataSector := reserved + fats*fatSectors + rootSectors
	if dataSector >= total {
		return nil, fmt.Errorf("%w: no data area", errFATCorrupt)
	}
	f := &fatFS{
		r:           r,
		clusterSize: bps * spc,
		dataStart:   dataSector * bps,
		clusters:    uint32((total - dataSector) / spc),
		rootOffset:  (reserved + fats*fatSectors) * bps,
		rootEntries: rootEntries,
	}
	fatBytes := fatSectors * bps
	if fatBytes > maxFATBytes {
		return nil, fmt.Errorf("%w: a FAT of %d bytes", errFATCorrupt, fatBytes)
	}
	raw := make([]byte, fatBytes)
	if _, err := r.ReadAt(raw, reserved*bps); err != nil {
		return nil, err
	}
	n := int(f.clusters) + 2
	f.fat = make([]uint32, n)
	switch {
	case f.clusters < 4085: // FAT12: 12-bit entries, two in three bytes
		f.eoc = 0xff8
		for i := 0; i < n && i*3/2+1 < len(raw); i++ {
			v := uint32(le.Uint16(raw[i*3/2:]))
			if i%2 == 1 {
				v >>= 4
			}
			f.fat[i] = v & 0xfff
		}
	case f.clusters < 65525:
		f.eoc = 0xfff8
		for i := 0; i < n && 2*i+1 < len(raw); i++ {
			f.fat[i] = uint32(le.Uint16(raw[2*i:]))
		}
	default:
		f.eoc = 0x0ffffff8
		f.rootCluster = le.Uint32(bs[44:])
		for i := 0; i < n && 4*i+3 < len(raw); i++ {
			f.fat[i] = le.Uint32(raw[4*i:]) & 0x0fffffff
		}
	}
	return f, nil
}

// chain lists a file's clusters, stopping at the end mark, a bad link or
// after as many clusters as the filesystem has (a loop).
func (f *fatFS) chain(first uint32) ([]uint32, error) {
	var out []uint32
	for c := first; c >= 2 && c < f.eoc; c = f.fat[c] {
		if c >= uint32(len(f.fat)) || len(out) > int(f.clusters) {
			return nil, fmt.Errorf("%w: broken cluster chain", errFATCorrupt)
		}
		out = append(out, c)
	}
	return out, nil
}

// readChain reads up to limit bytes (all of the chain when limit < 0).
func (f *fatFS) readChain(first uint32, limit int64) ([]byte, error) {
	clusters, err := f.chain(first)
	if err != nil {
		return nil, err
	}
	if limit < 0 {
		limit = int64(len(clusters)) * f.clusterSize
	}
	if limit > int64(len(clusters))*f.clusterSize {
		return nil, fmt.Errorf("%w: file longer than its clusters", errFATCorrupt)
	}
	buf := make([]byte, limit)
	for i, c := range clusters {
		off := int64(i) * f.clusterSize
		if off >= limit {
			break
		}
		end := min(limit, off+f.clusterSize)
		if _, err := f.r.ReadAt(buf[off:end], f.dataStart+int64(c-2)*f.clusterSize); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

type fatEntry struct {
	name    string
	dir     bool
	size    int64
	cluster uint32
	mtime   time.Time
}

func (e fatEntry) Name() string       { return e.name }
func (e fatEntry) Size() int64        { return e.size }
func (e fatEntry) ModTime() time.Time { return e.mtime }
func (e fatEntry) IsDir() bool        { return e.dir }
func (e fatEntry) Sys() any {
	if e.dir {
		return &Stat{Mode: inode.TypeDir | 0o755, Nlink: 1}
	}
	return &Stat{Mode: inode.TypeReg | 0o644, Nlink: 1}
}
func (e fatEntry) Type() fs.FileMode          { return e.Mode().Type() }
func (e fatEntry) Info() (fs.FileInfo, error) { return e, nil }
func (e fatEntry) Mode() fs.FileMode {
	if e.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}

// dirEntries lists a directory: the fixed root (FAT12/16) or a chain.
func (f *fatFS) dirEntries(d fatEntry) ([]fatEntry, error) {
	var raw []byte
	var err error
	if d.cluster == 0 && f.rootCluster == 0 {
		raw = make([]byte, f.rootEntries*fatDirEntrySize)
		_, err = f.r.ReadAt(raw, f.rootOffset)
	} else {
		raw, err = f.readChain(d.cluster, -1)
	}
	if err != nil {
		return nil, err
	}
	var out []fatEntry
	var lfn []uint16
	for off := 0; off+fatDirEntrySize <= len(raw); off += fatDirEntrySize {
		e := raw[off : off+fatDirEntrySize]
		switch {
		case e[0] == 0:
			return out, nil
		case e[0] == fatDeleted:
			lfn = nil
			continue
		case e[11] == fatAttrLFN:
			// Long-name pieces come last piece first; each holds 13 UTF-16 units.
			var piece []uint16
			for _, r := range [][2]int{{1, 11}, {14, 26}, {28, 32}} {
				for i := r[0]; i < r[1]; i += 2 {
					piece = append(piece, binary.LittleEndian.Uint16(e[i:]))
				}
			}
			lfn = append(piece, lfn...)
			continue
		case e[11]&fatAttrVolume != 0:
			lfn = nil
			continue
		}
		name := shortName(e)
		if lfn != nil {
			name = longName(lfn)
			lfn = nil
		}
		if name == "." || name == ".." {
			continue
		}
		le := binary.LittleEndian
		cluster := uint32(le.Uint16(e[26:])) | uint32(le.Uint16(e[20:]))<<16
		out = append(out, fatEntry{name: name, dir: e[11]&fatAttrDir != 0, size: int64(le.Uint32(e[28:])), cluster: cluster, mtime: fatTime(le.Uint16(e[24:]), le.Uint16(e[22:]))})
	}
	return out, nil
}

// NT case flags: an all-lowercase 8.3 name is stored upper case with a
// flag instead of a long name (Windows, Linux and mtools all do this).
const (
	fatLowerBase = 0x08
	fatLowerExt  = 0x10
)

func shortName(e []byte) string {
	base, ext := strings.TrimRight(string(e[0:8]), " "), strings.TrimRight(string(e[8:11]), " ")
	if base != "" && base[0] == 0x05 { // a first byte of 0xE5 is stored as 0x05
		base = "\xe5" + base[1:]
	}
	if e[12]&fatLowerBase != 0 {
		base = strings.ToLower(base)
	}
	if e[12]&fatLowerExt != 0 {
		ext = strings.ToLower(ext)
	}
	if ext == "" {
		return base
	}
	return base + "." + ext
}

func longName(u []uint16) string {
	for i, c := range u {
		if c == 0 || c == 0xffff {
			u = u[:i]
			break
		}
	}
	return string(utf16.Decode(u))
}

func fatTime(date, tm uint16) time.Time {
	if date == 0 {
		return time.Time{}
	}
	return time.Date(1980+int(date>>9), time.Month(date>>5&0xf), int(date&0x1f), int(tm>>11), int(tm>>5&0x3f), int(tm&0x1f)*2, 0, time.UTC)
}

// find looks a clean relative path up, case-insensitively. A directory
// met twice on one path (by its first cluster) is a loop.
func (f *fatFS) find(name string) (fatEntry, error) {
	cur := fatEntry{name: ".", dir: true, cluster: f.rootCluster}
	seen := []uint32{cur.cluster}
	for _, comp := range splitPath(name) {
		if !cur.dir {
			return fatEntry{}, fs.ErrNotExist
		}
		ents, err := f.dirEntries(cur)
		if err != nil {
			return fatEntry{}, err
		}
		found := false
		for _, e := range ents {
			if strings.EqualFold(e.name, comp) {
				cur, found = e, true
				break
			}
		}
		if !found {
			return fatEntry{}, fs.ErrNotExist
		}
		if cur.dir {
			if slices.Contains(seen, cur.cluster) {
				return fatEntry{}, ErrDirLoop
			}
			seen = append(seen, cur.cluster)
		}
	}
	return cur, nil
}

func (f *fatFS) lstat(name string) (fs.FileInfo, error) { return f.find(name) }

func (f *fatFS) readDir(name string) ([]fs.DirEntry, error) {
	d, err := f.find(name)
	if err != nil {
		return nil, err
	}
	ents, err := f.dirEntries(d)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, len(ents))
	for i, e := range ents {
		out[i] = e
	}
	return out, nil
}

func (f *fatFS) open(name string) (fs.File, error) {
	e, err := f.find(name)
	if err != nil {
		return nil, err
	}
	b, err := f.readChain(e.cluster, e.size)
	if err != nil {
		return nil, err
	}
	return &memFile{Reader: bytes.NewReader(b), info: e}, nil
}

func (f *fatFS) readLink(string) (string, error) { return "", fs.ErrInvalid } // FAT has no symlinks

// memFile is a file read whole (ESP files are small).
type memFile struct {
	*bytes.Reader
	info fs.FileInfo
}

func (m *memFile) Stat() (fs.FileInfo, error) { return m.info, nil }
func (m *memFile) Close() error               { return nil }

package vmdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zlib"
	"github.com/vhdprep/vhdprep/internal/blocktable"
	"github.com/vhdprep/vhdprep/internal/lru"
	"github.com/vhdprep/vhdprep/raw"
)

// A hosted sparse extent's header, little endian, in its first sector;
// streamOptimized images repeat it in their footer.
const (
	flagEOLCheck    = 1 << 0 // the end-of-line bytes are there to check
	flagRedundantGD = 1 << 1
	flagZeroGrains  = 1 << 2 // a grain table entry of 1 is a grain of zeros
	flagMarkers     = 1 << 17
	compressDeflate = 1
	// gdAtEnd in the header says the footer holds the grain directory's
	// offset: a stream is written before its tables are known.
	gdAtEnd = ^uint64(0)
	// eolCheck is what a copy in text mode (FTP's ASCII) would change.
	eolCheck = "\n \r\n"

	gteZero      = 1
	markerLen    = 12 // a grain's marker: its first sector (8 bytes) and deflated length (4)
	markerFooter = 3  // the type of the metadata marker before the footer

	// maxGTEs is what VMware writes and qemu reads at most.
	maxGTEs = 512
	// maxGrain bounds the buffer a deflated grain inflates into; VMware
	// and qemu write 64 KiB grains.
	maxGrain = 1 << 20
	// maxGDEntries is qemu's bound on the grain directory, which the walk
	// for the data extents goes through: 1 PiB in 64 KiB grains.
	maxGDEntries = 32 << 20

	gtCacheBytes    = 4 << 20
	grainCacheBytes = 4 << 20
)

// SparseInfo is a hosted sparse extent's header.
type SparseInfo struct {
	Version               uint32 `json:"version"`
	Flags                 uint32 `json:"flags"`
	GrainSize             int64  `json:"grain_size_bytes,string"`
	GrainTableEntries     int64  `json:"grain_table_entries"`
	GrainDirectoryEntries int64  `json:"grain_directory_entries"`
	RedundantGD           bool   `json:"redundant_grain_directory"`
	ZeroGrains            bool   `json:"zeroed_grains"`
	Compressed            bool   `json:"compressed"`
	Markers               bool   `json:"markers"`
	FooterGD              bool   `json:"grain_directory_in_footer"`
	UncleanShutdown       bool   `json:"unclean_shutdown"`
}

// sparse is a hosted sparse extent: grains of a few sectors, found through
// a grain directory of grain tables. It implements raw.Disk.
type sparse struct {
	r          io.ReaderAt
	fileSize   int64
	size       int64
	grain      int64 // bytes
	gtEntries  int64
	overhead   int64 // the header and tables: no grain lies below
	desc       [2]int64
	gd, rgd    *blocktable.Table
	gts        *lru.Cache // grain tables, by index (^index: the redundant copy)
	grains     *lru.Cache // inflated grains, by index
	compressed bool
	markers    bool
	zeroGrains bool
	decoders   sync.Pool // *decoder
	info       SparseInfo
}

// openSparse reads a hosted sparse extent's header, from its footer when
// it is a stream's, and checks that its tables fit the file.
func openSparse(r io.ReaderAt, fileSize int64) (*sparse, error) {
	h := make([]byte, sectorSize)
	if err := raw.ReadFull(r, h, 0); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: the file ends inside the header (%d bytes)", ErrCorrupt, fileSize)
		}
		return nil, err
	}
	if string(h[:len(Magic)]) != Magic {
		return nil, ErrNotVMDK
	}
	le := binary.LittleEndian
	footer := le.Uint64(h[56:]) == gdAtEnd
	if footer {
		var err error
		if h, err = readFooter(r, fileSize); err != nil {
			return nil, err
		}
	}
	version, flags := le.Uint32(h[4:]), le.Uint32(h[8:])
	capacity, grainSectors := le.Uint64(h[12:]), le.Uint64(h[20:])
	gtes := uint64(le.Uint32(h[44:]))
	rgdAt, gdAt, overhead := le.Uint64(h[48:]), le.Uint64(h[56:]), le.Uint64(h[64:])
	compression := le.Uint16(h[77:])
	switch {
	case version < 1 || version > 3:
		return nil, fmt.Errorf("%w: header version %d (1 to 3 are read); %s", ErrUnsupported, version, qemuHint)
	case flags&flagEOLCheck != 0 && string(h[73:77]) != eolCheck:
		return nil, fmt.Errorf("%w: its end-of-line check bytes are changed, as a copy in text mode (FTP's ASCII) changes them; copy the file again in binary mode", ErrCorrupt)
	case compression > compressDeflate:
		return nil, fmt.Errorf("%w: compression algorithm %d (1, deflate, is read); %s", ErrUnsupported, compression, qemuHint)
	case capacity == 0:
		return nil, fmt.Errorf("%w: a sparse extent of capacity 0; %s", ErrUnsupported, qemuHint)
	case capacity > maxVirtualSize/sectorSize:
		return nil, fmt.Errorf("%w: capacity %d sectors is above the %d bytes this reader takes", ErrUnsupported, capacity, int64(maxVirtualSize))
	case grainSectors == 0 || grainSectors > maxGrain/sectorSize:
		return nil, fmt.Errorf("%w: grain size %d sectors", ErrCorrupt, grainSectors)
	case gtes == 0 || gtes > maxGTEs:
		return nil, fmt.Errorf("%w: %d entries a grain table (1 to %d are read)", ErrCorrupt, gtes, maxGTEs)
	case overhead > uint64(fileSize/sectorSize):
		return nil, fmt.Errorf("%w: the grains start at sector %d, past the end of the %d-byte file (truncated?)", ErrCorrupt, overhead, fileSize)
	}
	s := &sparse{
		r:          r,
		fileSize:   fileSize,
		size:       int64(capacity) * sectorSize,
		grain:      int64(grainSectors) * sectorSize,
		gtEntries:  int64(gtes),
		overhead:   int64(overhead) * sectorSize,
		gts:        lru.New(gtCacheBytes),
		grains:     lru.New(grainCacheBytes),
		compressed: compression == compressDeflate,
		markers:    flags&flagMarkers != 0,
		zeroGrains: flags&flagZeroGrains != 0,
	}
	gdEntries := (capacity + grainSectors*gtes - 1) / (grainSectors * gtes)
	if gdEntries > maxGDEntries {
		return nil, fmt.Errorf("%w: a grain directory of %d entries (qemu reads up to %d too)", ErrUnsupported, gdEntries, maxGDEntries)
	}
	if !s.fits(gdAt, int64(gdEntries)*4) {
		return nil, fmt.Errorf("%w: a grain directory of %d entries at sector %d does not fit the %d-byte file (truncated?)", ErrCorrupt, gdEntries, gdAt, fileSize)
	}
	s.gd = blocktable.New(r, int64(gdAt)*sectorSize, int64(gdEntries), 4, "VMDK grain directory", nil)
	// The redundant directory only serves where the primary fails, so
	// one that does not fit is left unused rather than refused.
	if flags&flagRedundantGD != 0 && s.fits(rgdAt, int64(gdEntries)*4) {
		s.rgd = blocktable.New(r, int64(rgdAt)*sectorSize, int64(gdEntries), 4, "VMDK redundant grain directory", nil)
	}
	if at, n := le.Uint64(h[28:]), le.Uint64(h[36:]); at != 0 && n != 0 {
		if n > maxDescriptor/sectorSize || !s.fits(at, int64(n)*sectorSize) {
			return nil, fmt.Errorf("%w: a descriptor of %d sectors at sector %d does not fit the %d-byte file", ErrCorrupt, n, at, fileSize)
		}
		s.desc = [2]int64{int64(at) * sectorSize, int64(n) * sectorSize}
	}
	s.info = SparseInfo{
		Version:               version,
		Flags:                 flags,
		GrainSize:             s.grain,
		GrainTableEntries:     s.gtEntries,
		GrainDirectoryEntries: int64(gdEntries),
		RedundantGD:           s.rgd != nil,
		ZeroGrains:            s.zeroGrains,
		Compressed:            s.compressed,
		Markers:               s.markers,
		FooterGD:              footer,
		UncleanShutdown:       h[72] != 0,
	}
	// The first page now, so a directory that is plainly wrong is
	// refused at once.
	if _, err := s.gd.Entry(0); err != nil {
		return nil, err
	}
	return s, nil
}

// readFooter returns the copy of the header a streamOptimized image ends
// with: a footer marker, the footer and an end-of-stream marker, a sector
// each.
func readFooter(r io.ReaderAt, fileSize int64) ([]byte, error) {
	b := make([]byte, 3*sectorSize)
	if fileSize >= 4*sectorSize {
		if err := raw.ReadFull(r, b, fileSize-3*sectorSize); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, err
		}
	}
	le := binary.LittleEndian
	f := b[sectorSize : 2*sectorSize]
	if le.Uint32(b[8:]) != 0 || le.Uint32(b[12:]) != markerFooter || string(f[:len(Magic)]) != Magic ||
		le.Uint64(f[56:]) == gdAtEnd || len(bytes.Trim(b[2*sectorSize:2*sectorSize+16], "\x00")) != 0 {
		return nil, fmt.Errorf("%w: a streamOptimized image whose footer says where its grain directory is, and the file does not end with that footer: it is truncated (an interrupted download or export?)", ErrCorrupt)
	}
	return f, nil
}

// fits tells whether n bytes from sector at lie in the file, past the
// header.
func (s *sparse) fits(at uint64, n int64) bool {
	return at >= 1 && at <= uint64(s.fileSize/sectorSize) && int64(at)*sectorSize+n <= s.fileSize
}

// descriptor returns the embedded descriptor, nil when there is none.
func (s *sparse) descriptor() ([]byte, error) {
	if s.desc[1] == 0 {
		return nil, nil
	}
	b := make([]byte, s.desc[1])
	if err := raw.ReadFull(s.r, b, s.desc[0]); err != nil {
		return nil, fmt.Errorf("reading the VMDK descriptor: %w", err)
	}
	return b, nil
}

func (s *sparse) Size() int64 { return s.size }

// grainCount is the number of grains the extent needs.
func (s *sparse) grainCount() int64 { return (s.size + s.grain - 1) / s.grain }

// need is how many bytes of grain g the extent holds: the last grain of an
// extent may be cut short.
func (s *sparse) need(g int64) int64 { return min(s.grain, s.size-g*s.grain) }

// grainTable returns grain table i, nil when it is not allocated.
func (s *sparse) grainTable(i int64) ([]byte, error) {
	t, err := s.loadTable(s.gd, i, i)
	if err != nil && s.rgd != nil {
		// The redundant directory and tables are VMware's copy for
		// exactly this: a primary table that is damaged.
		if t2, err2 := s.loadTable(s.rgd, i, ^i); err2 == nil && t2 != nil {
			return t2, nil
		}
	}
	return t, err
}

// loadTable reads grain table i of directory gd, checking every entry the
// extent needs, and keeps it by key. The key is the index, not the file
// offset: a table two directory entries share is checked for each.
func (s *sparse) loadTable(gd *blocktable.Table, i, key int64) ([]byte, error) {
	if t, ok := s.gts.Get(key); ok {
		return t, nil
	}
	e, err := gd.Entry(i)
	if err != nil || e == 0 {
		return nil, err
	}
	off := int64(e) * sectorSize
	if !s.fits(e, s.gtEntries*4) {
		return nil, fmt.Errorf("%w: grain table %d at offset %d lies outside the %d-byte file (truncated?)", ErrCorrupt, i, off, s.fileSize)
	}
	t := make([]byte, s.gtEntries*4)
	if err := raw.ReadFull(s.r, t, off); err != nil {
		return nil, fmt.Errorf("reading VMDK grain table %d at offset %d: %w", i, off, err)
	}
	first := i * s.gtEntries
	for j := range min(s.gtEntries, s.grainCount()-first) {
		if err := s.checkGrain(first+j, binary.LittleEndian.Uint32(t[4*j:])); err != nil {
			return nil, err
		}
	}
	s.gts.Put(key, t)
	return t, nil
}

// checkGrain refuses a grain that lies over the header and tables or past
// the end of the file.
func (s *sparse) checkGrain(g int64, gte uint32) error {
	if s.absent(gte) {
		return nil
	}
	off, n := int64(gte)*sectorSize, s.need(g)
	if s.compressed {
		n = markerLen
	}
	if off < s.overhead || off+n > s.fileSize {
		return fmt.Errorf("%w: grain %d at offset %d lies outside the grains of the %d-byte file (truncated?)", ErrCorrupt, g, off, s.fileSize)
	}
	return nil
}

// absent tells whether a grain table entry holds no data: never written,
// or a grain of zeros.
func (s *sparse) absent(gte uint32) bool { return gte == 0 || s.zeroGrains && gte == gteZero }

// entry returns grain g's grain table entry.
func (s *sparse) entry(g int64) (uint32, error) {
	t, err := s.grainTable(g / s.gtEntries)
	if err != nil || t == nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(t[4*(g%s.gtEntries):]), nil
}

func (s *sparse) ReadAt(p []byte, off int64) (int, error) {
	p, eof := raw.Window(p, off, s.size)
	if len(p) == 0 {
		return 0, eof
	}
	for n := 0; n < len(p); {
		pos := off + int64(n)
		g, within := pos/s.grain, pos%s.grain
		gte, err := s.entry(g)
		if err != nil {
			return n, err
		}
		span := min(int64(len(p)-n), s.grain-within)
		switch {
		case s.absent(gte):
			clear(p[n : n+int(span)])
		case s.compressed:
			err = s.readDeflated(p[n:n+int(span)], g, gte, within)
		default:
			span += s.contiguous(g+1, int64(gte)*sectorSize+s.grain, int64(len(p)-n)-span)
			if err = raw.ReadFull(s.r, p[n:n+int(span)], int64(gte)*sectorSize+within); err != nil {
				err = fmt.Errorf("reading VMDK grain %d: %w", g, err)
			}
		}
		if err != nil {
			return n, err
		}
		n += int(span)
	}
	return len(p), eof
}

// contiguous is how many of the up to limit bytes from grain g on are
// stored at file offset next and after, so that one read serves them all.
func (s *sparse) contiguous(g, next, limit int64) int64 {
	var n int64
	for n < limit {
		gte, err := s.entry(g)
		if err != nil || s.absent(gte) || int64(gte)*sectorSize != next {
			break // an error shows when ReadAt reaches that grain
		}
		n += min(limit-n, s.grain)
		g, next = g+1, next+s.grain
	}
	return n
}

// readDeflated fills p from deflated grain g, starting within bytes into
// it.
func (s *sparse) readDeflated(p []byte, g int64, gte uint32, within int64) error {
	if within == 0 && int64(len(p)) == s.need(g) {
		// A whole grain goes straight where it is wanted: a large read
		// (convert's) costs no copy and no cache.
		return s.inflateInto(p, g, gte)
	}
	buf, ok := s.grains.Get(g)
	if !ok {
		buf = make([]byte, s.need(g))
		if err := s.inflateInto(buf, g, gte); err != nil {
			return err
		}
		s.grains.Put(g, buf)
	}
	copy(p, buf[within:])
	return nil
}

// decoder is a reusable inflater with room for a deflated grain.
type decoder struct {
	src  bytes.Reader
	zr   io.ReadCloser // also a zlib.Resetter
	comp []byte
}

// inflateInto inflates grain g, stored at sector gte, into out. Calls may
// run side by side, each with a decoder of its own.
func (s *sparse) inflateInto(out []byte, g int64, gte uint32) error {
	d, _ := s.decoders.Get().(*decoder)
	if d == nil {
		d = &decoder{}
	}
	defer s.decoders.Put(d)
	off := int64(gte) * sectorSize
	// One read holds the marker and the deflated grain, which is nearly
	// always smaller than the grain; without markers the deflated data's
	// length is unknown and qemu's bound of two grains serves.
	n := min(2*s.grain, s.fileSize-off)
	if s.markers {
		n = min(markerLen+s.grain, s.fileSize-off)
	}
	comp, err := d.read(s.r, off, n)
	if err != nil {
		return fmt.Errorf("reading VMDK grain %d at offset %d: %w", g, off, err)
	}
	if s.markers {
		le := binary.LittleEndian
		lba, size := le.Uint64(comp), int64(le.Uint32(comp[8:]))
		switch {
		case lba != uint64(g*s.grain/sectorSize):
			return fmt.Errorf("%w: the grain at offset %d is marked as sector %d, its grain table says sector %d", ErrCorrupt, off, lba, g*s.grain/sectorSize)
		case size == 0 || size > 2*s.grain || size > s.fileSize-off-markerLen:
			return fmt.Errorf("%w: the grain at offset %d claims %d deflated bytes", ErrCorrupt, off, size)
		case markerLen+size > n:
			if comp, err = d.read(s.r, off, markerLen+size); err != nil {
				return fmt.Errorf("reading VMDK grain %d at offset %d: %w", g, off, err)
			}
		}
		comp = comp[markerLen : markerLen+size]
	}
	d.src.Reset(comp)
	if d.zr == nil {
		d.zr, err = zlib.NewReader(&d.src)
	} else {
		err = d.zr.(zlib.Resetter).Reset(&d.src, nil)
	}
	if err == nil {
		_, err = io.ReadFull(d.zr, out)
	}
	if err != nil {
		return fmt.Errorf("%w: grain %d at offset %d does not inflate: %v", ErrCorrupt, g, off, err)
	}
	return nil
}

// read reads n bytes at off into the decoder's buffer.
func (d *decoder) read(r io.ReaderAt, off, n int64) ([]byte, error) {
	if int64(cap(d.comp)) < n {
		d.comp = make([]byte, n)
	}
	b := d.comp[:n]
	return b, raw.ReadFull(r, b, off)
}

// Extents lists the grains that hold data, coalesced.
func (s *sparse) Extents() ([]raw.Extent, error) {
	var exts []raw.Extent
	// A grain table used twice would make this walk cost more than the
	// file holds; VMware never shares one.
	seen := map[uint64]bool{}
	for i := range s.gd.Len() {
		e, err := s.gd.Entry(i)
		if err != nil {
			return nil, err
		}
		if seen[e] && e != 0 {
			return nil, fmt.Errorf("%w: the grain table at offset %d is used twice", ErrCorrupt, int64(e)*sectorSize)
		}
		seen[e] = true
		t, err := s.grainTable(i)
		if err != nil {
			return nil, err
		}
		first := i * s.gtEntries
		for j := range min(int64(len(t)/4), s.grainCount()-first) {
			if s.absent(binary.LittleEndian.Uint32(t[4*j:])) {
				continue
			}
			off := (first + j) * s.grain
			if n := len(exts); n > 0 && exts[n-1].End() == off {
				exts[n-1].Length += s.grain
			} else {
				exts = append(exts, raw.Extent{Offset: off, Length: s.grain})
			}
		}
	}
	return raw.Clip(exts, s.size), nil
}

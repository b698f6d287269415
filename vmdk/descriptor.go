package vmdk

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

const (
	// maxDescriptor is the most of a descriptor read, qemu's limit too:
	// VMware writes a few hundred bytes.
	maxDescriptor = 1 << 20
	noParent      = "ffffffff"
)

// descriptor is what vhdprep reads of a descriptor, a text file or text
// embedded in a sparse extent.
type descriptor struct {
	createType, cid, parentCID, parentHint string
	ddb                                    map[string]string
	extents                                []extentLine
}

// extentLine is one line of the extent description:
// ACCESS SECTORS TYPE ["FILE" [OFFSET]].
type extentLine struct {
	access  string // RW, RDONLY or NOACCESS
	sectors int64
	kind    string
	file    string
	offset  int64 // in sectors, where a flat extent starts in its file
}

// parseDescriptor reads a descriptor's keys and extent lines. Lines it
// does not know are skipped, as VMware's and qemu's readers skip them.
func parseDescriptor(text []byte) (*descriptor, error) {
	// An embedded descriptor is padded to its sectors with NULs.
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	d := &descriptor{}
	var total int64
	for n, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if access := strings.Fields(line)[0]; access == "RW" || access == "RDONLY" || access == "NOACCESS" {
			e, err := parseExtent(access, line[len(access):])
			if err != nil {
				return nil, fmt.Errorf("%w: descriptor line %d (%.80q): %v", ErrCorrupt, n+1, line, err)
			}
			if total += e.sectors; total > maxVirtualSize/sectorSize {
				return nil, fmt.Errorf("%w: the extents add up to more than the %d bytes this reader takes", ErrUnsupported, int64(maxVirtualSize))
			}
			d.extents = append(d.extents, e)
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.Trim(strings.TrimSpace(val), `"`)
		switch {
		case key == "createType":
			d.createType = val
		case key == "CID":
			d.cid = val
		case key == "parentCID":
			d.parentCID = val
		case key == "parentFileNameHint":
			d.parentHint = val
		case strings.HasPrefix(key, "ddb."):
			if d.ddb == nil {
				d.ddb = map[string]string{}
			}
			d.ddb[strings.TrimPrefix(key, "ddb.")] = val
		}
	}
	return d, nil
}

func parseExtent(access, rest string) (extentLine, error) {
	head, quoted, named := strings.Cut(rest, `"`)
	f := strings.Fields(head)
	if len(f) != 2 {
		return extentLine{}, fmt.Errorf(`want ACCESS SECTORS TYPE "FILE" [OFFSET]`)
	}
	e := extentLine{access: access, kind: f[1]}
	var err error
	if e.sectors, err = strconv.ParseInt(f[0], 10, 64); err != nil || e.sectors <= 0 {
		return e, fmt.Errorf("size %q is not a number of sectors", f[0])
	}
	if !named {
		if e.kind != "ZERO" {
			return e, fmt.Errorf("a %s extent needs a file name", e.kind)
		}
		return e, nil
	}
	name, tail, ok := strings.Cut(quoted, `"`)
	if !ok || name == "" {
		return e, fmt.Errorf("the file name has no closing quote")
	}
	e.file = name
	if tail = strings.TrimSpace(tail); tail != "" {
		if e.offset, err = strconv.ParseInt(tail, 10, 64); err != nil || e.offset < 0 || e.offset > maxVirtualSize/sectorSize {
			return e, fmt.Errorf("offset %q is not a number of sectors", tail)
		}
	}
	return e, nil
}

// checkParent refuses a differencing image: its parent holds every grain
// it does not.
func (d *descriptor) checkParent() error {
	if d.parentCID == "" || strings.EqualFold(d.parentCID, noParent) {
		return nil
	}
	parent := ""
	if d.parentHint != "" {
		parent = fmt.Sprintf(" %q", d.parentHint)
	}
	return fmt.Errorf("%w: its parent%s (parentCID %s) holds what it does not, and vhdprep does not follow parent chains; merge the chain into one disk first: qemu-img convert -f vmdk -O raw child.vmdk disk.raw", ErrDifferencing, parent, d.parentCID)
}

package inject

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/vhdprep/vhdprep/agent/layout"
)

// RecordPath is where inject notes what it changed, so remove can put back
// exactly that.
const RecordPath = layout.StateDir + "/inject.json"

// maxRecord bounds the record: it holds at most a few files inject replaced.
const maxRecord = 64 << 20

// Record is what inject changed in a guest.
type Record struct {
	Version  int      `json:"version"`
	Created  []string `json:"created,omitempty"`  // files and symlinks that were not there
	Dirs     []string `json:"dirs,omitempty"`     // directories made for them
	Replaced []Saved  `json:"replaced,omitempty"` // what was there before
	Disabled []Saved  `json:"disabled,omitempty"` // other agents' enable symlinks, removed
	Agents   []string `json:"agents,omitempty"`   // the provisioning agents disabled
}

// Saved is a file or symlink as it was.
type Saved struct {
	Path string      `json:"path"`
	Data []byte      `json:"data,omitempty"`
	Mode fs.FileMode `json:"mode,omitempty"`
	Link string      `json:"link,omitempty"`
}

const recordVersion = 1

// ParseRecord reads a record from a guest. Only paths inject itself writes
// are accepted, so a doctored record cannot make remove touch anything else.
func ParseRecord(b []byte) (*Record, error) {
	if len(b) > maxRecord {
		return nil, fmt.Errorf("%s: %d bytes, more than any record inject writes", RecordPath, len(b))
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %v", RecordPath, err)
	}
	if r.Version != recordVersion {
		return nil, fmt.Errorf("%s: version %d; this vhdprep reads version %d", RecordPath, r.Version, recordVersion)
	}
	bad := func(p string) error {
		return fmt.Errorf("%s: %q is not a path agent inject writes; remove it by hand", RecordPath, p)
	}
	for _, p := range r.Created {
		if !ownPath(p) {
			return nil, bad(p)
		}
	}
	for _, s := range r.Replaced {
		if !ownPath(s.Path) {
			return nil, bad(s.Path)
		}
	}
	for _, s := range r.Disabled {
		if !enableLink(s.Path) || s.Link == "" {
			return nil, bad(s.Path)
		}
	}
	for _, d := range r.Dirs {
		if !ownDir(d) {
			return nil, bad(d)
		}
	}
	return &r, nil
}

// ownPaths are the files and symlinks inject may create or replace.
func ownPaths() []string {
	out := []string{layout.Binary, layout.ConfigFile, RecordPath, cloudInitDisabled,
		wantsDir + "/" + layout.ProvisionUnit, wantsDir + "/" + layout.DaemonUnit}
	for _, dir := range unitDirs {
		out = append(out, dir+"/"+layout.ProvisionUnit, dir+"/"+layout.DaemonUnit)
	}
	for _, r := range rivals {
		for _, u := range r.units {
			out = append(out, maskDir+"/"+u)
		}
	}
	return out
}

func ownPath(p string) bool {
	for _, o := range ownPaths() {
		if p == o {
			return true
		}
	}
	return false
}

// ownDir: a directory inject may have made, on the way to one of its paths.
func ownDir(d string) bool {
	if d == "/" || path.Clean(d) != d || !path.IsAbs(d) {
		return false
	}
	for _, o := range ownPaths() {
		if strings.HasPrefix(o, d+"/") {
			return true
		}
	}
	return false
}

// enableLink: another agent's enable symlink in a *.wants directory.
func enableLink(p string) bool {
	dir, unit := path.Split(p)
	if path.Clean(p) != p {
		return false
	}
	ok := false
	for _, d := range append([]string{maskDir}, unitDirs...) {
		m, _ := path.Match(d+"/*.wants/", dir)
		ok = ok || m
	}
	if !ok {
		return false
	}
	for _, r := range rivals {
		for _, u := range r.units {
			if u == unit {
				return true
			}
		}
	}
	return false
}

// marshal writes the record as inject stores it.
func (r *Record) marshal() []byte {
	b, _ := json.MarshalIndent(r, "", "  ")
	return append(b, '\n')
}

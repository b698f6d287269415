package rootfs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// FstabEntry is one line of /etc/fstab.
type FstabEntry struct {
	Line    int
	Spec    string // UUID=..., LABEL=..., /dev/..., or a pseudo source
	File    string // the mount point, or "none"/"swap" for swap
	Type    string
	Options []string
	Freq    int
	Passno  int
}

// HasOption tells whether the entry carries option o (such as nofail).
func (e FstabEntry) HasOption(o string) bool {
	for _, x := range e.Options {
		if x == o {
			return true
		}
	}
	return false
}

// IsSwap tells whether the entry activates swap.
func (e FstabEntry) IsSwap() bool { return e.Type == "swap" }

// ParseFstab parses fstab(5): comments and blank lines are skipped, fields
// are separated by white space, and octal escapes (\040) are decoded.
// Lines with fewer than three fields are errors, with their line number;
// the well-formed entries are returned with them, as mount -a uses those.
func ParseFstab(b []byte) ([]FstabEntry, error) {
	var out []FstabEntry
	var bad []error
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			bad = append(bad, fmt.Errorf("fstab line %d: %q has fewer than 3 fields", i+1, line))
			continue
		}
		e := FstabEntry{Line: i + 1, Spec: unescape(f[0]), File: unescape(f[1]), Type: f[2], Options: []string{"defaults"}}
		if len(f) > 3 {
			e.Options = strings.Split(f[3], ",")
		}
		if len(f) > 4 {
			e.Freq, _ = strconv.Atoi(f[4])
		}
		if len(f) > 5 {
			e.Passno, _ = strconv.Atoi(f[5])
		}
		out = append(out, e)
	}
	return out, errors.Join(bad...)
}

// unescape decodes fstab's \ooo octal escapes.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

package diskimage

import (
	"fmt"
	"strconv"
	"strings"
)

// sizeUnits are binary multiples, as qemu-img and Azure's tools use them.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gib": 1 << 30,
	"t": 1 << 40, "tib": 1 << 40,
}

// ParseSize reads a size such as 30G, 30GiB, 30720M or a number of bytes.
// Units are binary: G means GiB.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(t[i:])
	}
	mult, ok := sizeUnits[unit]
	if !ok || num == "" {
		return 0, fmt.Errorf("size %q: use a number of bytes or a number with K, M, G or T (binary units), e.g. 30G", s)
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n <= 0 || n > maxSize/mult {
			return 0, fmt.Errorf("size %q is out of range", s)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f <= 0 || f*float64(mult) > float64(maxSize) {
		return 0, fmt.Errorf("size %q: use a number of bytes or a number with K, M, G or T (binary units), e.g. 30G", s)
	}
	return int64(f * float64(mult)), nil
}

// maxSize bounds sizes at 64 TiB, far above any disk Azure takes, so
// arithmetic on them never overflows.
const maxSize = 64 << 40

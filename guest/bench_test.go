package guest

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// BenchmarkInspect inspects a 2 GiB disk with a real userland and reports
// how many bytes it read (from /proc/self/io) and how long it took. The
// goal: metadata only, well under 200 ms and a few MiB. For comparison,
// virt-inspector boots an appliance VM to answer the same questions.
func BenchmarkInspect(b *testing.B) {
	img := testimage.Path(b, "bench-debian-2g")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		before := readBytes(b)
		start := time.Now()
		g, err := Open(img)
		if err != nil {
			b.Fatal(err)
		}
		r := g.Inspect()
		g.Close()
		elapsed := time.Since(start)
		if r.OS.ID != "debian" || r.Arch != "x86_64" {
			b.Fatalf("inspect found %+v %s", r.OS, r.Arch)
		}
		b.ReportMetric(float64(elapsed.Microseconds())/1000, "wall-ms")
		b.ReportMetric(float64(readBytes(b)-before)/(1<<20), "read-MiB")
	}
}

// readBytes is this process's rchar: bytes read through read(2) and pread(2).
func readBytes(b *testing.B) int64 {
	io, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Skip("no /proc/self/io")
	}
	for _, line := range strings.Split(string(io), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

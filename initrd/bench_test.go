package initrd

import (
	"os"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// BenchmarkModules inventories a 40 MB zstd initramfs (150 MB of cpio) and
// reports its throughput over the file and the peak live heap, which
// stays far below the decompressed size because Walk streams.
func BenchmarkModules(b *testing.B) {
	f, err := os.Open(testimage.Path(b, "initrd-bench-zstd"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	runtime.GC()
	stop, peak := heapPeak()
	b.ResetTimer()
	for b.Loop() {
		inv, err := Modules(f, st.Size())
		if err != nil {
			b.Fatal(err)
		}
		if !inv.Has("6.1.0-13-cloud-amd64", "hv_storvsc") {
			b.Fatal("hv_storvsc missing")
		}
	}
	b.StopTimer()
	stop()
	b.ReportMetric(float64(*peak)/(1<<20), "peak-heap-MiB")
}

// heapPeak samples the live heap every millisecond until stop is called.
func heapPeak() (stop func(), peak *uint64) {
	peak = new(uint64)
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			*peak = max(*peak, s[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }, peak
}

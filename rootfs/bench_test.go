package rootfs

import (
	"io"
	"io/fs"
	"os"
	"sync/atomic"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// countingReader counts the reads and bytes read through it.
type countingReader struct {
	r           io.ReaderAt
	n, requests atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	c.requests.Add(1)
	return n, err
}

// benchWalk opens a bare filesystem image and walks all of it, stating
// every entry (metadata only, as inspect and check do), and reports the
// bytes read from the image per walk and in how many reads.
func benchWalk(b *testing.B, recipe, fstype string) {
	f, err := os.Open(testimage.Path(b, recipe))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	var entries int
	var read, requests int64
	for b.Loop() {
		c := &countingReader{r: f}
		tr, err := OpenFS(c, st.Size(), fstype)
		if err != nil {
			b.Fatal(err)
		}
		entries = 0
		err = fs.WalkDir(tr, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if _, err := d.Info(); err != nil {
				return err
			}
			entries++
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		read, requests = c.n.Load(), c.requests.Load()
	}
	b.ReportMetric(float64(entries), "entries/op")
	b.ReportMetric(float64(read)/(1<<20), "MiB-read/op")
	b.ReportMetric(float64(requests), "reads/op")
}

func BenchmarkWalkExt4(b *testing.B) { benchWalk(b, "rootfs-fs-ext4", "ext4") }
func BenchmarkWalkXFS(b *testing.B)  { benchWalk(b, "rootfs-fs-xfs", "xfs") }

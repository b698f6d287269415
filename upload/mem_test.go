package upload

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"sync"

	"github.com/vhdprep/vhdprep/raw"
)

// memBlob is a page blob in memory that refuses what Azure would refuse,
// for tests of the upload logic without a server.
type memBlob struct {
	mu       sync.Mutex
	exists   bool
	data     []byte
	written  []bool // per page: holds data (what Get Page Ranges reports)
	metadata map[string]string
	md5      []byte
	puts     int
	putBytes int64
	// fail, if set, decides the outcome of each Put Page before it applies.
	fail func(n int) error
}

var errRule = errors.New("refused as Azure would")

func newMemBlob(size int64) *memBlob {
	return &memBlob{exists: true, data: make([]byte, size), written: make([]bool, size/PageSize)}
}

func (m *memBlob) String() string { return "mem://blob" }

func (m *memBlob) Properties(context.Context) (*Properties, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.exists {
		return nil, ErrNotFound
	}
	return &Properties{Size: int64(len(m.data)), Metadata: m.metadata}, nil
}

func (m *memBlob) Create(_ context.Context, size int64, md map[string]string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if size%PageSize != 0 {
		return errRule
	}
	m.exists, m.data, m.written, m.metadata, m.md5 = true, make([]byte, size), make([]bool, size/PageSize), md, nil
	return nil
}

func (m *memBlob) PageRanges(context.Context) ([]raw.Extent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []raw.Extent
	for i, w := range m.written {
		if w {
			out = append(out, raw.Extent{Offset: int64(i) * PageSize, Length: PageSize})
		}
	}
	return raw.Coalesce(out), nil
}

func (m *memBlob) check(off, n int64) error {
	if off%PageSize != 0 || n%PageSize != 0 || n <= 0 || off < 0 || off+n > int64(len(m.data)) {
		return fmt.Errorf("%w: range %d+%d in a %d-byte blob", errRule, off, n, len(m.data))
	}
	return nil
}

func (m *memBlob) PutPages(_ context.Context, off int64, p []byte, sum []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(off, int64(len(p))); err != nil {
		return err
	}
	if len(p) > MaxPutPage || fmt.Sprintf("%x", md5.Sum(p)) != fmt.Sprintf("%x", sum) {
		return fmt.Errorf("%w: put of %d bytes, MD5 %x", errRule, len(p), sum)
	}
	m.puts++
	if m.fail != nil {
		if err := m.fail(m.puts); err != nil {
			return err
		}
	}
	m.putBytes += int64(len(p))
	copy(m.data[off:], p)
	for i := off / PageSize; i < (off+int64(len(p)))/PageSize; i++ {
		m.written[i] = true
	}
	return nil
}

func (m *memBlob) ClearPages(_ context.Context, off, n int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(off, n); err != nil {
		return err
	}
	clear(m.data[off : off+n])
	for i := off / PageSize; i < (off+n)/PageSize; i++ {
		m.written[i] = false
	}
	return nil
}

func (m *memBlob) SetContentMD5(_ context.Context, sum []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.md5 = sum
	return nil
}

func (m *memBlob) ReadAt(_ context.Context, p []byte, off int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < 0 || off+int64(len(p)) > int64(len(m.data)) {
		return errRule
	}
	copy(p, m.data[off:])
	return nil
}

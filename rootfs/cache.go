package rootfs

import "sync"

// libCache is the bounded cache the ext4 and XFS libraries keep parsed
// inodes and directories in; without one they re-read every directory on
// the way to every file.
type libCache struct {
	mu    sync.Mutex
	m     map[string]any
	order []string
}

// maxCacheEntries bounds the cache (entries are inodes and directory
// listings, a few KiB at most each).
const maxCacheEntries = 4096

func newLibCache() *libCache { return &libCache{m: map[string]any{}} }

func (c *libCache) Add(key string, value any) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok {
		if len(c.order) >= maxCacheEntries {
			delete(c.m, c.order[0])
			c.order = c.order[1:]
		}
		c.order = append(c.order, key)
	}
	c.m[key] = value
	return true
}

func (c *libCache) Get(key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v, ok
}

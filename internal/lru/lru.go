// Package lru keeps the most recently used byte slices of a disk format
// reader (qcow2's L2 tables and decompressed clusters, VMDK's grain tables
// and grains) up to a total length, so that small reads do not read or
// decompress the same bytes again each time.
package lru

import (
	"container/list"
	"sync"
)

// Cache holds byte slices by key (a file offset) up to a total length. It
// is safe for concurrent use; the slices it returns are shared and must
// not be modified.
type Cache struct {
	mu    sync.Mutex
	limit int
	used  int
	items map[int64]*list.Element
	order list.List // front: most recently used
}

type item struct {
	key int64
	val []byte
}

// New makes a cache of up to limit bytes.
func New(limit int) *Cache {
	return &Cache{limit: limit, items: map[int64]*list.Element{}}
}

// Get returns the slice kept for key.
func (c *Cache) Get(key int64) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*item).val, true
}

// Put adds val, evicting the least recently used slices beyond the limit;
// the newest always stays, even alone over the limit.
func (c *Cache) Put(key int64, val []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.items[key] = c.order.PushFront(&item{key, val})
	c.used += len(val)
	for c.used > c.limit && c.order.Len() > 1 {
		old := c.order.Remove(c.order.Back()).(*item)
		delete(c.items, old.key)
		c.used -= len(old.val)
	}
}

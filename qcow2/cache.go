package qcow2

import (
	"container/list"
	"sync"
)

// cache keeps the most recently used byte slices up to a total length, so
// that L2 tables and decompressed clusters are not read again for every
// small read. It is safe for concurrent use; the slices it returns are
// shared and must not be modified.
type cache struct {
	mu    sync.Mutex
	limit int
	used  int
	items map[int64]*list.Element
	order list.List // front: most recently used
}

type cacheItem struct {
	key int64
	val []byte
}

func newCache(limit int) *cache {
	return &cache{limit: limit, items: map[int64]*list.Element{}}
}

func (c *cache) get(key int64) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheItem).val, true
}

// put adds val, evicting the least recently used slices beyond the limit;
// the newest always stays, even alone over the limit.
func (c *cache) put(key int64, val []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.items[key] = c.order.PushFront(&cacheItem{key, val})
	c.used += len(val)
	for c.used > c.limit && c.order.Len() > 1 {
		old := c.order.Remove(c.order.Back()).(*cacheItem)
		delete(c.items, old.key)
		c.used -= len(old.val)
	}
}

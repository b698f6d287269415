package lru

import "testing"

// The least recently used slices go first once the limit is passed; a
// slice larger than the limit stays, alone.
func TestEvictsLeastRecentlyUsed(t *testing.T) {
	c := New(300)
	for k := range int64(3) {
		c.Put(k, make([]byte, 100))
	}
	c.Get(0) // 1 is now the least recently used
	c.Put(3, make([]byte, 100))
	for k, want := range map[int64]bool{0: true, 1: false, 2: true, 3: true} {
		if _, ok := c.Get(k); ok != want {
			t.Errorf("key %d kept: %v, want %v", k, ok, want)
		}
	}
	c.Put(4, make([]byte, 1000))
	if _, ok := c.Get(4); !ok || c.order.Len() != 1 {
		t.Fatalf("an oversized slice: kept %v, %d in the cache", ok, c.order.Len())
	}
}

package store

import "sync/atomic"

// valueCache keeps values a partition wrote or read, so that the
// processor's next read of a customer skips leveldb: in the fold's profile
// leveldb's Get (the levels' walk, block reads and their allocations) was
// a fifth of the CPU, and the in-memory storage folded twice as many
// events per CPU-second. The cache holds the slices the storage already
// has (a written value, or the one leveldb returned), so it copies
// nothing.
//
// It is bounded by its builder's budget shared equally by the partitions
// open; over its share it forgets arbitrary entries (Go's map order) until
// it is at three quarters of it. No LRU list: a customer's events come
// close together or not at all, and a list would cost two pointers and an
// update per read. Its owner's lock guards it.
type valueCache struct {
	budget  int
	open    *atomic.Int64
	entries map[string][]byte
	bytes   int
}

func (c *valueCache) share() int { return c.budget / int(max(1, c.open.Load())) }

func (c *valueCache) get(key string) ([]byte, bool) {
	v, ok := c.entries[key]
	return v, ok
}

func (c *valueCache) put(key string, value []byte) {
	share := c.share()
	cost := len(key) + len(value) + entryOverhead
	if cost > share/4 {
		return
	}
	if c.entries == nil {
		c.entries = map[string][]byte{}
	}
	c.remove(key)
	c.entries[key] = value
	c.bytes += cost
	if c.bytes <= share {
		return
	}
	for k, v := range c.entries {
		if k == key {
			continue
		}
		delete(c.entries, k)
		c.bytes -= len(k) + len(v) + entryOverhead
		if c.bytes <= share*3/4 {
			return
		}
	}
}

func (c *valueCache) remove(key string) {
	if v, ok := c.entries[key]; ok {
		delete(c.entries, key)
		c.bytes -= len(key) + len(v) + entryOverhead
	}
}

func (c *valueCache) clear() { c.entries, c.bytes = nil, 0 }

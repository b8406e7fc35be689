package keys

import (
	"crypto/cipher"
	"sync"
)

// aeadCacheSize bounds the ciphers an aeadCache keeps: about 1 KiB each
// (AES key schedules and GCM tables), so 4 MiB at most.
const aeadCacheSize = 4096

// aeadCache keeps the AES-GCM ciphers of the data keys used last. Setting
// one up costs about as much as opening a short value with it, and an
// event's fields, a state's fields and a customer's next events all use
// the same key; keeping one per key of the keyring instead would take
// about 1 KiB for every customer.
type aeadCache struct {
	mu    sync.Mutex
	byKey map[string]cipher.AEAD // by the raw key's bytes
	order []string               // insertion order, for eviction
	next  int                    // the slot of order to evict next, once full
}

func newAEADCache() *aeadCache {
	return &aeadCache{byKey: make(map[string]cipher.AEAD, aeadCacheSize)}
}

// get returns the cipher of raw, set up now or earlier. Evicting the
// oldest entry keeps the cache bounded without tracking use on every hit.
func (c *aeadCache) get(raw []byte) (cipher.AEAD, error) {
	c.mu.Lock()
	aead, ok := c.byKey[string(raw)]
	c.mu.Unlock()
	if ok {
		return aead, nil
	}
	aead, err := newAEAD(raw)
	if err != nil {
		return nil, err
	}
	key := string(raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[key]; ok {
		return aead, nil
	}
	if len(c.order) < aeadCacheSize {
		c.order = append(c.order, key)
	} else {
		delete(c.byKey, c.order[c.next])
		c.order[c.next] = key
		c.next = (c.next + 1) % aeadCacheSize
	}
	c.byKey[key] = aead
	return aead, nil
}

// forget drops raw's cipher: its key was erased, and no copy of it may
// stay in memory longer than the keyring's own.
func (c *aeadCache) forget(raw []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byKey, string(raw))
}

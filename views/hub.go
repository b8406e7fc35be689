package views

import (
	"sync"
	"sync/atomic"
)

// Change is one new value of a customer in the table, as stored.
type Change struct {
	Key   string
	Value []byte
}

// Hub fans table changes out to subscribers. Publishing never blocks: a
// subscriber whose buffer is full is dropped (its channel closed), so a
// slow reader cannot slow the view down.
type Hub struct {
	mu    sync.Mutex
	byKey map[string]map[*Subscription]struct{}
	all   map[*Subscription]struct{}
	count atomic.Int64
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{byKey: map[string]map[*Subscription]struct{}{}, all: map[*Subscription]struct{}{}}
}

// Subscription receives changes until it is closed or dropped.
type Subscription struct {
	hub     *Hub
	key     string // "" for every key
	c       chan Change
	dropped atomic.Bool
	once    sync.Once
}

// C delivers changes; it is closed when the subscription ends.
func (s *Subscription) C() <-chan Change { return s.c }

// Dropped reports whether the hub dropped the subscription because its
// buffer was full.
func (s *Subscription) Dropped() bool { return s.dropped.Load() }

// Close ends the subscription. It is safe to call more than once.
func (s *Subscription) Close() { s.hub.remove(s) }

// Subscribe returns a subscription to changes of key, or of every key
// when key is empty, with room for buffer undelivered changes.
func (h *Hub) Subscribe(key string, buffer int) *Subscription {
	if buffer < 1 {
		buffer = 1
	}
	s := &Subscription{hub: h, key: key, c: make(chan Change, buffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if key == "" {
		h.all[s] = struct{}{}
	} else {
		subs := h.byKey[key]
		if subs == nil {
			subs = map[*Subscription]struct{}{}
			h.byKey[key] = subs
		}
		subs[s] = struct{}{}
	}
	h.count.Add(1)
	return s
}

// Subscribers returns the number of open subscriptions.
func (h *Hub) Subscribers() int64 { return h.count.Load() }

// Publish hands a change to every subscriber of its key and of all keys.
func (h *Hub) Publish(c Change) {
	if h.count.Load() == 0 {
		return // the common case during recovery: nobody listens
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.byKey[c.Key] {
		h.deliver(s, c)
	}
	for s := range h.all {
		h.deliver(s, c)
	}
}

// deliver must be called with h.mu held.
func (h *Hub) deliver(s *Subscription, c Change) {
	select {
	case s.c <- c:
	default:
		s.dropped.Store(true)
		h.removeLocked(s)
	}
}

func (h *Hub) remove(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(s)
}

func (h *Hub) removeLocked(s *Subscription) {
	s.once.Do(func() {
		if s.key == "" {
			delete(h.all, s)
		} else if subs := h.byKey[s.key]; subs != nil {
			delete(subs, s)
			if len(subs) == 0 {
				delete(h.byKey, s.key)
			}
		}
		h.count.Add(-1)
		close(s.c)
	})
}

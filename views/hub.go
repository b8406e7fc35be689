package views

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/eventfold/eventfold/processor"
)

// The hub keeps one window of the latest changes for all its subscribers,
// instead of a queue per subscriber: what slow subscribers pin is this
// window, whatever their number. A subscriber that has not read a change
// when the change leaves the window is dropped.
const (
	// WindowChanges is the most changes the window holds.
	WindowChanges = 4096
	// WindowBytes bounds the window's table values. A change also holds
	// its state event once a subscriber asked for it, which is smaller
	// than the value (the state without its history offsets): the window
	// holds at most twice this.
	WindowBytes = 32 << 20
)

// Change is one new value of a customer in the table, as stored. Every
// subscriber shares the same Change: it must not be modified.
type Change struct {
	Key   string
	Value []byte

	seq  uint64 // position in the hub's stream of changes
	open func(*processor.Customer) *processor.Customer
	once sync.Once
	// Set by once: the change as a state event, its version, and whether
	// the change was an accepted event; or, for a rejection, the change
	// as a rejected event.
	event    []byte
	version  int64
	accepted bool
	rejected []byte
}

// StateEvent returns the change as the "state" event of a change stream
// (AppendStateEvent) with its version, when the table write was an
// accepted event; ok is false for rejections, which rewrite the entry
// without changing the state, and for values that do not decode. It is
// built once for all the change's subscribers, which share its bytes and
// must not modify them.
func (c *Change) StateEvent() (event []byte, version int64, ok bool) {
	c.build()
	return c.event, c.version, c.accepted
}

// RejectedEvent returns the change as the "rejected" event of a
// customer's change stream, when the table write recorded a rejection:
// id "<customer>@<version>/<rejected event id>", and the entry as lookups
// show it, its last decision the rejection. Ids that were never
// registered have such entries too. It is built once, like StateEvent.
func (c *Change) RejectedEvent() (event []byte, ok bool) {
	c.build()
	return c.rejected, c.rejected != nil
}

func (c *Change) build() {
	c.once.Do(func() {
		state, err := processor.DecodeCustomer(c.Value)
		if err != nil {
			return
		}
		accepted, rejected := changedState(state), lastRejected(state)
		if !accepted && !rejected {
			return
		}
		state.History = processor.History{}
		if c.open != nil {
			// Sealed personal data is opened once for every subscriber.
			state = c.open(state)
			state.History = processor.History{}
		}
		body := state.AppendJSON(nil)
		if accepted {
			c.event, c.version, c.accepted = AppendStateEvent(make([]byte, 0, len(body)+len(c.Key)+48), c.Key, state.Version, body), state.Version, true
			return
		}
		id := c.Key + "@" + strconv.FormatInt(state.Version, 10) + "/" + state.Decisions[len(state.Decisions)-1].EventID
		c.rejected = appendEvent(make([]byte, 0, len(body)+len(id)+48), "rejected", id, body)
	})
}

// lastRejected reports whether the table write that produced c recorded a
// rejection: its last decision is a rejected one.
func lastRejected(c *processor.Customer) bool {
	return len(c.Decisions) > 0 && c.Decisions[len(c.Decisions)-1].Outcome == processor.Rejected
}

// AppendStateEvent appends the Server-Sent Events frame of a customer's
// state to dst: event "state", id "<customer>@<version>", and the state as
// lookups show it (processor.PublicJSON, one line) as its data.
func AppendStateEvent(dst []byte, id string, version int64, body []byte) []byte {
	return appendEvent(dst, "state", id+"@"+strconv.FormatInt(version, 10), body)
}

// appendEvent appends a Server-Sent Events frame: its event name, id and
// one line of data.
func appendEvent(dst []byte, event, id string, body []byte) []byte {
	dst = append(dst, "event: "...)
	dst = append(dst, event...)
	dst = append(dst, "\nid: "...)
	dst = append(dst, id...)
	dst = append(dst, "\ndata: "...)
	dst = append(dst, body...)
	return append(dst, "\n\n"...)
}

// changedState reports whether the table write that produced c was an
// accepted event.
func changedState(c *processor.Customer) bool {
	if !c.Registered() || len(c.Decisions) == 0 {
		return false
	}
	last := c.Decisions[len(c.Decisions)-1]
	return last.Outcome == processor.Accepted && last.Version == c.Version
}

// Hub fans table changes out to subscribers. Publishing never blocks: a
// subscriber that falls out of the window is dropped (Ready is closed and
// Take reports the end), so a slow reader cannot slow the view down nor
// make it hold more than the window.
type Hub struct {
	mu     sync.RWMutex
	byKey  map[string]map[*Subscription]struct{}
	all    map[*Subscription]struct{}
	count  atomic.Int64
	window [WindowChanges]*Change // the change of seq s is at s % WindowChanges
	head   uint64                 // seq of the next change
	tail   uint64                 // seq of the oldest change kept
	bytes  int                    // counted bytes of the changes kept
	// open returns a state as clients see it (sealed personal data
	// opened); nil shows states as stored.
	open func(*processor.Customer) *processor.Customer
}

// NewHub returns an empty hub whose state events show states through
// open, or as stored when open is nil.
func NewHub(open func(*processor.Customer) *processor.Customer) *Hub {
	return &Hub{byKey: map[string]map[*Subscription]struct{}{}, all: map[*Subscription]struct{}{}, open: open}
}

// Subscription receives changes until it is closed or dropped.
type Subscription struct {
	hub     *Hub
	key     string        // "" for every key
	next    atomic.Uint64 // seq of the first change not taken yet
	ready   chan struct{}
	dropped atomic.Bool
	once    sync.Once
}

// Ready receives a value when changes may be waiting; it is closed when
// the subscription ends. Take the changes then.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Take appends the changes published since the last Take (for the
// subscription's key, or all of them) to dst, in order, and returns it
// with true; or with false once the subscription has ended.
func (s *Subscription) Take(dst []*Change) ([]*Change, bool) {
	h := s.hub
	h.mu.RLock()
	defer h.mu.RUnlock()
	if s.dropped.Load() || !h.subscribed(s) {
		return dst, false
	}
	// A cursor before the window belongs to a subscriber of one key
	// whose own changes are all still in it: else it would have been
	// dropped.
	for seq := max(s.next.Load(), h.tail); seq < h.head; seq++ {
		if c := h.window[seq%WindowChanges]; s.key == "" || c.Key == s.key {
			dst = append(dst, c)
		}
	}
	s.next.Store(h.head)
	return dst, true
}

// Dropped reports whether the hub dropped the subscription because it
// fell out of the window.
func (s *Subscription) Dropped() bool { return s.dropped.Load() }

// Close ends the subscription. It is safe to call more than once.
func (s *Subscription) Close() { s.hub.remove(s) }

// Subscribe returns a subscription to the changes of key, or of every key
// when key is empty, from now on.
func (h *Hub) Subscribe(key string) *Subscription {
	s := &Subscription{hub: h, key: key, ready: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	s.next.Store(h.head)
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

// Publish hands a new value of key to every subscriber of that key and
// of all keys. The hub keeps value until the change leaves its window.
func (h *Hub) Publish(key string, value []byte) {
	if h.count.Load() == 0 {
		return // the common case during recovery: nobody listens
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	size := len(value)
	for h.tail < h.head && (h.head-h.tail >= WindowChanges || h.bytes+size > WindowBytes) {
		h.evictLocked()
	}
	c := &Change{Key: key, Value: value, seq: h.head, open: h.open}
	h.window[c.seq%WindowChanges] = c
	h.head++
	h.bytes += size
	for s := range h.byKey[key] {
		notify(s)
	}
	for s := range h.all {
		notify(s)
	}
}

// notify wakes s without blocking: a value already waiting says the same.
func notify(s *Subscription) {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// evictLocked drops the oldest change from the window, and with it the
// subscribers that wanted it and have not taken it.
func (h *Hub) evictLocked() {
	old := h.window[h.tail%WindowChanges]
	for s := range h.byKey[old.Key] {
		h.dropIfBehindLocked(s, old.seq)
	}
	for s := range h.all {
		h.dropIfBehindLocked(s, old.seq)
	}
	h.window[h.tail%WindowChanges] = nil
	h.bytes -= len(old.Value)
	h.tail++
}

func (h *Hub) dropIfBehindLocked(s *Subscription, seq uint64) {
	if s.next.Load() <= seq {
		s.dropped.Store(true)
		h.removeLocked(s)
	}
}

// subscribed reports whether s is still open; h.mu must be held.
func (h *Hub) subscribed(s *Subscription) bool {
	if s.key == "" {
		_, ok := h.all[s]
		return ok
	}
	_, ok := h.byKey[s.key][s]
	return ok
}

// CloseAll ends every subscription, as if each had fallen behind: their
// streams end and their clients reconnect.
func (h *Hub) CloseAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.all {
		s.dropped.Store(true)
		h.removeLocked(s)
	}
	for _, subs := range h.byKey {
		for s := range subs {
			s.dropped.Store(true)
			h.removeLocked(s)
		}
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
		if h.count.Add(-1) == 0 {
			// Nobody listens: let the window's values go.
			clear(h.window[:])
			h.tail, h.bytes = h.head, 0
		}
		close(s.ready)
	})
}

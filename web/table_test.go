package web

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/views"
)

// table is an in-memory group table for the server's tests, in the
// server's place of a views.View, a kafka.Publisher, a views.History and
// a views.Hub: events published to it are folded by processor.Apply as
// the processor folds them, and read back as the view reads them. It
// holds data and checks no expectations; its fields put it in the states
// a real view and broker can be in.
type table struct {
	mu      sync.Mutex
	entries map[string]*processor.Customer
	// states holds every accepted state of a customer, by version - 1,
	// for time travel; events the accepted events, for history reads.
	states map[string][]*processor.Customer
	events map[string][]views.Event
	// records holds every event published, by offset, for the events of
	// decisions.
	records map[int64]views.Event
	offset  int64
	hub     *views.Hub

	recovered bool
	// held leaves published events undecided, as a processor that is
	// behind does; heldEvents counts them, the table's lag.
	held       bool
	heldEvents int64
	// readErr fails every read of the view; entryErr only Entry;
	// publishErr every produce; historyErr every history read.
	readErr, entryErr, publishErr, historyErr error
}

func newTable() *table {
	return &table{entries: map[string]*processor.Customer{}, states: map[string][]*processor.Customer{},
		events: map[string][]views.Event{}, records: map[int64]views.Event{}, hub: views.NewHub(nil), recovered: true}
}

// Publish folds the event into the table, as the processor would.
func (t *table) Publish(_ context.Context, key string, value []byte) (int32, int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.publishErr != nil {
		return 0, 0, t.publishErr
	}
	t.offset++
	if t.held {
		t.heldEvents++
		return 0, t.offset, nil
	}
	ev, err := processor.Decode(key, value)
	if err != nil {
		return 0, 0, fmt.Errorf("failed to decode an event the server built: %w", err)
	}
	ev.Offset = t.offset
	state := processor.Customer{ID: key}
	if c := t.entries[key]; c != nil {
		state = *c
	}
	next, d := processor.Apply(state, ev)
	t.entries[key] = &next
	t.records[t.offset] = views.Event{Version: d.Version, Offset: t.offset, Time: ev.Time, Event: value}
	if d.Outcome == processor.Accepted {
		t.states[key] = append(t.states[key], &next)
		t.events[key] = append(t.events[key], views.Event{Version: next.Version, Offset: t.offset, Time: ev.Time, Event: value})
	}
	t.hub.Publish(key, next.AppendJSON(nil))
	return 0, t.offset, nil
}

func (t *table) Recovered() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.recovered
}

func (t *table) Entry(id string) (*processor.Customer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := errors.Join(t.readErr, t.entryErr); err != nil {
		return nil, err
	}
	return t.entries[id], nil
}

func (t *table) Lookup(id string) (*processor.Customer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.readErr != nil {
		return nil, t.readErr
	}
	if c := t.entries[id]; c.Registered() {
		return c, nil
	}
	return nil, fmt.Errorf("failed to look up %s: %w", id, views.ErrNotFound)
}

func (t *table) LookupJSON(id string) ([]byte, int64, error) {
	c, err := t.Lookup(id)
	if err != nil {
		return nil, 0, err
	}
	return processor.PublicJSON(c.AppendJSON(nil))
}

func (t *table) List(after string, limit int, match func(*processor.Customer) bool) ([]*processor.Customer, string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.readErr != nil {
		return nil, "", t.readErr
	}
	out := []*processor.Customer{}
	for _, id := range slices.Sorted(maps.Keys(t.entries)) {
		if c := t.entries[id]; id > after && c.Registered() && (match == nil || match(c)) && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, "", nil
}

// WaitForVersion and WaitForDecision find what Publish folded at once;
// otherwise nothing more comes, and they wait for ctx as the view would
// for a change that does not come.
func (t *table) WaitForVersion(ctx context.Context, id string, minVersion int64) (*processor.Customer, error) {
	c, err := t.Lookup(id)
	if err == nil && c.Version >= minVersion {
		return c, nil
	}
	<-ctx.Done()
	return c, ctx.Err()
}

func (t *table) WaitForDecision(ctx context.Context, id, eventID string) (processor.Decision, *processor.Customer, error) {
	t.mu.Lock()
	c, err := t.entries[id], t.readErr
	t.mu.Unlock()
	if d, ok := c.Decision(eventID); err == nil && ok {
		return d, c, nil
	}
	<-ctx.Done()
	return processor.Decision{}, c, ctx.Err()
}

func (t *table) Events(_ context.Context, c *processor.Customer, afterVersion int64, limit int) ([]views.Event, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.historyErr != nil {
		return nil, t.historyErr
	}
	var out []views.Event
	for _, e := range t.events[c.ID] {
		if e.Version > afterVersion && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (t *table) StateAtVersion(_ context.Context, c *processor.Customer, version int64) (*processor.Customer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.historyErr != nil {
		return nil, t.historyErr
	}
	if states := t.states[c.ID]; version <= int64(len(states)) {
		return states[version-1], nil
	}
	return nil, fmt.Errorf("failed to read version %d of %s: %w", version, c.ID, views.ErrVersionNotFound)
}

func (t *table) StateAtTime(_ context.Context, c *processor.Customer, at time.Time) (*processor.Customer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.historyErr != nil {
		return nil, t.historyErr
	}
	var found *processor.Customer
	for _, s := range t.states[c.ID] {
		if !s.UpdatedAt.After(at) {
			found = s
		}
	}
	if found == nil {
		return nil, fmt.Errorf("failed to read %s at %s: %w", c.ID, at, views.ErrVersionNotFound)
	}
	return found, nil
}

func (t *table) Attempted(_ context.Context, id string, d processor.Decision) (views.Event, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.historyErr != nil {
		return views.Event{}, t.historyErr
	}
	if e, ok := t.records[d.Offset]; ok {
		return e, nil
	}
	return views.Event{}, fmt.Errorf("failed to read event %q of %s: %w", d.EventID, id, views.ErrHistoryTruncated)
}

// Lag is the events published and not yet decided, as a processor that
// is behind has them.
func (t *table) Lag(context.Context, string) (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.heldEvents, nil
}

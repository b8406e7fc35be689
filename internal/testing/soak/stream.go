package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/processor"
)

// stream generates the producer's events and folds them as it goes: the
// reference state of each of its customers. It is endless, and its memory
// is bounded by the number of customers, however long the run.
type stream struct {
	mu        sync.Mutex
	rng       *rand.Rand
	ids       []string
	last      map[string][]byte // each customer's last event, to send again
	states    map[string]processor.Customer
	n         int64 // events generated; the reference fold's offsets
	malformed int64
	start     time.Time
}

func newStream(seed int64, customers int) *stream {
	s := &stream{rng: rand.New(rand.NewSource(seed)), last: map[string][]byte{}, states: map[string]processor.Customer{},
		start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	for i := range customers {
		s.ids = append(s.ids, fmt.Sprintf("soak-p%d-%04d", seed, i))
	}
	return s
}

var soakCountries = []string{"DE", "FR", "GB", "US", "NL", "SE", "JP", "BR"}

// next returns the next record and whether it is malformed (bound for
// the dead-letter topic). Well-formed ones are folded into the reference.
func (s *stream) next() (*kgo.Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.n
	s.n++
	id := s.ids[s.rng.Intn(len(s.ids))]
	st := s.states[id]
	ev := map[string]any{
		"specversion": "1.0", "id": fmt.Sprintf("soak-%d", i), "source": "/eventfold/soak", "subject": id,
		"time": s.start.Add(time.Duration(i) * time.Second).Format(time.RFC3339),
	}
	r := s.rng.Intn(100)
	switch {
	case !st.Registered():
		ev["type"] = processor.TypeRegistered
		ev["data"] = map[string]any{"name": fmt.Sprintf("Soak %d", i), "email": fmt.Sprintf("soak%d@example.com", i)}
	case r < 1:
		s.malformed++
		return &kgo.Record{Key: []byte(id), Value: fmt.Appendf(nil, `{"specversion":"1.0","id":"soak-%d","source":"/eventfold/soak","type":"customer.promoted"}`, i)}, true, nil
	case r < 2 && s.last[id] != nil:
		return s.fold(id, s.last[id]) // sent again: a duplicate
	case r < 10:
		ev["type"] = processor.TypeRenamed
		ev["expectedversion"] = st.Version + 1 // stale: a version conflict
		ev["data"] = map[string]any{"name": "Stale"}
	case r < 35:
		ev["type"] = processor.TypeRenamed
		ev["expectedversion"] = st.Version
		ev["data"] = map[string]any{"name": fmt.Sprintf("Name %d", i)}
	case r < 60:
		ev["type"] = processor.TypeEmailChanged
		ev["data"] = map[string]any{"email": fmt.Sprintf("e%d@example.org", i)}
	case r < 80:
		ev["type"] = processor.TypeAddressChanged
		ev["data"] = map[string]any{"address": map[string]any{"line1": fmt.Sprintf("%d Main St", i), "city": "Springfield",
			"postal_code": fmt.Sprintf("%05d", i%100000), "country": soakCountries[s.rng.Intn(len(soakCountries))]}}
	case st.Status == processor.StatusSuspended:
		ev["type"] = processor.TypeReactivated
	default:
		ev["type"] = processor.TypeSuspended
		ev["data"] = map[string]any{"reason": "billing"}
	}
	value, err := json.Marshal(ev)
	if err != nil {
		return nil, false, fmt.Errorf("failed to encode event %d: %w", i, err)
	}
	s.last[id] = value
	return s.fold(id, value)
}

// fold applies one event to the reference, as the processor will: the
// generation order is the produce order, so each customer's events are
// folded in their partition's order.
func (s *stream) fold(id string, value []byte) (*kgo.Record, bool, error) {
	ev, err := processor.Decode(id, value)
	if err != nil {
		return nil, false, fmt.Errorf("generated an invalid event: %w", err)
	}
	ev.Offset = s.n
	next, d := processor.Apply(s.states[id], ev)
	if d.Outcome != processor.Duplicate {
		s.states[id] = next
	}
	return &kgo.Record{Key: []byte(id), Value: value}, false, nil
}

// reference returns a copy of the expected states.
func (s *stream) reference() map[string]processor.Customer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.states)
}

// produce appends the stream at rate events per second until ctx ends.
// A batch under way is finished, never cut, so that the reference holds
// exactly what was produced.
func (s *stream) produce(ctx context.Context, cl *kgo.Client, rate int, t *tally) error {
	const tick = 50 * time.Millisecond
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	due := 0.0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		due += float64(rate) * tick.Seconds()
		var batch []*kgo.Record
		for ; due >= 1; due-- {
			r, bad, err := s.next()
			if err != nil {
				return err
			}
			if bad {
				t.malformed.Add(1)
			}
			batch = append(batch, r)
		}
		pctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := cl.ProduceSync(pctx, batch...).FirstErr()
		cancel()
		if err != nil {
			return fmt.Errorf("failed to produce %d events: %w", len(batch), err)
		}
		t.produced.Add(int64(len(batch)))
	}
}

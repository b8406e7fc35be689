package views

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/processor"
)

// Errors of history reads.
var (
	// ErrVersionNotFound is returned for a version the customer has not
	// reached, or a time before it was registered.
	ErrVersionNotFound = errors.New("version not found")
	// ErrHistoryTruncated is returned for versions whose offsets the state
	// no longer keeps (see processor.MaxHistory) or that left the log.
	ErrHistoryTruncated = errors.New("history truncated")
)

// MaxPageBytes bounds the event bytes of one page of Events: a page ends
// before the event that would take it past this budget, so that a page
// of events near the 64 KiB bound of the contract stays about 1 MiB
// instead of 64 MiB. A page holds at least one event.
const MaxPageBytes = 1 << 20

// RecordReader reads records of the events topic by offset: a
// kafka.OffsetReader.
type RecordReader interface {
	// Each calls fn with the record at each offset, in offset order,
	// holding one fetch response at a time; the record's bytes belong to
	// the reader once fn returns.
	Each(ctx context.Context, partition int32, offsets []int64, fn func(kafka.Record) error) error
}

// History reads a customer's accepted events back from the events topic,
// using the offsets its state keeps, and replays them with the fold. Its
// reads hold one fetch response and one page at a time, whatever the
// number of events they go through.
type History struct {
	reader     RecordReader
	partitions int32
}

// NewHistory returns a history reader over an events topic with the given
// partition count.
func NewHistory(reader RecordReader, partitions int32) *History {
	return &History{reader: reader, partitions: partitions}
}

// Event is one accepted event of a customer, where it is in the log, and
// the version it produced.
type Event struct {
	Version   int64           `json:"version"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Time      time.Time       `json:"time"`
	Event     json.RawMessage `json:"event"`
}

// errPageDone stops a read early; it never leaves this package.
var errPageDone = errors.New("page done")

// Events returns accepted events of c with versions above afterVersion,
// in order: up to limit of them, and no more than MaxPageBytes of event
// bytes unless the first alone is more. When afterVersion lies before the
// kept history, the events start at the first kept version; at or past
// the last version, there are none.
func (h *History) Events(ctx context.Context, c *processor.Customer, afterVersion int64, limit int) ([]Event, error) {
	if c.History.Len() == 0 || afterVersion >= c.Version || limit < 1 {
		return nil, nil // also keeps afterVersion+1 below from overflowing
	}
	from := max(afterVersion+1, c.History.FirstVersion())
	to := c.Version
	if int64(limit) <= to-from {
		to = from + int64(limit) - 1
	}
	var (
		out   []Event
		bytes int
	)
	err := h.each(ctx, c, from, to, func(version int64, r kafka.Record, ev processor.Event) error {
		if bytes += len(r.Value); bytes > MaxPageBytes && len(out) > 0 {
			return errPageDone
		}
		// A copy, so the page does not keep the whole fetch response.
		out = append(out, Event{Version: version, Partition: r.Partition, Offset: r.Offset, Time: ev.Time,
			Event: json.RawMessage(slices.Clone(r.Value))})
		return nil
	})
	if err != nil && !errors.Is(err, errPageDone) {
		return nil, err
	}
	return out, nil
}

// StateAtVersion replays c's events up to and including version.
func (h *History) StateAtVersion(ctx context.Context, c *processor.Customer, version int64) (*processor.Customer, error) {
	switch {
	case version < 1 || version > c.Version:
		return nil, fmt.Errorf("%w: %s has versions 1 to %d", ErrVersionNotFound, c.ID, c.Version)
	case c.History.FirstVersion() != 1:
		return nil, fmt.Errorf("%w: versions before %d of %s are no longer kept", ErrHistoryTruncated, c.History.FirstVersion(), c.ID)
	}
	var state processor.Customer
	err := h.each(ctx, c, 1, version, func(_ int64, _ kafka.Record, ev processor.Event) error {
		state, _ = processor.Apply(state, ev)
		return nil
	})
	if err != nil {
		return nil, err
	}
	state.ID = c.ID
	return &state, nil
}

// StateAtTime replays c's events up to the last one at or before t, in
// version order: the state as it was at t.
func (h *History) StateAtTime(ctx context.Context, c *processor.Customer, t time.Time) (*processor.Customer, error) {
	if c.History.FirstVersion() != 1 {
		return nil, fmt.Errorf("%w: versions before %d of %s are no longer kept", ErrHistoryTruncated, c.History.FirstVersion(), c.ID)
	}
	var (
		state processor.Customer
		n     int64
	)
	err := h.each(ctx, c, 1, c.Version, func(_ int64, _ kafka.Record, ev processor.Event) error {
		if ev.Time.After(t) {
			return errPageDone
		}
		state, _ = processor.Apply(state, ev)
		n++
		return nil
	})
	if err != nil && !errors.Is(err, errPageDone) {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: %s did not exist at %s", ErrVersionNotFound, c.ID, t.Format(time.RFC3339))
	}
	state.ID = c.ID
	return &state, nil
}

// each calls fn with each event of versions from..to of c, decoded, one
// at a time. Only accepted events are kept in the history, so replaying
// them gives a state whose recent decisions list those alone.
func (h *History) each(ctx context.Context, c *processor.Customer, from, to int64,
	fn func(version int64, r kafka.Record, ev processor.Event) error) error {
	offsets, err := c.History.Offsets()
	if err != nil {
		return fmt.Errorf("failed to decode the history of %s: %w", c.ID, err)
	}
	first := c.History.FirstVersion()
	want := offsets[from-first : to-first+1]
	partition := processor.PartitionFor(c.ID, h.partitions)
	version := from
	err = h.reader.Each(ctx, partition, want, func(r kafka.Record) error {
		var ev processor.Event
		value, err := processor.StructuredValue(r.Value, r.Headers)
		if err == nil {
			r.Value = value
			ev, err = processor.Decode(c.ID, r.Value)
		}
		if err != nil {
			return fmt.Errorf("event %d of %s at offset %d no longer decodes: %w", version, c.ID, r.Offset, err)
		}
		ev.Offset = r.Offset
		if ev.Time.IsZero() {
			ev.Time = r.Timestamp.UTC() // as the processor did
		}
		if err := fn(version, r, ev); err != nil {
			return err
		}
		version++
		return nil
	})
	switch {
	case errors.Is(err, kafka.ErrOffsetGone):
		return fmt.Errorf("%w: %w", ErrHistoryTruncated, err)
	case errors.Is(err, errPageDone):
		return err
	case err != nil:
		return fmt.Errorf("failed to read the events of %s: %w", c.ID, err)
	case version != to+1:
		return fmt.Errorf("read %d of the %d events of %s", version-from, len(want), c.ID)
	}
	return nil
}

// Attempted reads back from the log the event one of id's decisions was
// on, accepted or rejected: the one record at the decision's offset in
// id's partition, in structured mode, with Version the customer's version
// after the decision. A decision that keeps no offset (-1), a record no
// longer in the log, or a record there that is not this decision's event
// (a topic deleted and created anew) is ErrHistoryTruncated. The read
// holds one fetch response and one event, at most the contract's 64 KiB.
func (h *History) Attempted(ctx context.Context, id string, d processor.Decision) (Event, error) {
	if d.Offset < 0 {
		return Event{}, fmt.Errorf("%w: the decision on event %q of %s keeps no offset", ErrHistoryTruncated, d.EventID, id)
	}
	partition := processor.PartitionFor(id, h.partitions)
	var out Event
	err := h.reader.Each(ctx, partition, []int64{d.Offset}, func(r kafka.Record) error {
		value, err := processor.StructuredValue(r.Value, r.Headers)
		var ev processor.Event
		if err == nil {
			ev, err = processor.Decode(id, value)
		}
		if err != nil || string(r.Key) != id || ev.ID != d.EventID {
			return fmt.Errorf("%w: the record at %d of partition %d is not event %q of %s", ErrHistoryTruncated, d.Offset, partition, d.EventID, id)
		}
		if ev.Time.IsZero() {
			ev.Time = r.Timestamp.UTC() // as the processor did
		}
		out = Event{Version: d.Version, Partition: r.Partition, Offset: r.Offset, Time: ev.Time, Event: json.RawMessage(slices.Clone(value))}
		return nil
	})
	switch {
	case errors.Is(err, kafka.ErrOffsetGone):
		return Event{}, fmt.Errorf("%w: %w", ErrHistoryTruncated, err)
	case err != nil && !errors.Is(err, ErrHistoryTruncated):
		return Event{}, fmt.Errorf("failed to read event %q of %s: %w", d.EventID, id, err)
	}
	return out, err
}

package views

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// RecordReader reads records of the events topic by offset: a
// kafka.OffsetReader.
type RecordReader interface {
	Read(ctx context.Context, partition int32, offsets []int64) ([]kafka.Record, error)
}

// History reads a customer's accepted events back from the events topic,
// using the offsets its state keeps, and replays them with the fold.
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

	decoded processor.Event
}

// Events returns up to limit accepted events of c with versions above
// afterVersion, in order. When afterVersion lies before the kept history,
// the events start at the first kept version.
func (h *History) Events(ctx context.Context, c *processor.Customer, afterVersion int64, limit int) ([]Event, error) {
	first := c.History.FirstVersion()
	from := max(afterVersion+1, first)
	to := min(c.Version, from+int64(limit)-1)
	if c.History.Len() == 0 || from > to {
		return nil, nil
	}
	return h.read(ctx, c, from, to)
}

// StateAtVersion replays c's events up to and including version.
func (h *History) StateAtVersion(ctx context.Context, c *processor.Customer, version int64) (*processor.Customer, error) {
	switch {
	case version < 1 || version > c.Version:
		return nil, fmt.Errorf("%w: %s has versions 1 to %d", ErrVersionNotFound, c.ID, c.Version)
	case c.History.FirstVersion() != 1:
		return nil, fmt.Errorf("%w: versions before %d of %s are no longer kept", ErrHistoryTruncated, c.History.FirstVersion(), c.ID)
	}
	events, err := h.read(ctx, c, 1, version)
	if err != nil {
		return nil, err
	}
	return replay(c.ID, events), nil
}

// StateAtTime replays c's events up to the last one at or before t, in
// version order: the state as it was at t.
func (h *History) StateAtTime(ctx context.Context, c *processor.Customer, t time.Time) (*processor.Customer, error) {
	if c.History.FirstVersion() != 1 {
		return nil, fmt.Errorf("%w: versions before %d of %s are no longer kept", ErrHistoryTruncated, c.History.FirstVersion(), c.ID)
	}
	events, err := h.read(ctx, c, 1, c.Version)
	if err != nil {
		return nil, err
	}
	n := 0
	for n < len(events) && !events[n].Time.After(t) {
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: %s did not exist at %s", ErrVersionNotFound, c.ID, t.Format(time.RFC3339))
	}
	return replay(c.ID, events[:n]), nil
}

// read returns the events of versions from..to of c.
func (h *History) read(ctx context.Context, c *processor.Customer, from, to int64) ([]Event, error) {
	offsets, err := c.History.Offsets()
	if err != nil {
		return nil, fmt.Errorf("failed to decode the history of %s: %w", c.ID, err)
	}
	first := c.History.FirstVersion()
	want := offsets[from-first : to-first+1]
	partition := processor.PartitionFor(c.ID, h.partitions)
	records, err := h.reader.Read(ctx, partition, want)
	if errors.Is(err, kafka.ErrOffsetGone) {
		return nil, fmt.Errorf("%w: %w", ErrHistoryTruncated, err)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the events of %s: %w", c.ID, err)
	}
	if len(records) != len(want) {
		return nil, fmt.Errorf("read %d of the %d events of %s", len(records), len(want), c.ID)
	}
	out := make([]Event, len(records))
	for i, r := range records {
		ev, err := processor.Decode(c.ID, r.Value)
		if err != nil {
			return nil, fmt.Errorf("event %d of %s at offset %d no longer decodes: %w", from+int64(i), c.ID, r.Offset, err)
		}
		ev.Offset = r.Offset
		if ev.Time.IsZero() {
			ev.Time = r.Timestamp.UTC() // as the processor did
		}
		out[i] = Event{Version: from + int64(i), Partition: partition, Offset: r.Offset, Time: ev.Time,
			Event: json.RawMessage(r.Value), decoded: ev}
	}
	return out, nil
}

// replay folds accepted events from an empty state. Only accepted events
// are replayed, so the result's recent decisions list those alone.
func replay(id string, events []Event) *processor.Customer {
	var state processor.Customer
	for _, e := range events {
		state, _ = processor.Apply(state, e.decoded)
	}
	state.ID = id
	return &state
}

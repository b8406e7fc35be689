package crash

import (
	"fmt"
	"time"

	"github.com/eventfold/eventfold/processor"
)

// TableEntry is the latest record of one key of the group table, with a
// description of every record of the key still in the topic.
type TableEntry struct {
	Customer  *processor.Customer // nil after a tombstone
	Partition int32
	Offset    int64
	Time      time.Time
	Records   []string
}

// Table is the group table as read back from its topic.
type Table map[string]TableEntry

// NewTable decodes the records of a table topic, each partition in offset
// order, keeping the latest entry per key.
func NewTable(log Log) (Table, error) {
	t := Table{}
	for _, records := range log {
		for _, r := range records {
			e := t[r.Key]
			e.Partition, e.Offset, e.Time, e.Customer = r.Partition, r.Offset, r.Timestamp, nil
			described := "tombstone"
			if r.Value != nil {
				c, err := processor.DecodeCustomer(r.Value)
				if err != nil {
					return nil, fmt.Errorf("table record %d/%d of %s: %w", r.Partition, r.Offset, r.Key, err)
				}
				e.Customer = c
				described = fmt.Sprintf("version %d, last event %s, next_offset %d", c.Version, c.LastEventID, c.NextOffset)
			}
			e.Records = append(e.Records, fmt.Sprintf("offset %d at %s: %s", r.Offset, Clock(r.Timestamp), described))
			t[r.Key] = e
		}
	}
	return t, nil
}

// Check compares every entry, history included, with the fold. The
// processor stores version-0 entries too, to hold decisions, so the table
// must have an entry for every key of the fold.
func (t Table) Check(f Fold) *Tally {
	tally := NewTally()
	for id, want := range f.States {
		e, ok := t[id]
		if (!ok || e.Customer == nil) && want.Version == 0 {
			tally.Add(id, Missing, "no table entry for an id with only rejections")
			continue
		}
		tally.Check(id, want, e.Customer, true)
	}
	for id := range t {
		if _, ok := f.States[id]; !ok {
			tally.Add(id, Differs, "in the table, not in the fold")
		}
	}
	return tally
}

// Clock formats a time of day for reports, in UTC to the millisecond.
func Clock(t time.Time) string { return t.UTC().Format("15:04:05.000") }

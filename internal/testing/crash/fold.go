package crash

import (
	"sort"
	"time"

	"github.com/eventfold/eventfold/processor"
)

// Placement is where the fold accepted an event: the customer and the
// version the event made, and the record that carried it.
type Placement struct {
	Customer  string
	Version   int64
	Partition int32
	Offset    int64
	Timestamp time.Time // the record's
}

// Fold is the reference fold of an events log: the states the service
// must serve, and what became of every event id.
type Fold struct {
	// States is every customer's state, including version-0 entries of
	// ids that were never registered (the service keeps those too).
	States map[string]processor.Customer
	// Accepted lists, per event id, every record the fold accepted it
	// from. An id with two placements was applied twice.
	Accepted map[string][]Placement
	// Events lists each customer's accepted event ids in version order.
	Events map[string][]string
	// Copies counts the records of each event id. A client that retries
	// with the same id after an uncertain answer may add a copy; the fold
	// must then decide it as a duplicate.
	Copies map[string]int

	Records, AcceptedEvents, Rejected, Duplicates, DeadLetters int
}

// FoldLog folds log as the processor does: each partition in offset order
// with the record's own offset, the record timestamp standing in for a
// missing event time, and malformed or misplaced records left out (the
// processor dead-letters them). Partitions are independent, so their order
// does not matter.
func FoldLog(log Log, partitions int32) Fold {
	f := Fold{
		States:   map[string]processor.Customer{},
		Accepted: map[string][]Placement{},
		Events:   map[string][]string{},
		Copies:   map[string]int{},
	}
	ps := make([]int32, 0, len(log))
	for p := range log {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	for _, p := range ps {
		for _, r := range log[p] {
			f.add(r, partitions)
		}
	}
	return f
}

func (f *Fold) add(r Record, partitions int32) {
	f.Records++
	ev, err := processor.Decode(r.Key, r.Value)
	if err != nil || processor.PartitionFor(r.Key, partitions) != r.Partition {
		f.DeadLetters++
		return
	}
	f.Copies[ev.ID]++
	ev.Offset = r.Offset
	if ev.Time.IsZero() {
		ev.Time = r.Timestamp.UTC()
	}
	next, d := processor.Apply(f.States[r.Key], ev)
	switch d.Outcome {
	case processor.Duplicate:
		f.Duplicates++
		return
	case processor.Accepted:
		f.AcceptedEvents++
		f.Accepted[ev.ID] = append(f.Accepted[ev.ID], Placement{Customer: r.Key, Version: d.Version,
			Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp})
		f.Events[r.Key] = append(f.Events[r.Key], ev.ID)
	case processor.Rejected:
		f.Rejected++
	}
	f.States[r.Key] = next
}

// AppliedTwice returns the event ids the fold accepted more than once and
// how many extra applications there were. The fold recognises a repeated
// id only among a customer's last processor.RecentDecisions decisions, so
// a retry that comes later than that is applied again.
func (f Fold) AppliedTwice() (ids []string, extra int) {
	for id, ps := range f.Accepted {
		if len(ps) > 1 {
			ids = append(ids, id)
			extra += len(ps) - 1
		}
	}
	sort.Strings(ids)
	return ids, extra
}

// Registered is the number of customers the service must list.
func (f Fold) Registered() int {
	n := 0
	for _, c := range f.States {
		if c.Registered() {
			n++
		}
	}
	return n
}

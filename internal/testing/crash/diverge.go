package crash

import (
	"fmt"
	"slices"
)

// Divergence is how the events a service applied to one customer differ
// from the events the fold of the log accepted.
type Divergence struct {
	// Served is the events the service lists, nil if it could not list
	// them.
	Served []string
	// NotApplied are events the fold accepted and the service did not
	// apply: lost.
	NotApplied []string
	// Twice are events the service applied more than once.
	Twice []string
	// Rejected are events the service applied and the fold rejects: after
	// the service missed an event, a write conflicting with it can pass.
	Rejected []string
}

func (d Divergence) String() string {
	return fmt.Sprintf("the service lists %v: not applied %v, applied twice %v, applied though the log's fold rejects them %v",
		d.Served, d.NotApplied, d.Twice, d.Rejected)
}

// Diverge compares the events a service lists for id (nil if it could not
// list them) with the fold's. When there is no list, or it matches the
// fold's while a state was found at version got, the version stands in:
// each version short of the fold's is an event not applied, each one
// beyond an event applied twice.
func Diverge(f Fold, id string, served []string, got int64) Divergence {
	want := f.Events[id]
	if served == nil || slices.Equal(served, want) {
		var d Divergence
		for v := got + 1; v <= int64(len(want)); v++ {
			d.NotApplied = append(d.NotApplied, want[v-1])
		}
		for v := int64(len(want)) + 1; v <= got; v++ {
			d.Twice = append(d.Twice, fmt.Sprintf("(version %d)", v))
		}
		return d
	}
	d := Divergence{Served: served}
	count := map[string]int{}
	for _, e := range served {
		if count[e]++; count[e] == 2 {
			d.Twice = append(d.Twice, e)
		}
	}
	accepted := map[string]bool{}
	for _, e := range want {
		accepted[e] = true
		if count[e] == 0 {
			d.NotApplied = append(d.NotApplied, e)
		}
	}
	for _, e := range served {
		if !accepted[e] && count[e] > 0 {
			d.Rejected = append(d.Rejected, e)
			count[e] = 0
		}
	}
	return d
}

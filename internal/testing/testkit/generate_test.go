package testkit

import (
	"bytes"
	"testing"

	"github.com/eventfold/eventfold/processor"
)

// The generator's own bookkeeping must agree with the fold: every event is
// accepted except the stale-version renames, which conflict.
func TestGenerateFoldsAsPlanned(t *testing.T) {
	lines := Generate(7, 300, 5000)
	if len(lines) != 5000 {
		t.Fatalf("generated %d events, want 5000", len(lines))
	}
	states := map[string]processor.Customer{}
	var stale, conflicts, accepted int
	for i, l := range lines {
		ev, err := processor.Decode(l.Key, l.Value)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		ev.Offset = int64(i)
		next, d := processor.Apply(states[l.Key], ev)
		states[l.Key] = next
		if bytes.Contains(l.Value, []byte(`"Stale"`)) {
			stale++
		}
		switch {
		case d.Outcome == processor.Accepted:
			accepted++
		case d.Reason == processor.ReasonVersionConflict:
			conflicts++
		default:
			t.Errorf("event %d (%s): unplanned decision %+v", i, l.Value, d)
		}
	}
	if conflicts != stale || accepted != len(lines)-stale {
		t.Errorf("conflicts %d, stale events %d, accepted %d of %d", conflicts, stale, accepted, len(lines))
	}
	if len(Registered(states)) != 300 {
		t.Errorf("%d customers registered, want 300", len(Registered(states)))
	}
	if again := Generate(7, 300, 5000); !bytes.Equal(again[4999].Value, lines[4999].Value) {
		t.Error("Generate is not deterministic")
	}
}

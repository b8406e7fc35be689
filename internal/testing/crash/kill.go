package crash

import (
	"fmt"
	"time"
)

// Kill is one fault of a campaign and how the service recovered from it.
// The durations count from the kill; zero means it did not happen.
type Kill struct {
	N      int
	Kind   string // "instance" or "broker"
	Victim string
	At     time.Time
	// Acked is the number of events acknowledged at the kill, and
	// DuringIngest whether the ingest was still running.
	Acked        int64
	DuringIngest bool
	// BrokerBack is when the broker answered again (broker kills).
	BrokerBack time.Duration
	// Ready: the restarted instance answered /readyz 200 (after a broker
	// kill: every instance at once). Progress: every partition's committed
	// offset moved past its value at the kill, or reached the log's end.
	// Whole: every instance ready and the group stable with all of them.
	// Recovered: all three.
	Ready, Progress, Whole, Recovered time.Duration
	Err                               error
}

// Recovery describes how the service recovered.
func (k Kill) Recovery() string {
	r := func(d time.Duration) string {
		if d == 0 {
			return "never"
		}
		return d.Round(10 * time.Millisecond).String()
	}
	s := fmt.Sprintf("recovered in %s (ready %s, progress %s, whole %s)", r(k.Recovered), r(k.Ready), r(k.Progress), r(k.Whole))
	if k.Kind == "broker" {
		s += ", broker back after " + r(k.BrokerBack)
	}
	if !k.DuringIngest {
		s += ", after the ingest"
	}
	return s
}

// Recoveries returns the recovery times of the kills of a kind that were
// recovered from.
func Recoveries(kills []Kill, kind string) []time.Duration {
	var out []time.Duration
	for _, k := range kills {
		if k.Kind == kind && k.Err == nil {
			out = append(out, k.Recovered)
		}
	}
	return out
}

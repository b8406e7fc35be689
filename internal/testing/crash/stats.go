package crash

import (
	"slices"
	"time"
)

// Spread summarises durations: the smallest, the median and the largest.
type Spread struct {
	N                int
	Min, Median, Max time.Duration
}

// Summarize returns the spread of ds; the median of an even count is the
// mean of the middle two.
func Summarize(ds []time.Duration) Spread {
	if len(ds) == 0 {
		return Spread{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	median := s[len(s)/2]
	if len(s)%2 == 0 {
		median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{N: len(s), Min: s[0], Median: median, Max: s[len(s)-1]}
}

func (s Spread) String() string {
	if s.N == 0 {
		return "none"
	}
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
	return "min " + r(s.Min).String() + ", median " + r(s.Median).String() + ", max " + r(s.Max).String()
}

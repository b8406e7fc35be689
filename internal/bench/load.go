package bench

import (
	"context"
	"math"
	"math/rand"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Latency summarises one side of a load: every request's latency is
// recorded and the percentiles are exact (nearest rank).
type Latency struct {
	Requests int64   `json:"requests"`
	Seconds  float64 `json:"seconds"`
	PerSec   float64 `json:"per_second"`
	// OK counts the requests with the expected outcome; Outcomes counts
	// every outcome, e.g. "200", "409", "202", "error".
	OK       int64            `json:"ok"`
	Outcomes map[string]int64 `json:"outcomes"`
	P50ms    float64          `json:"p50_ms"`
	P99ms    float64          `json:"p99_ms"`
	P999ms   float64          `json:"p99_9_ms"`
	MaxMs    float64          `json:"max_ms"`
}

// sample is what one side of a load gathered.
type sample struct {
	latencies []time.Duration
	outcomes  map[string]int64
	elapsed   time.Duration
}

func (s *sample) merge(o sample) {
	s.latencies = append(s.latencies, o.latencies...)
	if s.outcomes == nil {
		s.outcomes = map[string]int64{}
	}
	for k, v := range o.outcomes {
		s.outcomes[k] += v
	}
	s.elapsed += o.elapsed
}

// summary computes the figures; ok names the expected outcome.
func (s *sample) summary(ok string) Latency {
	slices.Sort(s.latencies)
	elapsed := max(s.elapsed, time.Millisecond)
	n := int64(len(s.latencies))
	out := Latency{Requests: n, Seconds: elapsed.Seconds(), PerSec: float64(s.outcomes[ok]) / elapsed.Seconds(), OK: s.outcomes[ok], Outcomes: s.outcomes}
	if n > 0 {
		out.P50ms = ms(percentile(s.latencies, 0.50))
		out.P99ms = ms(percentile(s.latencies, 0.99))
		out.P999ms = ms(percentile(s.latencies, 0.999))
		out.MaxMs = ms(s.latencies[n-1])
	}
	return out
}

// percentile is the nearest-rank percentile of sorted latencies.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// request does one request of worker w and returns its outcome, or ""
// for a setup step that is neither timed nor counted.
type request func(ctx context.Context, w int, rng *rand.Rand) string

// load runs workers that repeat do until d has passed. A request in
// flight at the end is finished, not cancelled: cutting a write off
// would leave its outcome unknown to its writer. The load lasts until
// the last one returns.
func load(ctx context.Context, workers int, d time.Duration, seed int64, do request) sample {
	parts := make([]sample, workers)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed + int64(w)))
			s := sample{latencies: make([]time.Duration, 0, 1024), outcomes: map[string]int64{}}
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t := time.Now()
				outcome := do(ctx, w, rng)
				lat := time.Since(t)
				if outcome == "" {
					continue // setup for a later request, not a request of the load
				}
				s.latencies = append(s.latencies, lat)
				s.outcomes[outcome]++
			}
			parts[w] = s
		}()
	}
	wg.Wait()
	var out sample
	for _, p := range parts {
		out.merge(p)
	}
	out.elapsed = time.Since(start)
	return out
}

// outcomeError is the outcome of a request that got no answer.
const outcomeError = "error"

func statusOutcome(code int) string { return strconv.Itoa(code) }

// alternate runs the baseline and the service in turns, so that a noisy
// neighbour hits both alike, and merges each side's samples. A warm-up
// of each, unrecorded, opens the connections first.
func alternate(ctx context.Context, workers int, d time.Duration, seed int64, baseline, service request) (sample, sample) {
	rounds := 1
	if d >= 3*time.Second {
		rounds = 3
	}
	warm := min(time.Second, d/10)
	load(ctx, workers, warm, seed, baseline)
	load(ctx, workers, warm, seed, service)
	var b, s sample
	for i := range rounds {
		b.merge(load(ctx, workers, d/time.Duration(rounds), seed+int64(i)*1000, baseline))
		s.merge(load(ctx, workers, d/time.Duration(rounds), seed+int64(i)*1000, service))
	}
	return b, s
}

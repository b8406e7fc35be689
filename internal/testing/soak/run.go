package soak

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/processor"
)

// Report is what a soak run measured.
type Report struct {
	Started         time.Time `json:"started"`
	DurationSeconds float64   `json:"duration_seconds"` // of the measured load
	WarmupSeconds   float64   `json:"warmup_seconds"`
	Config          struct {
		EventsPerSecond, Customers, Lookups, LookupsPerSecond, Writers, WriterCustomers, Watchers int
	} `json:"config"`

	// Baseline is taken after the warm-up, Final after the measured load;
	// both at rest (see Snapshot).
	Baseline Snapshot `json:"baseline"`
	Final    Snapshot `json:"final"`
	// Samples are taken during the measured load, which adds its own
	// goroutines and garbage to the service's.
	Samples []Sample `json:"samples"`
	Peak    Sample   `json:"peak"` // the highest of each figure
	// LiveHeapSlope is the least-squares slope of the live heap over the
	// measured load, in bytes per hour: a leak shows as a steady slope.
	LiveHeapSlope float64 `json:"live_heap_slope_bytes_per_hour"`

	// Produced events (Malformed of them bound for the dead-letter topic),
	// in both phases and in the measured one.
	Produced         int64 `json:"produced"`
	Malformed        int64 `json:"malformed"`
	MeasuredProduced int64 `json:"measured_produced"`
	// Requests the clients sent and got an answer to, by route and status,
	// in both phases and in the measured one.
	Requests         int64            `json:"requests"`
	MeasuredRequests int64            `json:"measured_requests"`
	Statuses         map[string]int64 `json:"statuses"`
	WatchConnections int64            `json:"watch_connections"`
	WatchEvents      int64            `json:"watch_events"`
	WatchDisorder    int64            `json:"watch_disorder"`
	// Errors are answers the service must never give under this load (5xx,
	// transport errors, conflicts no pending write explains): the count and
	// the first few.
	ErrorCount int64    `json:"error_count"`
	Errors     []string `json:"errors,omitempty"`

	// Reference is the state every producer customer must end in: the
	// pure fold of the events produced.
	Reference map[string]processor.Customer `json:"-"`
	// Written bounds the final version of every writer customer.
	Written map[string]Bounds `json:"-"`
}

// Bounds are the versions a customer may end at: writes answered 201
// landed, and 202 ones may have.
type Bounds struct{ Min, Max int64 }

// Run runs the warm-up, takes the baseline, runs the measured load and
// takes the final figures. An error means the load could not run; what it
// found is in the report, for the caller to judge.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("failed to validate soak config: %w", err)
	}
	r := &Report{Started: time.Now().UTC(), Statuses: map[string]int64{}}
	r.Config.EventsPerSecond, r.Config.Customers = cfg.EventsPerSecond, cfg.Customers
	r.Config.Lookups, r.Config.LookupsPerSecond = cfg.Lookups, cfg.LookupsPerSecond
	r.Config.Writers, r.Config.WriterCustomers, r.Config.Watchers = cfg.Writers, cfg.WriterCustomers, cfg.Watchers

	st := newStream(cfg.Seed, cfg.Customers)
	writers := make([]*writer, cfg.Writers)
	readIDs := append([]string(nil), st.ids...)
	for i := range writers {
		writers[i] = newWriter(cfg.Seed, i, cfg.WriterCustomers)
		readIDs = append(readIDs, writers[i].ids...)
	}
	t := newTally()

	warm := time.Now()
	if err := phase(ctx, cfg, cfg.Warmup, st, t, readIDs, writers, nil); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}
	r.WarmupSeconds = time.Since(warm).Seconds()
	r.Baseline = settle(ctx, cfg.Settle, cfg.BrokerPID)
	produced, requests := t.produced.Load(), t.requests.Load()

	start := time.Now()
	err := phase(ctx, cfg, cfg.Duration, st, t, readIDs, writers, &r.Samples)
	r.DurationSeconds = time.Since(start).Seconds()
	r.Final = settle(ctx, cfg.Settle, cfg.BrokerPID)

	r.Produced, r.Malformed = t.produced.Load(), t.malformed.Load()
	r.Requests = t.requests.Load()
	r.Statuses, r.Errors, r.ErrorCount = t.snapshot()
	r.WatchConnections, r.WatchEvents, r.WatchDisorder = t.watchConnections.Load(), t.watchEvents.Load(), t.watchDisorder.Load()
	r.Reference = st.reference()
	r.Written = map[string]Bounds{}
	for _, w := range writers {
		for id, cs := range w.customers {
			r.Written[id] = Bounds{Min: cs.Accepted, Max: cs.Accepted + cs.Pending}
		}
	}
	r.MeasuredProduced, r.MeasuredRequests = r.Produced-produced, r.Requests-requests
	r.summarize()
	if err != nil {
		return r, fmt.Errorf("measured load: %w", err)
	}
	return r, nil
}

// phase runs the whole load for d, then stops it and waits for every
// client to end. With samples set, it samples meanwhile.
func phase(ctx context.Context, cfg Config, d time.Duration, st *stream, t *tally, readIDs []string, writers []*writer, samples *[]Sample) error {
	if d <= 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ClientID("eventfold-soak"), kgo.ProducerLinger(0))
	if err != nil {
		return fmt.Errorf("failed to create the producer: %w", err)
	}
	defer cl.Close()
	c := newClients(cfg, t, readIDs)
	defer c.close()

	loadCtx, stop := context.WithTimeout(ctx, d)
	defer stop()
	var wg sync.WaitGroup
	var produceErr error
	seed := time.Now().UnixNano()
	spawn := func(f func(*rand.Rand)) {
		wg.Add(1)
		rng := rand.New(rand.NewSource(seed))
		seed++
		go func() {
			defer wg.Done()
			f(rng)
		}()
	}
	spawn(func(*rand.Rand) {
		if err := st.produce(loadCtx, cl, cfg.EventsPerSecond, t); err != nil {
			produceErr = err
			stop() // the reference no longer says what was produced
		}
	})
	for range cfg.Lookups {
		spawn(func(rng *rand.Rand) { c.lookup(loadCtx, rng) })
	}
	for _, w := range writers {
		spawn(func(rng *rand.Rand) { c.write(loadCtx, w, rng) })
	}
	for range cfg.Watchers {
		spawn(func(rng *rand.Rand) { c.watch(loadCtx, rng) })
	}
	if samples != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			*samples = sampler(loadCtx, cfg.SampleEvery, cfg.BrokerPID, t, cfg.Progress)
		}()
	}
	wg.Wait()
	return produceErr
}

// summarize fills the peaks and the live-heap slope.
func (r *Report) summarize() {
	var n, sx, sy, sxx, sxy float64
	for _, s := range r.Samples {
		r.Peak.Goroutines = max(r.Peak.Goroutines, s.Goroutines)
		r.Peak.HeapInuseBytes = max(r.Peak.HeapInuseBytes, s.HeapInuseBytes)
		r.Peak.LiveHeapBytes = max(r.Peak.LiveHeapBytes, s.LiveHeapBytes)
		r.Peak.RSSBytes = max(r.Peak.RSSBytes, s.RSSBytes)
		r.Peak.BrokerRSSBytes = max(r.Peak.BrokerRSSBytes, s.BrokerRSSBytes)
		x, y := s.Seconds/3600, float64(s.LiveHeapBytes)
		n, sx, sy, sxx, sxy = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	if d := n*sxx - sx*sx; n >= 3 && d > 0 {
		r.LiveHeapSlope = (n*sxy - sx*sy) / d
	}
}

package soak

import (
	"errors"
	"fmt"
	"time"
)

// Config configures a soak run.
type Config struct {
	// BaseURL is the service's HTTP API, e.g. http://127.0.0.1:8080.
	BaseURL string
	// Brokers and Topic are where the producer appends its events.
	Brokers []string
	Topic   string

	// Duration is the measured load; Warmup runs before the baseline.
	Duration time.Duration
	Warmup   time.Duration

	// EventsPerSecond is the producer's rate over Customers customers.
	EventsPerSecond int
	Customers       int
	// Lookups are concurrent readers, each at LookupsPerSecond.
	Lookups          int
	LookupsPerSecond int
	// Writers post events, each to WriterCustomers customers of its own,
	// pausing WriterPause between writes.
	Writers         int
	WriterCustomers int
	WriterPause     time.Duration
	// Watchers hold a change stream open for up to WatchFor, then connect
	// again.
	Watchers int
	WatchFor time.Duration

	// SampleEvery is the interval of the samples of the measured load.
	SampleEvery time.Duration
	// Settle bounds the wait for goroutines to end once the load stopped.
	Settle time.Duration
	// BrokerPID, when set, is a broker process whose resident set is
	// sampled beside this process's.
	BrokerPID int
	Seed      int64
	// Progress, when set, receives every sample as it is taken.
	Progress func(Sample)
}

// DefaultConfig returns a moderate load: it keeps a small machine busy
// without saturating it, since a soak looks for growth, not a limit.
func DefaultConfig() Config {
	return Config{
		Duration:         2 * time.Minute,
		Warmup:           20 * time.Second,
		EventsPerSecond:  100,
		Customers:        300,
		Lookups:          8,
		LookupsPerSecond: 25,
		Writers:          4,
		WriterCustomers:  10,
		WriterPause:      100 * time.Millisecond,
		Watchers:         8,
		WatchFor:         5 * time.Second,
		SampleEvery:      5 * time.Second,
		Settle:           30 * time.Second,
		Seed:             1,
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.BaseURL == "":
		return errors.New("no base URL")
	case len(c.Brokers) == 0 || c.Topic == "":
		return errors.New("no brokers or topic to produce to")
	case c.Duration <= 0 || c.Warmup < 0:
		return fmt.Errorf("duration %s must be positive and warm-up %s not negative", c.Duration, c.Warmup)
	case c.EventsPerSecond <= 0 || c.Customers <= 0:
		return errors.New("the producer needs a positive rate and customers")
	case c.Lookups < 0 || c.Writers < 0 || c.Watchers < 0:
		return errors.New("client counts must not be negative")
	case c.Lookups > 0 && c.LookupsPerSecond <= 0:
		return errors.New("lookups need a positive rate")
	case c.Writers > 0 && c.WriterCustomers <= 0:
		return errors.New("writers need customers")
	case c.Watchers > 0 && c.WatchFor < time.Second:
		return fmt.Errorf("watch time %s must be at least 1s", c.WatchFor)
	case c.SampleEvery <= 0 || c.Settle <= 0:
		return errors.New("sample interval and settle time must be positive")
	}
	return nil
}

package crash

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// IngestConfig configures the background ingest of a campaign.
type IngestConfig struct {
	Brokers []string
	Topic   string
	Events  []testkit.Line
	// Rate is the target in events per second.
	Rate int
	// Reserve events are held back while Hold is open: they trickle out
	// at a few dozen a second, so that the faults of a campaign that runs
	// late still strike during the ingest. Closing Hold releases them; a
	// nil Hold holds nothing back.
	Reserve int
	Hold    <-chan struct{}
}

// Ingest produces events in order at a bounded rate, each batch
// acknowledged by all in-sync replicas before the next. The idempotent
// producer keeps each partition's order across retries, and its retries
// outlast a broker restart.
type Ingest struct {
	acked  atomic.Int64
	done   chan struct{}
	err    error     // set before done is closed
	ended  time.Time // set before done is closed
	cancel context.CancelFunc
	client *kgo.Client
}

// Trickle is the pace of held-back events.
const (
	trickleBatch = 10
	tricklePause = 200 * time.Millisecond
)

// StartIngest starts producing; Close stops it.
func StartIngest(cfg IngestConfig) (*Ingest, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(3*time.Minute),
		kgo.RequestRetries(1000),
		kgo.RetryTimeout(3*time.Minute),
	)
	if err != nil {
		return nil, fmt.Errorf("failed to create the producer: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &Ingest{done: make(chan struct{}), cancel: cancel, client: cl}
	go func() {
		defer func() {
			in.ended = time.Now()
			close(in.done)
		}()
		in.err = in.run(ctx, cfg)
	}()
	return in, nil
}

func (in *Ingest) run(ctx context.Context, cfg IngestConfig) error {
	batch := max(1, cfg.Rate/10)
	pause := time.Duration(batch) * time.Second / time.Duration(max(1, cfg.Rate))
	for i := 0; i < len(cfg.Events); {
		n, wait := batch, pause
		if len(cfg.Events)-i <= cfg.Reserve && cfg.Hold != nil && !closed(cfg.Hold) {
			n, wait = trickleBatch, tricklePause
		}
		events := cfg.Events[i:min(i+n, len(cfg.Events))]
		records := make([]*kgo.Record, len(events))
		for j, e := range events {
			records[j] = &kgo.Record{Key: []byte(e.Key), Value: e.Value}
		}
		if err := in.client.ProduceSync(ctx, records...).FirstErr(); err != nil {
			return fmt.Errorf("failed to produce events %d to %d: %w", i, i+len(events)-1, err)
		}
		i += len(events)
		in.acked.Add(int64(len(events)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return nil
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Acked is the number of events acknowledged so far.
func (in *Ingest) Acked() int64 { return in.acked.Load() }

// Done is closed when the ingest has ended.
func (in *Ingest) Done() <-chan struct{} { return in.done }

// Err is why the ingest ended early, or nil; read it after Done.
func (in *Ingest) Err() error { return in.err }

// Ended is when the ingest ended; read it after Done.
func (in *Ingest) Ended() time.Time { return in.ended }

// Close stops the ingest and closes the producer.
func (in *Ingest) Close() {
	in.cancel()
	<-in.done
	in.client.Close()
}

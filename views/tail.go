package views

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/processor"
)

// DefaultTailLinger is how long a Tail keeps following the table after
// its last subscriber left: a client that reconnects at once finds it
// still following, and a burst of short streams does not cost a start
// each.
const DefaultTailLinger = 30 * time.Second

// TailConfig configures a Tail.
type TailConfig struct {
	Kafka kafka.Config
	// Table is the table topic, and Partitions its partition count.
	Table      string
	Partitions int32
	// OpenState shows a state as clients see it (sealed personal data
	// opened), once per change for every subscriber; nil shows states as
	// stored.
	OpenState func(*processor.Customer) *processor.Customer
	// Linger is how long the tail follows the table after its last
	// subscriber left; 0 means DefaultTailLinger.
	Linger time.Duration
	Logger *slog.Logger
}

// Tail feeds the changes of the whole table to subscribers of every key:
// in partitioned mode an instance's own hub sees only the partitions its
// processor folds, so GET /watch reads the table topic, which every
// owner writes, instead. It follows every partition of the table from its
// end, without storing anything, and only while someone subscribes (and
// Linger after): an instance nobody watches reads nothing. The table
// topic orders the changes of each customer, and its writes are what
// every copy holds, so a watcher sees each customer's accepted changes in
// version order whichever instance folded them, across partition moves.
type Tail struct {
	cfg TailConfig
	log *slog.Logger
	hub *Hub

	mu     sync.Mutex
	ctx    context.Context // set by Run; nil before, done after
	run    *tailRun        // the current following, nil when none
	closed bool
}

// tailRun is one following of the table, from a start to its stop.
type tailRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// NewTail returns a tail that follows nothing until a subscriber comes.
func NewTail(cfg TailConfig) *Tail {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Linger <= 0 {
		cfg.Linger = DefaultTailLinger
	}
	return &Tail{cfg: cfg, log: cfg.Logger.With("component", "tail"), hub: NewHub(cfg.OpenState)}
}

// Run lets the tail follow the table until ctx ends, and then stops it
// and ends every subscription.
func (t *Tail) Run(ctx context.Context) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return errors.New("the tail ran already")
	}
	t.ctx = ctx
	t.mu.Unlock()
	<-ctx.Done()
	t.mu.Lock()
	t.closed = true
	run := t.run
	t.run = nil
	t.mu.Unlock()
	if run != nil {
		run.cancel()
		<-run.done
	}
	t.hub.CloseAll()
	return nil
}

// SubscribeAll returns a subscription to every change of the table
// written after it returns (and some written a moment before). When the
// tail does not follow the table yet, it starts: from the end of every
// partition, read before it returns, so nothing written after is missed.
// ctx bounds that start.
func (t *Tail) SubscribeAll(ctx context.Context) (*Subscription, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx == nil || t.closed {
		return nil, errors.New("the tail of the table is not running")
	}
	// Subscribed before the start, so that the first records the start
	// reads are kept for it.
	sub := t.hub.Subscribe("")
	if t.run != nil {
		return sub, nil
	}
	run, err := t.start(ctx)
	if err != nil {
		sub.Close()
		return nil, err
	}
	t.run = run
	return sub, nil
}

// Following reports whether the tail reads the table now.
func (t *Tail) Following() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.run != nil
}

// start connects, reads the end of every partition and follows them from
// there; t.mu is held.
func (t *Tail) start(ctx context.Context) (*tailRun, error) {
	sc := t.cfg.Kafka.Sarama()
	sc.ClientID = t.cfg.Kafka.ClientID + "-tail"
	sc.Metadata.AllowAutoTopicCreation = false
	client, err := connectWithin(ctx, t.cfg.Kafka.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("failed to connect the tail of the table: %w", err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("failed to build the tail's consumer: %w", err)
	}
	fail := func(err error) (*tailRun, error) {
		consumer.Close()
		client.Close()
		return nil, err
	}
	pcs := make([]sarama.PartitionConsumer, 0, t.cfg.Partitions)
	for p := range t.cfg.Partitions {
		end, err := kafka.GetOffset(ctx, client, t.cfg.Table, p, sarama.OffsetNewest)
		if err != nil {
			return fail(fmt.Errorf("failed to read the end of the table: %w", err))
		}
		pc, err := consumer.ConsumePartition(t.cfg.Table, p, end)
		if err != nil {
			return fail(fmt.Errorf("failed to follow partition %d of %s: %w", p, t.cfg.Table, err))
		}
		pcs = append(pcs, pc)
	}
	rctx, cancel := context.WithCancel(t.ctx)
	run := &tailRun{cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	for _, pc := range pcs {
		wg.Go(func() { t.follow(rctx, pc) })
	}
	go func() {
		defer close(run.done)
		t.linger(rctx, run)
		cancel()
		for _, pc := range pcs {
			pc.AsyncClose()
		}
		wg.Wait()
		consumer.Close()
		client.Close()
	}()
	t.log.Info("following the table for watchers of every change", "topic", t.cfg.Table, "partitions", t.cfg.Partitions)
	return run, nil
}

// follow publishes one partition's records until ctx ends or the
// partition consumer gives up, which ends the run.
func (t *Tail) follow(ctx context.Context, pc sarama.PartitionConsumer) {
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-pc.Errors():
			if ok {
				t.log.Warn("failed to read the table for watchers; retrying", "error", err)
			}
		case msg, ok := <-pc.Messages():
			if !ok {
				t.stop(ctx, errors.New("a partition consumer of the table closed"))
				return
			}
			t.hub.Publish(string(msg.Key), msg.Value)
		}
	}
}

// linger returns when ctx ends or nobody has subscribed for Linger.
func (t *Tail) linger(ctx context.Context, run *tailRun) {
	tick := time.NewTicker(max(t.cfg.Linger/4, time.Millisecond))
	defer tick.Stop()
	busy := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t.mu.Lock()
		if t.hub.Subscribers() > 0 {
			busy = time.Now()
		} else if time.Since(busy) >= t.cfg.Linger && t.run == run {
			t.run = nil // a subscriber from now on starts a new run
			t.mu.Unlock()
			t.log.Info("no watcher of every change left: no longer following the table")
			return
		}
		t.mu.Unlock()
	}
}

// stop ends the current run after a failure: its subscribers are
// dropped, so that their streams end and their clients reconnect,
// starting a new run.
func (t *Tail) stop(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // stopping anyway
	}
	t.log.Warn("the tail of the table stopped; ending its watch streams", "error", err)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.run != nil {
		t.run.cancel()
		t.run = nil
	}
	// Under t.mu: a subscriber that comes next starts a new run and is
	// not dropped with the old one's.
	t.hub.CloseAll()
}

// connectWithin connects a client, giving up when ctx ends: sarama's
// connection takes no context and retries for as long as its own
// timeouts, while the first watcher waits (holding the tail's lock). A
// client that connects after ctx ended is closed.
func connectWithin(ctx context.Context, brokers []string, sc *sarama.Config) (sarama.Client, error) {
	type outcome struct {
		client sarama.Client
		err    error
	}
	done := make(chan outcome, 1)
	go func() {
		c, err := sarama.NewClient(brokers, sc)
		done <- outcome{c, err}
	}()
	select {
	case o := <-done:
		return o.client, o.err
	case <-ctx.Done():
		go func() {
			if o := <-done; o.err == nil {
				o.client.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

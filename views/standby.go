package views

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/memstore"
	"github.com/eventfold/eventfold/internal/restart"
	"github.com/eventfold/eventfold/internal/store"
)

// StandbyConfig configures the standby copies of a partitioned instance.
type StandbyConfig struct {
	Kafka kafka.Config
	// Table is the table topic the copies follow.
	Table string
	// Dir holds the copies, kept across restarts; empty keeps them in
	// memory, for tests.
	Dir    string
	Buffer int
	// Partitions returns the partitions this instance stands by for now
	// (cluster.Members.StandbyPartitions).
	Partitions func() []int32
	// Owned returns the partitions the group assigned to this instance
	// (cluster.Members), nil when unknown: the copy of one that moved
	// here keeps serving until the processor serves it.
	Owned func() []int32
	// Refresh is how often Partitions is asked again; 0 means a second.
	Refresh time.Duration
	// Backoff is the pause before a failed copy follows its partition
	// again; 0 means two seconds.
	Backoff time.Duration
	Logger  *slog.Logger
}

// Standbys keeps warm copies of partitions of the table that other
// instances own, the Kafka Streams way (num.standby.replicas): each copy
// follows its partition of the table topic into a local store, so that
// when its owner stops or does not answer, this instance answers the
// partition's reads from the copy while the group moves it, instead of
// nobody answering until the new owner has restored it.
//
// A copy reads only the table topic, which holds only what Kafka
// acknowledged: it is never ahead of the table, only behind it, by its
// lag. It serves once it has caught up with the table as it was when the
// copy started, like a view.
type Standbys struct {
	cfg    StandbyConfig
	log    *slog.Logger
	hub    *Hub
	keys   atomic.Int64
	summed atomic.Int64
	lag    func(partition int32, records float64)
	unlag  func(partition int32)
	// applied counts the table records the copies stored: after a
	// restart, only those they missed.
	applied prometheus.Counter
	// moving reports a partition the processor of this instance was
	// assigned and does not serve yet, and serves one it serves (set by
	// the view).
	moving, serves func(partition int32) bool
	// settle closes the partitions the processor was revoked once it
	// runs again, or all of them when stop is set (set by the view).
	settle func(stop bool)

	mu     sync.RWMutex
	copies map[int32]*standbyCopy
}

// standbyCopy is the copy of one partition.
type standbyCopy struct {
	partition int32
	st        storage.Storage
	next      atomic.Int64 // the next table offset the copy reads
	end       atomic.Int64 // the table's high-water mark, as last seen
	serving   atomic.Bool
	stop      context.CancelFunc
	done      chan struct{}
}

// lagOf is the records of the table the copy has not read.
func (c *standbyCopy) lagOf() int64 { return max(0, c.end.Load()-c.next.Load()) }

// Run follows the partitions this instance stands by for, until ctx ends.
func (s *Standbys) Run(ctx context.Context) error {
	sc := s.cfg.Kafka.Sarama()
	sc.ClientID = s.cfg.Kafka.ClientID + "-standby"
	sc.Metadata.AllowAutoTopicCreation = false
	client, err := sarama.NewClient(s.cfg.Kafka.Brokers, sc)
	if err != nil {
		return fmt.Errorf("failed to connect the standby copies: %w", err)
	}
	defer client.Close()
	builder := memstore.Builder()
	if s.cfg.Dir != "" {
		builder = store.View(s.cfg.Dir, cmp.Or(s.cfg.Buffer, store.DefaultBuffer), func(path string, err error) {
			s.log.Warn("standby copy corrupted, starting it empty to read it from the table again", "path", path, "error", err)
		})
	}
	builder = countingBuilder(builder, &s.keys, &s.summed)
	defer s.stopAll()
	if s.settle != nil {
		defer s.settle(true)
	}
	t := time.NewTicker(cmp.Or(s.cfg.Refresh, time.Second))
	defer t.Stop()
	for {
		s.reconcile(ctx, client, builder)
		if s.settle != nil {
			s.settle(false)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// reconcile starts the copies this instance now stands by for and stops
// the others.
func (s *Standbys) reconcile(ctx context.Context, client sarama.Client, builder storage.Builder) {
	want := s.cfg.Partitions()
	var owned []int32
	if s.cfg.Owned != nil {
		owned = s.cfg.Owned()
	}
	s.mu.RLock()
	var stale []*standbyCopy
	for p, c := range s.copies {
		// A copy of a partition that moved here serves until the
		// processor has recovered it: the move costs no reads.
		moving := s.moving != nil && (s.moving(p) || slices.Contains(owned, p) && !s.serves(p))
		if !slices.Contains(want, p) && !moving {
			stale = append(stale, c)
		}
	}
	s.mu.RUnlock()
	for _, c := range stale {
		s.stopCopy(c)
	}
	for _, p := range want {
		s.mu.RLock()
		_, held := s.copies[p]
		s.mu.RUnlock()
		if held {
			continue
		}
		st, err := builder(s.cfg.Table, p)
		if err == nil {
			err = st.Open()
		}
		if err != nil {
			s.log.Warn("failed to open a standby copy", "partition", p, "error", err)
			continue
		}
		cctx, cancel := context.WithCancel(ctx)
		c := &standbyCopy{partition: p, st: st, stop: cancel, done: make(chan struct{})}
		s.mu.Lock()
		s.copies[p] = c
		s.mu.Unlock()
		s.log.Info("standing by for a partition", "partition", p)
		go func() {
			defer close(c.done)
			_ = restart.Loop(cctx, cmp.Or(s.cfg.Backoff, 2*time.Second), func(ctx context.Context) error {
				return s.follow(ctx, client, c)
			}, func(err error) {
				s.log.Warn("standby copy stopped, following its partition again", "partition", p, "error", err)
			})
		}()
	}
}

// follow reads the copy's partition of the table from where the copy
// ends until ctx ends.
func (s *Standbys) follow(ctx context.Context, client sarama.Client, c *standbyCopy) error {
	stored, err := c.st.GetOffset(-1)
	if err != nil {
		return fmt.Errorf("failed to read the copy's offset: %w", err)
	}
	start := stored + 1
	if stored < 0 {
		if start, err = client.GetOffset(s.cfg.Table, c.partition, sarama.OffsetOldest); err != nil {
			return fmt.Errorf("failed to read the table's first offset: %w", err)
		}
	}
	// The copy serves once it holds the table as it was now.
	target, err := client.GetOffset(s.cfg.Table, c.partition, sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("failed to read the table's end: %w", err)
	}
	c.next.Store(start)
	c.end.Store(target)
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("failed to build a consumer: %w", err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(s.cfg.Table, c.partition, start)
	if err != nil {
		return fmt.Errorf("failed to follow partition %d of %s from %d: %w", c.partition, s.cfg.Table, start, err)
	}
	defer pc.AsyncClose()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if !c.serving.Load() && c.next.Load() >= target {
			if err := c.st.MarkRecovered(); err != nil {
				return fmt.Errorf("failed to mark the copy recovered: %w", err)
			}
			c.serving.Store(true)
			s.log.Info("standby copy caught up", "partition", c.partition, "offset", c.next.Load())
			s.lag(c.partition, float64(c.lagOf()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			c.end.Store(max(c.end.Load(), pc.HighWaterMarkOffset()))
			s.lag(c.partition, float64(c.lagOf()))
		case cerr, ok := <-pc.Errors():
			if !ok {
				return errors.New("the partition consumer closed")
			}
			return fmt.Errorf("failed to read the table: %w", cerr)
		case msg, ok := <-pc.Messages():
			if !ok {
				return errors.New("the partition consumer closed")
			}
			if err := s.apply(c, msg); err != nil {
				return err
			}
			c.end.Store(max(c.end.Load(), pc.HighWaterMarkOffset(), msg.Offset+1))
		}
	}
}

// apply stores one table record in the copy, with its offset, and
// announces it to this instance's waiters.
func (s *Standbys) apply(c *standbyCopy, msg *sarama.ConsumerMessage) error {
	key := string(msg.Key)
	var err error
	if msg.Value == nil {
		err = c.st.Delete(key)
	} else {
		err = c.st.Set(key, msg.Value)
	}
	if err == nil {
		err = c.st.SetOffset(msg.Offset)
	}
	if err != nil {
		return fmt.Errorf("failed to store table record %d of partition %d: %w", msg.Offset, c.partition, err)
	}
	c.next.Store(msg.Offset + 1)
	s.applied.Inc()
	s.hub.Publish(key, msg.Value)
	return nil
}

// stopCopy stops following a partition and closes its store, which stays
// on disk: standing by for it again resumes where it ended.
func (s *Standbys) stopCopy(c *standbyCopy) {
	s.mu.Lock()
	delete(s.copies, c.partition)
	s.mu.Unlock()
	c.stop()
	<-c.done
	s.unlag(c.partition)
	if err := c.st.Close(); err != nil {
		s.log.Warn("failed to close a standby copy", "partition", c.partition, "error", err)
	}
	s.log.Info("no longer standing by for a partition", "partition", c.partition)
}

func (s *Standbys) stopAll() {
	s.mu.RLock()
	all := make([]*standbyCopy, 0, len(s.copies))
	for _, c := range s.copies {
		all = append(all, c)
	}
	s.mu.RUnlock()
	for _, c := range all {
		s.stopCopy(c)
	}
}

// serving returns the copy of partition p when it serves reads, or nil.
func (s *Standbys) serving(p int32) *standbyCopy {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	c := s.copies[p]
	s.mu.RUnlock()
	if c == nil || !c.serving.Load() {
		return nil
	}
	return c
}

// Held returns the partitions this instance holds a serving copy of.
func (s *Standbys) Held() []int32 {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []int32
	for p, c := range s.copies {
		if c.serving.Load() {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// Keys returns the table entries the copies hold.
func (s *Standbys) Keys() int64 {
	if s == nil {
		return 0
	}
	return s.keys.Load()
}

// newStandbys builds the standby copies of a partitioned view, announcing
// their changes on hub, and registers their metrics.
func newStandbys(cfg StandbyConfig, hub *Hub, reg prometheus.Registerer) (*Standbys, error) {
	if cfg.Partitions == nil || cfg.Table == "" {
		return nil, errors.New("standby copies need the table topic and the partitions to stand by for")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Standbys{cfg: cfg, log: cfg.Logger.With("component", "standby"), hub: hub, copies: map[int32]*standbyCopy{}}
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "eventfold_standby_lag_records",
		Help: "Partitioned mode with --standby-replicas: records of the table partition a standby copy has not read (the table's high-water mark minus the copy's next offset).",
	}, []string{"partition"})
	s.lag = func(p int32, records float64) { lag.WithLabelValues(strconv.Itoa(int(p))).Set(records) }
	s.unlag = func(p int32) { lag.DeleteLabelValues(strconv.Itoa(int(p))) }
	s.applied = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eventfold_standby_records_total",
		Help: "Table records the standby copies stored; a restarted copy reads only the records past its checkpoint.",
	})
	for _, c := range []prometheus.Collector{lag, s.applied,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eventfold_partitions_standby",
			Help: "Partitioned mode: partitions of the table this instance keeps a warm standby copy of that has caught up, and so can serve while their owner cannot.",
		}, func() float64 { return float64(len(s.Held())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eventfold_standby_keys",
			Help: "Table entries held by this instance's standby copies (not counted in eventfold_view_keys).",
		}, func() float64 { return float64(s.Keys()) }),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("failed to register standby metrics: %w", err)
		}
	}
	return s, nil
}

package processor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/memstore"
	"github.com/eventfold/eventfold/internal/restart"
	"github.com/eventfold/eventfold/internal/store"
)

// Dead-letter record headers. The record keeps the original key, value
// and headers; these say why and where it came from.
const (
	HeaderReason    = "eventfold.reason"
	HeaderError     = "eventfold.error"
	HeaderTopic     = "eventfold.topic"
	HeaderPartition = "eventfold.partition"
	HeaderOffset    = "eventfold.offset"
	HeaderTruncated = "eventfold.truncated_from"
)

// maxDeadLetterRecord keeps a dead-letter record under the producer's and
// the broker's default 1 MiB limits. A value that would not fit beside its
// headers is truncated and its original size recorded: a failed emit would
// stop the processor, and a record that fits is kept byte for byte.
const maxDeadLetterRecord = 1<<20 - 1<<10

// Config configures the processor.
type Config struct {
	Kafka  kafka.Config
	Topics kafka.Topics
	// Partitions is the partition count of the events topic, as found by
	// kafka.Setup: records on any other partition than their key's are
	// rejected as wrong_partition.
	Partitions int32
	// RestartBackoff is the pause before the processor is rebuilt after
	// it failed, for example when the brokers went away.
	RestartBackoff time.Duration
	// StorageDir holds the processor's local copy of its partitions of the
	// table, on disk so that a million customers do not live in memory.
	// It is kept across restarts and partition moves, and holds only
	// table writes Kafka acknowledged (see checkpoints), so a restart
	// reads only the table records written after it. Empty keeps the
	// copy in memory, recovered whole at every start.
	StorageDir string
	// StorageBuffer bounds the bytes of table writes held in memory, over
	// all partitions, before they are written to StorageDir; 0 means
	// store.DefaultBuffer. More memory, fewer and larger leveldb writes.
	StorageBuffer int
	// Keyring authenticates sealed personal data, and an erasure writes
	// tombstones of the customer's keys to Topics.Keys(). Nil turns
	// erasure off: sealed values fold unchecked and no key is erased.
	Keyring Keyring
	// WrapStorage, if set, wraps the storage of each partition the
	// processor is assigned: a partitioned view serves lookups from it.
	WrapStorage func(storage.Builder) storage.Builder
	// WrapAcknowledged, if set, wraps the kept copy of each partition
	// under the checkpoints: the wrapper sees the table records recovery
	// reads and the processor's writes once Kafka acknowledged them, in
	// table order, never a write the table may not get. A replica view
	// serves the partitions the processor owns from it.
	WrapAcknowledged func(storage.Builder) storage.Builder
	// MemberData, if set, returns what the processor sends to the
	// consumer group as this member's user data (sarama's
	// Consumer.Group.Member.UserData) at each build: the other instances
	// read it beside the member's assignment, as the advertised address
	// of a partitioned instance.
	MemberData func() []byte
	// Membership is how the processor joins its consumer group: with an
	// instance id, as a static member that keeps its partitions across a
	// clean restart.
	Membership kafka.Membership
	// Rebalanced, if set, is called when the group assigned the
	// processor its partitions.
	Rebalanced func()
	Logger     *slog.Logger
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return fmt.Errorf("failed to validate kafka config: %w", err)
	}
	switch {
	case c.Topics.Events == "":
		return errors.New("no events topic")
	case c.Topics.Group == "":
		return errors.New("no group")
	case c.Partitions <= 0:
		return fmt.Errorf("partition count %d must be positive", c.Partitions)
	}
	if err := c.Membership.Validate(c.Kafka.Version); err != nil {
		return fmt.Errorf("failed to validate group membership: %w", err)
	}
	return nil
}

// Processor folds the events topic into the group table with goka.
type Processor struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	running atomic.Bool
	current atomic.Pointer[goka.Processor] // the running goka processor, if any
}

// New builds a processor; call Run to start it.
func New(cfg Config, reg prometheus.Registerer) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("failed to validate processor config: %w", err)
	}
	if cfg.RestartBackoff <= 0 {
		cfg.RestartBackoff = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Processor{cfg: cfg, log: cfg.Logger.With("component", "processor"), metrics: m}, nil
}

// Ready reports whether the processor has recovered its partitions and is
// folding events.
func (p *Processor) Ready() bool { return p.running.Load() }

// GokaProcessor returns the running goka processor, or nil between
// restarts, for goka's monitoring pages. It is rebuilt after a failure, so
// callers must not keep it.
func (p *Processor) GokaProcessor() *goka.Processor { return p.current.Load() }

// Graph returns the goka group graph of the processor.
func (p *Processor) Graph() *goka.GroupGraph { return p.graph(newCommitOrder()) }

// undecided gives up on a record the processor could not decide: nothing
// was written, and no offset at or past it may be committed, so that the
// rebuilt processor folds it again. goka's Fail does not stop the callback
// when the processor is already stopping (a rebalance), and goka may still
// hand the partition's next records to the callback then: their commits
// would carry the partition's offset past this record, which would never
// be folded (the crash campaign with erasure on saw a writer's event
// skipped after a rebalance cancelled its key lookup). So the record
// fails its own commit and, as a failed write does, every commit queued
// after it.
func undecided(order *commitOrder, commit func(error), fail func(error), err error) {
	order.abandon(err)
	commit(err)
	fail(err)
}

// graph is the group graph whose records commit in order, after the
// writes that order's producer issued before them.
func (p *Processor) graph(order *commitOrder) *goka.GroupGraph {
	edges := []goka.Edge{
		goka.Input(goka.Stream(p.cfg.Topics.Events), new(codec.Bytes), func(ctx goka.Context, msg any) {
			if err := p.fold(ctx, msg); err != nil {
				undecided(order, ctx.DeferCommit(), ctx.Fail, err)
				return
			}
			order.commit(ctx.DeferCommit())
		}),
		goka.Output(goka.Stream(p.cfg.Topics.DeadLetter()), new(codec.Bytes)),
		goka.Persist(CustomerCodec{}),
	}
	if p.cfg.Keyring != nil {
		edges = append(edges, goka.Output(goka.Stream(p.cfg.Topics.Keys()), new(codec.Bytes)))
	}
	return goka.DefineGroup(goka.Group(p.cfg.Topics.Group), edges...)
}

// Run folds events until ctx is cancelled. When goka's processor fails,
// for example because the brokers are unreachable, it is rebuilt after a
// pause: the table is then recovered from Kafka and no event is lost.
func (p *Processor) Run(ctx context.Context) error {
	run := func(ctx context.Context) error {
		defer p.running.Store(false)
		return p.runOnce(ctx)
	}
	// A fenced static member stops for good: joining again would fence
	// the instance that took its id, and so on (see fencedGroups).
	var fatal error
	loopCtx, stop := context.WithCancel(ctx)
	defer stop()
	_ = restart.Loop(loopCtx, p.cfg.RestartBackoff, run, func(err error) {
		if errors.Is(err, ErrFenced) {
			fatal = fmt.Errorf("failed to keep instance id %q in group %s: %w", p.cfg.Membership.InstanceID, p.cfg.Topics.Group, err)
			p.log.Error("processor fenced: another instance runs with the same --instance-id; this one stops", "instance_id", p.cfg.Membership.InstanceID, "error", err)
			stop()
			return
		}
		p.metrics.restarts.Inc()
		p.log.Warn("processor stopped, restarting", "error", err, "backoff", p.cfg.RestartBackoff)
	})
	return fatal
}

func (p *Processor) runOnce(ctx context.Context) error {
	ctx, fence := context.WithCancelCause(ctx)
	defer fence(nil)
	// The local copy is kept across restarts: it holds only table writes
	// Kafka acknowledged, up to its checkpoint (see checkpoints), and goka
	// reads the table records after it.
	sb := memstore.Builder()
	if p.cfg.StorageDir != "" {
		if err := p.adoptStorage(); err != nil {
			return err
		}
		sb = store.Processor(p.cfg.StorageDir, cmp.Or(p.cfg.StorageBuffer, store.DefaultBuffer), func(path string, err error) {
			p.log.Warn("processor storage corrupted, starting it empty to recover it from the table", "path", path, "error", err)
		})
	}
	if p.cfg.WrapAcknowledged != nil {
		sb = p.cfg.WrapAcknowledged(sb)
	}
	acks := newCheckpoints(p.metrics.recovered)
	sb = acks.builder(sb)
	// Outside the checkpoints: partitioned serving reads what the
	// processor folded, acknowledged by Kafka or about to be.
	if p.cfg.WrapStorage != nil {
		sb = p.cfg.WrapStorage(sb)
	}
	order := newCommitOrder()
	gp, err := goka.NewProcessor(p.cfg.Kafka.Brokers, p.graph(order),
		goka.WithHasher(NewMurmur2Hasher),
		goka.WithStorageBuilder(sb),
		goka.WithNilHandling(goka.NilProcess),
		goka.WithLogger(kafka.GokaLogger(p.cfg.Logger, "goka-processor")),
		// franz-go, not goka's sarama producer: see kafka.GokaProducer.
		// The crash campaign once saw two writes of one key land in
		// reverse order when a broker restart made a non-idempotent
		// producer retry with several requests in flight; an idempotent
		// producer orders them by sequence number.
		goka.WithProducerBuilder(orderedProducers(order, string(goka.GroupTable(goka.Group(p.cfg.Topics.Group))), acks, kafka.GokaProducerBuilder(p.cfg.Kafka, p.cfg.Logger))),
		goka.WithConsumerGroupBuilder(fencedGroups(goka.ConsumerGroupBuilderWithConfig(p.groupConfig()), fence)),
		goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(p.cfg.Kafka.Sarama())),
		goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(p.cfg.Kafka.Sarama(), tableTopicConfig(p.cfg.Topics))),
		goka.WithRebalanceCallback(func(a goka.Assignment) {
			p.metrics.rebalances.Inc()
			p.log.Info("partitions assigned", "partitions", len(a))
			if p.cfg.Rebalanced != nil {
				p.cfg.Rebalanced()
			}
		}),
	)
	if err != nil {
		return fmt.Errorf("failed to build goka processor: %w", err)
	}
	p.current.Store(gp)
	defer p.current.Store(nil)
	// Mirror goka's state into Ready for as long as this processor lives.
	runCtx, stopTracking := context.WithCancel(ctx)
	defer stopTracking()
	go p.trackState(runCtx, gp)
	err = gp.Run(ctx)
	if cause := context.Cause(ctx); errors.Is(cause, ErrFenced) {
		return cause
	}
	if errors.Is(err, sarama.ErrFencedInstancedId) { // refused at its join
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	if err != nil {
		return fmt.Errorf("failed to run goka processor: %w", err)
	}
	return nil
}

// checkpointFormat names the file that marks a storage directory whose
// partitions hold only acknowledged table writes. Earlier versions wrote
// values before Kafka acknowledged them and wiped the directory at every
// start: a directory without the mark is wiped once, and recovered whole.
const checkpointFormat = "checkpointed.v1"

// adoptStorage wipes a storage directory not written with checkpoints.
func (p *Processor) adoptStorage() error {
	mark := filepath.Join(p.cfg.StorageDir, checkpointFormat)
	if _, err := os.Stat(mark); err == nil {
		return nil
	}
	if err := os.RemoveAll(p.cfg.StorageDir); err != nil {
		return fmt.Errorf("failed to clear processor storage: %w", err)
	}
	if err := os.MkdirAll(p.cfg.StorageDir, 0o755); err != nil {
		return fmt.Errorf("failed to create processor storage: %w", err)
	}
	if err := os.WriteFile(mark, nil, 0o644); err != nil {
		return fmt.Errorf("failed to mark processor storage: %w", err)
	}
	return nil
}

// trackState mirrors goka's processor state into Ready until ctx ends.
// goka passes through Stopping and Stopped at the end of every consumer
// group session, that is at every rebalance, and then through Setup back
// to Running: Stopped is not the end, only ctx is.
func (p *Processor) trackState(ctx context.Context, gp *goka.Processor) {
	obs := gp.StateReader().ObserveStateChange()
	defer obs.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case s, ok := <-obs.C():
			if !ok {
				return
			}
			running := s == goka.ProcStateRunning
			if running && !p.running.Load() {
				p.log.Info("processor running", "group", p.cfg.Topics.Group, "events", p.cfg.Topics.Events)
			}
			p.running.Store(running)
		}
	}
}

// groupConfig is the sarama configuration of the consumer group, which
// carries MemberData to the other members. It is the only consumer group
// of the process (views and standbys consume partitions directly), so
// the only config that carries the instance id.
func (p *Processor) groupConfig() *sarama.Config {
	sc := p.cfg.Kafka.Sarama()
	p.cfg.Membership.Apply(sc)
	if p.cfg.MemberData != nil {
		sc.Consumer.Group.Member.UserData = p.cfg.MemberData()
	}
	return sc
}

func tableTopicConfig(t kafka.Topics) *goka.TopicManagerConfig {
	tm := goka.NewTopicManagerConfig()
	tm.Table.Replication = int(t.Replication)
	tm.Stream.Replication = int(t.Replication)
	tm.Stream.Retention = -1
	return tm
}

// fold is the goka callback: decide, then count and store or dead-letter.
// It returns an error, having written nothing, for a record it could not
// decide.
func (p *Processor) fold(ctx goka.Context, msg any) error {
	start := time.Now()
	value, _ := msg.([]byte) // codec.Bytes always yields []byte, nil for a tombstone
	// The state is read only for a record that decodes, as goka fails
	// the processor when its storage cannot be read.
	state := func() Customer { return CustomerOf(ctx.Value()) }
	v := decide(state, input{key: ctx.Key(), value: value, headers: ctx.Headers(), partition: ctx.Partition(),
		offset: ctx.Offset(), timestamp: ctx.Timestamp()}, p.cfg.Partitions, p.verifier(ctx.Context()))
	switch {
	case v.fail != nil:
		return fmt.Errorf("failed to decide the record at %s/%d@%d: %w", ctx.Topic(), ctx.Partition(), ctx.Offset(), v.fail)
	case v.deadLetter != "":
		p.deadLetter(ctx, v.deadLetter, v.cause, value)
		return nil
	case v.decision.Outcome == Duplicate:
		p.metrics.duplicates.Inc()
		return nil
	case v.decision.Outcome == Accepted:
		p.metrics.folded.WithLabelValues(v.event.Type).Inc()
	case v.decision.Outcome == Rejected:
		p.metrics.rejected.WithLabelValues(v.decision.Reason).Inc()
	}
	if HasPlaintext(v.event) {
		p.metrics.plaintext.Inc()
	}
	p.shred(ctx, v.shred)
	ctx.SetValue(&v.next)
	p.metrics.tableWrites.Inc()
	p.metrics.foldDuration.Observe(time.Since(start).Seconds())
	return nil
}

// input is what the processor reads of one record of the events topic.
type input struct {
	key   string
	value []byte
	// headers carry a binary-mode event's attributes (ce_*).
	headers   goka.Headers
	partition int32
	offset    int64
	timestamp time.Time
}

// verdict is what the processor does with one record: dead-letter it
// (deadLetter is the reason), ignore it (a duplicate decision), or write
// next to the table.
type verdict struct {
	deadLetter string
	cause      error
	// fail stops the processor without deciding the record, which is
	// then folded again by the rebuilt processor: the error is not the
	// record's (the keys topic could not be read).
	fail     error
	event    Event
	decision Decision
	next     Customer
	// shred lists the data keys the decision erases, when it erases.
	shred []string
}

// decide is the processor's step on one record of a customer whose state
// state returns, without goka: decode, check the partition, apply, and
// check the size of what would be written. The fuzz tests run it as fold
// does.
func decide(state func() Customer, r input, partitions int32, verify func(Event) (string, error)) verdict {
	ev, err := DecodeRecord(r.key, r.value, r.headers)
	if err != nil {
		return verdict{deadLetter: ReasonMalformed, cause: err}
	}
	if want := PartitionFor(r.key, partitions); r.partition != want {
		return verdict{deadLetter: ReasonWrongPartition,
			cause: fmt.Errorf("key %q belongs to partition %d, record is on partition %d", r.key, want, r.partition)}
	}
	if verify != nil {
		reason, err := verify(ev)
		switch {
		case reason != "":
			return verdict{deadLetter: reason, cause: err}
		case err != nil:
			// The keys could not be read: not the record's fault. It
			// must be folded again, never dead-lettered.
			return verdict{fail: err}
		}
	}
	ev.Offset = r.offset
	if ev.Time.IsZero() {
		// The record timestamp is stored in the log, so a replay sees the
		// same time and the fold stays deterministic.
		ev.Time = r.timestamp.UTC()
	}
	prev := state()
	next, d := Apply(prev, ev)
	if d.Outcome == Duplicate {
		return verdict{event: ev, decision: d}
	}
	// A table write over the producer's limit fails, and a failed write
	// stops the processor on this record for ever: such a state is never
	// written. Apply keeps every state it makes from the event contract
	// under the limit, so only a state an older build wrote can get here.
	if size := stateSize(&next); size > MaxStateBytes {
		return verdict{deadLetter: ReasonStateTooLarge,
			cause: fmt.Errorf("the state of %q would be %d bytes, over the %d-byte limit", r.key, size, MaxStateBytes)}
	}
	return verdict{event: ev, decision: d, next: next, shred: shredKeys(prev, next, ev, d)}
}

// verifier authenticates a record's sealed values with the keyring.
func (p *Processor) verifier(ctx context.Context) func(Event) (string, error) {
	if p.cfg.Keyring == nil {
		return nil
	}
	return func(ev Event) (string, error) { return verifySealed(ctx, p.cfg.Keyring, ev) }
}

// shred writes a tombstone of each data key of an erased customer, and
// the marker that says the customer was erased, through ctx.Emit: they
// are ordered before the record's commit like the table write, so an
// erasure is never committed without them. Keys the keyring holds that
// no decided event used (a writer that created one and then failed) go
// too.
func (p *Processor) shred(ctx goka.Context, keyIDs []string) {
	if p.cfg.Keyring == nil || keyIDs == nil {
		return
	}
	customer := ctx.Key()
	all := mergeKeys(slices.Clone(keyIDs), p.cfg.Keyring.KeyIDs(customer))
	topic := goka.Stream(p.cfg.Topics.Keys())
	for _, id := range all {
		ctx.Emit(topic, KeyRecordKey(customer, id), nil)
	}
	ctx.Emit(topic, customer, ErasedMarker)
	p.cfg.Keyring.Erase(customer)
	p.metrics.keysErased.Add(float64(len(all)))
	p.log.Info("erased the data keys of a customer", "customer", customer, "keys", len(all))
}

func (p *Processor) deadLetter(ctx goka.Context, reason string, cause error, value []byte) {
	p.metrics.rejected.WithLabelValues(reason).Inc()
	p.metrics.deadLetters.WithLabelValues(reason).Inc()
	key, headers, value := fitDeadLetter(ctx.Key(), ctx.Headers(), goka.Headers{
		HeaderReason:    []byte(reason),
		HeaderError:     []byte(truncateUTF8(cause.Error(), maxErrorHeaderBytes)),
		HeaderTopic:     []byte(ctx.Topic()),
		HeaderPartition: []byte(strconv.Itoa(int(ctx.Partition()))),
		HeaderOffset:    []byte(strconv.FormatInt(ctx.Offset(), 10)),
	}, value)
	p.log.Debug("dead-lettered record", "reason", reason, "error", cause,
		"partition", ctx.Partition(), "offset", ctx.Offset())
	ctx.Emit(goka.Stream(p.cfg.Topics.DeadLetter()), key, value, goka.WithCtxEmitHeaders(headers))
}

// Headers of a dead letter that had to be cut to fit.
const (
	HeaderKeyTruncated    = "eventfold.key_truncated_from"
	HeaderHeadersDropped  = "eventfold.headers_dropped"
	maxTruncatedKeyLength = 1024
	maxKeptHeaderBytes    = 64 << 10
	// maxErrorHeaderBytes bounds eventfold.error. Decode's errors are
	// already cut to maxErrorBytes; this holds for any cause.
	maxErrorHeaderBytes = 1024
)

// fitDeadLetter keeps the original key, headers and value when they fit
// one record beside the reason headers. Otherwise it gives up, in order,
// original headers over 64 KiB, the key beyond 1 KiB and the value's
// tail, each noted in a header: an emit that fails would stop the
// processor on the same record forever.
func fitDeadLetter(key string, original, ours goka.Headers, value []byte) (string, goka.Headers, []byte) {
	headers := goka.Headers{}
	for k, v := range original {
		headers[k] = v
	}
	for k, v := range ours {
		headers[k] = v
	}
	size := func() int { return headerBytes(headers) + len(key) + len(value) + 128 }
	if size() <= maxDeadLetterRecord {
		return key, headers, value
	}
	if headerBytes(original) > maxKeptHeaderBytes {
		headers = goka.Headers{HeaderHeadersDropped: []byte(strconv.Itoa(len(original)))}
		for k, v := range ours {
			headers[k] = v
		}
	}
	if len(key) > maxTruncatedKeyLength && size() > maxDeadLetterRecord {
		headers[HeaderKeyTruncated] = []byte(strconv.Itoa(len(key)))
		key = key[:maxTruncatedKeyLength]
	}
	if size() > maxDeadLetterRecord {
		headers[HeaderTruncated] = []byte(strconv.Itoa(len(value)))
		room := maxDeadLetterRecord - headerBytes(headers) - len(key) - 128
		value = value[:max(0, room)]
	}
	return key, headers, value
}

func headerBytes(h goka.Headers) int {
	n := 0
	for k, v := range h {
		n += len(k) + len(v) + 16 // varint lengths and record overhead
	}
	return n
}

// Positions returns, per partition the processor folded records of since
// it joined the group, the next offset of the events topic it will fold.
// Partitions it has folded nothing of yet are left out: their committed
// offset is their position.
func (p *Processor) Positions(ctx context.Context) map[int32]int64 {
	gp := p.current.Load()
	if gp == nil {
		return nil
	}
	out := map[int32]int64{}
	for partition, st := range gp.StatsWithContext(ctx).Group {
		if st == nil {
			continue
		}
		if in := st.Input[p.cfg.Topics.Events]; in != nil && in.Count > 0 {
			out[partition] = in.LastOffset + 1
		}
	}
	return out
}

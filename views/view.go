package views

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/memstore"
	"github.com/eventfold/eventfold/internal/restart"
	"github.com/eventfold/eventfold/internal/store"
	"github.com/eventfold/eventfold/processor"
)

// ErrNotReady is returned by reads before the view has started.
var ErrNotReady = errors.New("view is not ready")

// ErrNotFound is returned by Lookup and LookupJSON for an id that is not
// a registered customer, so that a caller cannot mistake a missing
// customer for an empty state.
var ErrNotFound = errors.New("customer not found")

// MaxListLimit caps one page of List.
const MaxListLimit = 1000

// keyLimit sorts after every valid customer id, whose bytes are all ASCII
// letters, digits and ".:_-".
const keyLimit = "\x7f"

// Config configures a view.
type Config struct {
	Kafka  kafka.Config
	Topics kafka.Topics
	// StorageDir holds the view's local copy of the table; a restart
	// resumes from it instead of reading the whole table again. Empty
	// means in-memory storage.
	StorageDir string
	// StorageBuffer bounds the bytes of table records held in memory, over
	// all partitions, before they are written to StorageDir; 0 means
	// store.DefaultBuffer. It matters most while the view recovers.
	StorageBuffer int
	// RestartBackoff is the pause before the view is rebuilt after it
	// failed.
	RestartBackoff time.Duration
	// OpenState returns a state as clients see it, with its sealed
	// personal data opened, for the change streams; nil shows states as
	// stored.
	OpenState func(*processor.Customer) *processor.Customer
	// Partitioned makes the view read the partitions the processor of
	// this instance owns, from the processor's storage (StorageBuilder),
	// instead of replicating the whole table: the table can then outgrow
	// one host. Partitions is the table's partition count, and Ready the
	// processor's readiness, which is the view's.
	Partitioned bool
	Partitions  int32
	Ready       func() bool
	// Standby, for a partitioned view, keeps warm copies of partitions
	// other instances own (standby.go); nil keeps none.
	Standby *StandbyConfig
	// Shared makes a replica serve the partitions the processor of this
	// instance owns from the processor's copy of them (AcknowledgedBuilder)
	// instead of keeping a second copy, and copy the whole table only
	// once the processor is seen to own fewer than all partitions
	// (shared.go). It needs Partitions and Ready, as Partitioned does.
	Shared bool
	Logger *slog.Logger
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return fmt.Errorf("failed to validate kafka config: %w", err)
	}
	if c.Topics.Group == "" {
		return errors.New("no group")
	}
	if (c.Partitioned || c.Shared) && (c.Partitions <= 0 || c.Ready == nil) {
		return errors.New("a partitioned or shared view needs the partition count and the processor's readiness")
	}
	if c.Partitioned && c.Shared {
		return errors.New("a view is partitioned or a shared replica, not both")
	}
	return nil
}

// View reads the customer table: a replica of all of it, or, when
// partitioned, the partitions this instance's processor owns.
type View struct {
	cfg      Config
	log      *slog.Logger
	hub      *Hub
	metrics  *metrics
	current  atomic.Pointer[goka.View] // the running goka view, if any
	keys     atomic.Int64              // keys in local storage
	accepted atomic.Int64              // the sum of their versions
	local    *local                    // the processor's partitions, when partitioned
	standby  *Standbys                 // copies of other partitions, if any
	shared   *shared                   // the processor's partitions, for a shared replica
}

// table is what lookups read: a goka view (a replica of every partition)
// or the processor's own partitions.
type table interface {
	Get(key string) (any, error)
	IteratorWithRange(start, limit string) (goka.Iterator, error)
}

// New builds a view; call Run to start it.
func New(cfg Config, reg prometheus.Registerer) (*View, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("failed to validate view config: %w", err)
	}
	if cfg.RestartBackoff <= 0 {
		cfg.RestartBackoff = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	v := &View{cfg: cfg, log: cfg.Logger.With("component", "view"), hub: NewHub(cfg.OpenState)}
	if cfg.Partitioned {
		v.local = newLocal(cfg.Partitions, v.hub, cfg.Ready, v.log)
		if cfg.Standby != nil {
			s, err := newStandbys(*cfg.Standby, v.hub, reg)
			if err != nil {
				return nil, err
			}
			s.moving, s.serves, s.settle = v.local.moving, v.local.serves, v.local.settle
			v.standby, v.local.standby, v.local.lingers = s, s, true
		}
	}
	if cfg.Shared {
		v.shared = newShared(cfg.Partitions, v.hub, v.log)
	}
	m, err := newMetrics(reg, v)
	if err != nil {
		return nil, err
	}
	v.metrics = m
	if v.shared != nil {
		v.shared.updates = m.updates
	}
	return v, nil
}

// Hub announces every change of the table.
func (v *View) Hub() *Hub { return v.hub }

// Run replicates the table until ctx is cancelled, rebuilding the goka
// view after a failure. A partitioned view replicates nothing: the
// processor fills its storage, and the view keeps only its standby copies
// warm.
func (v *View) Run(ctx context.Context) error {
	if v.local != nil {
		if v.standby != nil {
			return v.standby.Run(ctx)
		}
		<-ctx.Done()
		return nil
	}
	if v.shared != nil {
		return v.runShared(ctx)
	}
	return v.runReplica(ctx)
}

// runReplica replicates the whole table with a goka view, rebuilt after a
// failure, until ctx ends.
func (v *View) runReplica(ctx context.Context) error {
	return restart.Loop(ctx, v.cfg.RestartBackoff, v.runOnce, func(err error) {
		v.metrics.restarts.Inc()
		v.log.Warn("view stopped, restarting", "error", err, "backoff", v.cfg.RestartBackoff)
	})
}

func (v *View) runOnce(ctx context.Context) error {
	keys, accepted := &v.keys, &v.accepted
	if v.shared != nil {
		keys, accepted = &v.shared.fullKeys, &v.shared.fullAccepted
	}
	sb := memstore.Builder()
	if v.cfg.StorageDir != "" {
		sb = store.View(v.cfg.StorageDir, cmp.Or(v.cfg.StorageBuffer, store.DefaultBuffer), func(path string, err error) {
			v.log.Warn("view storage corrupted, starting it empty to recover it from the table", "path", path, "error", err)
		})
	}
	gv, err := goka.NewView(v.cfg.Kafka.Brokers, goka.GroupTable(goka.Group(v.cfg.Topics.Group)), tableCodec{},
		goka.WithViewHasher(processor.NewMurmur2Hasher),
		goka.WithViewStorageBuilder(countingBuilder(sb, keys, accepted)),
		goka.WithViewCallback(v.update),
		goka.WithViewAutoReconnect(),
		goka.WithViewLogger(kafka.GokaLogger(v.cfg.Logger, "goka-view")),
		goka.WithViewConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(v.cfg.Kafka.Sarama())),
		goka.WithViewTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(v.cfg.Kafka.Sarama(), goka.NewTopicManagerConfig())),
	)
	if err != nil {
		return fmt.Errorf("failed to build goka view: %w", err)
	}
	v.current.Store(gv)
	defer v.current.Store(nil)
	if err := gv.Run(ctx); err != nil {
		return fmt.Errorf("failed to run goka view: %w", err)
	}
	return nil
}

// update stores a table record, then announces it. goka calls it from one
// goroutine per partition, so a customer's changes arrive in order.
func (v *View) update(_ goka.UpdateContext, s storage.Storage, key string, value []byte) error {
	var err error
	if value == nil {
		err = s.Delete(key)
	} else {
		err = s.Set(key, value)
	}
	if err != nil {
		return fmt.Errorf("failed to store table record for %s: %w", key, err)
	}
	// A shared replica counts and announces the changes of the copy it
	// serves from: the processor's, until this one serves.
	if v.shared == nil || v.shared.full.Load() {
		v.metrics.updates.Inc()
		v.hub.Publish(key, value)
	}
	return nil
}

// goka returns the running goka view, or nil.
func (v *View) goka() *goka.View { return v.current.Load() }

// StorageBuilder wraps the processor's storage builder. A partitioned
// view reads the partitions it opens, counts their keys and announces
// their changes; a replica leaves it as it is.
func (v *View) StorageBuilder(inner storage.Builder) storage.Builder {
	if v.local == nil {
		return inner
	}
	return v.local.builder(countingBuilder(inner, &v.keys, &v.accepted))
}

// AcknowledgedBuilder wraps the builder of the processor's kept copy,
// under its checkpoints (processor.Config.WrapAcknowledged): a shared
// replica serves the partitions it opens, counts their keys and
// announces their changes; any other view leaves it as it is.
func (v *View) AcknowledgedBuilder(inner storage.Builder) storage.Builder {
	if v.shared == nil {
		return inner
	}
	return v.shared.builder(countingBuilder(inner, &v.keys, &v.accepted))
}

// Partitioned reports whether the view serves only this instance's
// partitions.
func (v *View) Partitioned() bool { return v.local != nil }

// Owned returns the partitions a partitioned view holds and has
// recovered; nil for a replica, which holds them all.
func (v *View) Owned() []int32 {
	if v.local == nil {
		return nil
	}
	return v.local.owned()
}

// Standbys returns the standby copies of a partitioned view, nil when it
// keeps none.
func (v *View) Standbys() *Standbys { return v.standby }

// Holds tells which copy of id's partition this instance reads now: its
// own (owned), a standby copy (standby), or none.
func (v *View) Holds(id string) (owned, standby bool) {
	if v.local == nil {
		return true, false
	}
	st, standby, err := v.local.partition(id)
	return st != nil && err == nil && !standby, standby
}

// StandbyPosition returns the next table offset of the copy of partition
// p that serves here while the processor does not: a standby copy, or the
// partition it was revoked during a rebalance.
func (v *View) StandbyPosition(p int32) (int64, bool) {
	if c := v.standby.serving(p); c != nil {
		return c.next.Load(), true
	}
	if v.local == nil {
		return 0, false
	}
	if st := v.local.lingeringStorage(p); st != nil {
		if off, err := st.GetOffset(-1); err == nil && off >= 0 {
			return off + 1, true
		}
	}
	return 0, false
}

// table returns what lookups read now, or ErrNotReady.
func (v *View) table() (table, error) {
	if v.local != nil {
		if !v.cfg.Ready() && len(v.standby.Held()) == 0 {
			return nil, ErrNotReady
		}
		return v.local, nil
	}
	if v.shared != nil && !v.shared.full.Load() {
		return v.shared.table()
	}
	gv := v.goka()
	if gv == nil {
		return nil, ErrNotReady
	}
	return gv, nil
}

// GokaView returns the running goka view, or nil between restarts, for
// goka's monitoring pages. It is rebuilt after a failure, so callers must
// not keep it.
func (v *View) GokaView() *goka.View { return v.goka() }

// Keys returns the number of table entries the view holds, including
// version-0 entries that only hold decisions.
func (v *View) Keys() int64 {
	if v.shared != nil && v.shared.full.Load() {
		return v.shared.fullKeys.Load()
	}
	return v.keys.Load()
}

// Accepted returns the events ever accepted, as the table holds them: the
// sum of the customers' versions.
func (v *View) Accepted() int64 {
	if v.shared != nil && v.shared.full.Load() {
		return v.shared.fullAccepted.Load()
	}
	return v.accepted.Load()
}

// Positions returns, per partition of the table, the next offset the view
// will read: the basis of its lag.
func (v *View) Positions() (map[int32]int64, error) {
	if v.local != nil {
		return v.local.positions(), nil
	}
	if v.shared != nil && !v.shared.full.Load() {
		return v.shared.positions(), nil
	}
	gv := v.goka()
	if gv == nil {
		return nil, ErrNotReady
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out := map[int32]int64{}
	for p, st := range gv.Stats(ctx).Partitions {
		switch {
		case st == nil:
		case st.Input != nil && st.Input.Count > 0:
			out[p] = st.Input.LastOffset + 1
		case st.Recovery != nil:
			out[p] = st.Recovery.Offset
		}
	}
	return out, nil
}

// Recovered reports whether the view has caught up with the table.
func (v *View) Recovered() bool {
	if v.local != nil {
		// Standby copies serve while the processor does not run.
		return v.cfg.Ready() || len(v.standby.Held()) > 0
	}
	if v.shared != nil && !v.shared.full.Load() {
		return v.shared.holdsAll()
	}
	gv := v.goka()
	return gv != nil && gv.Recovered()
}

// Lookup returns a registered customer's state, or ErrNotFound when the
// id is unknown. Entries that only hold decisions (version 0) are unknown
// too.
func (v *View) Lookup(id string) (*processor.Customer, error) {
	c, err := v.get(id)
	switch {
	case err != nil:
		v.metrics.lookups.WithLabelValues("error").Inc()
		return nil, err
	case !c.Registered():
		v.metrics.lookups.WithLabelValues("not_found").Inc()
		return nil, fmt.Errorf("failed to look up %s: %w", id, ErrNotFound)
	}
	v.metrics.lookups.WithLabelValues("found").Inc()
	return c, nil
}

// LookupJSON returns a registered customer's state as lookups show it
// (processor.PublicJSON) and its version, or ErrNotFound when the id is
// unknown. It answers from the stored bytes, without decoding the state.
func (v *View) LookupJSON(id string) ([]byte, int64, error) {
	body, version, err := v.publicJSON(id)
	switch {
	case err != nil:
		v.metrics.lookups.WithLabelValues("error").Inc()
		return nil, 0, err
	case body == nil:
		v.metrics.lookups.WithLabelValues("not_found").Inc()
		return nil, 0, fmt.Errorf("failed to look up %s: %w", id, ErrNotFound)
	}
	v.metrics.lookups.WithLabelValues("found").Inc()
	return body, version, nil
}

func (v *View) publicJSON(id string) ([]byte, int64, error) {
	raw, err := v.raw(id)
	if err != nil || raw == nil {
		return nil, 0, err
	}
	body, version, err := processor.PublicJSON(raw)
	switch {
	case err != nil:
		return nil, 0, fmt.Errorf("failed to read %s: %w", id, err)
	case version == 0: // an entry that only holds decisions
		return nil, 0, nil
	}
	return body, version, nil
}

// Entry returns the table entry of id, including version-0 entries that
// only hold decisions, or nil.
func (v *View) Entry(id string) (*processor.Customer, error) { return v.get(id) }

func (v *View) get(id string) (*processor.Customer, error) {
	raw, err := v.raw(id)
	if err != nil || raw == nil {
		return nil, err
	}
	c, err := processor.DecodeCustomer(raw)
	if err != nil {
		return nil, fmt.Errorf("failed to decode %s: %w", id, err)
	}
	return c, nil
}

// raw returns the stored table value of id, or nil.
func (v *View) raw(id string) (json.RawMessage, error) {
	t, err := v.table()
	if err != nil {
		return nil, err
	}
	value, err := t.Get(id)
	if err != nil {
		return nil, fmt.Errorf("failed to look up %s: %w", id, err)
	}
	return rawOf(value), nil
}

// tableCodec hands the view the table's values as stored: it decodes them
// only where it needs a Customer, and lookups answer with the bytes.
// json.RawMessage also shows as JSON in goka's query page.
type tableCodec struct{}

// Encode implements goka.Codec; views never write.
func (tableCodec) Encode(value any) ([]byte, error) {
	raw, ok := value.(json.RawMessage)
	if !ok {
		return nil, fmt.Errorf("failed to encode table value: unexpected type %T", value)
	}
	return raw, nil
}

// Decode implements goka.Codec.
func (tableCodec) Decode(data []byte) (any, error) { return json.RawMessage(data), nil }

// rawOf is the stored bytes of a value tableCodec decoded, nil for no
// value.
func rawOf(value any) json.RawMessage {
	raw, _ := value.(json.RawMessage)
	return raw
}

// Bounds of one List page. Ids that were never registered hold table
// entries too (their rejected decisions), and anyone who may write can
// make millions of them, so a page stops after MaxListScan entries or
// MaxListBytes of stored state even when it has fewer than limit
// customers: one request never walks the whole table.
const (
	MaxListScan  = 10 * MaxListLimit
	MaxListBytes = 4 << 20
)

// List returns up to limit registered customers with ids after the given
// one that match (all of them when match is nil), in id order, and the id
// to continue after, empty at the end of the table. A page can hold fewer
// customers than limit, even none, and still have a next id: see
// MaxListScan. A search is thus a scan of the table in bounded steps, not
// an index: each page costs up to MaxListScan entries or MaxListBytes of
// state, whatever it finds.
func (v *View) List(after string, limit int, match func(*processor.Customer) bool) ([]*processor.Customer, string, error) {
	if limit <= 0 || limit > MaxListLimit {
		limit = MaxListLimit
	}
	t, err := v.table()
	if err != nil {
		return nil, "", err
	}
	// goka's leveldb storage treats an empty limit as "keys with the
	// prefix start"; every valid id sorts below keyLimit.
	it, err := t.IteratorWithRange(after, keyLimit)
	if err != nil {
		return nil, "", fmt.Errorf("failed to iterate the view: %w", err)
	}
	defer it.Release()
	out := make([]*processor.Customer, 0, min(limit, 64))
	scanned, size := 0, 0
	for it.Next() {
		key := it.Key()
		if key <= after {
			continue
		}
		if len(out) == limit || scanned == MaxListScan || size >= MaxListBytes {
			// More follows: continue after the last entry looked at.
			return out, after, nil
		}
		scanned++
		after = key
		value, err := it.Value()
		if err != nil {
			return nil, "", fmt.Errorf("failed to read %s from the view: %w", key, err)
		}
		raw := rawOf(value)
		size += len(raw)
		c, err := processor.DecodeCustomer(raw)
		if err != nil {
			return nil, "", fmt.Errorf("failed to decode %s: %w", key, err)
		}
		if c.Registered() && (match == nil || match(c)) {
			out = append(out, c)
		}
	}
	if err := it.Err(); err != nil {
		return nil, "", fmt.Errorf("failed to iterate the view: %w", err)
	}
	return out, "", nil
}

// WaitForVersion waits until the view holds id at minVersion or later and
// returns that state. When ctx ends first it returns the latest state seen
// (nil if none) with ctx's error.
func (v *View) WaitForVersion(ctx context.Context, id string, minVersion int64) (*processor.Customer, error) {
	c, err := v.waitFor(ctx, id, func(c *processor.Customer) bool {
		return c.Registered() && c.Version >= minVersion
	})
	if !c.Registered() {
		c = nil
	}
	return c, err
}

// WaitForDecision waits until the view holds the fold's decision on the
// event with the given id, and returns it with the entry that holds it.
// When ctx ends first it returns the latest entry seen with ctx's error.
func (v *View) WaitForDecision(ctx context.Context, id, eventID string) (processor.Decision, *processor.Customer, error) {
	c, err := v.waitFor(ctx, id, func(c *processor.Customer) bool {
		_, ok := c.Decision(eventID)
		return ok
	})
	d, _ := c.Decision(eventID)
	return d, c, err
}

// waitFor waits until the entry of id satisfies done, reacting to the
// view's change notifications rather than polling.
func (v *View) waitFor(ctx context.Context, id string, done func(*processor.Customer) bool) (*processor.Customer, error) {
	for {
		// Subscribe before reading, so no change slips in between.
		sub := v.hub.Subscribe(id)
		c, err := v.get(id)
		if err != nil {
			sub.Close()
			return nil, err
		}
		if c != nil && done(c) {
			sub.Close()
			return c, nil
		}
		var changes []*Change
		for open := true; open; {
			select {
			case <-ctx.Done():
				sub.Close()
				return c, ctx.Err()
			case <-sub.Ready():
			}
			// Not open: dropped for falling behind; read again, subscribed anew.
			changes, open = sub.Take(changes[:0])
			for _, change := range changes {
				next, err := processor.DecodeCustomer(change.Value)
				if err != nil {
					// The processor wrote it, so it decodes; if it does
					// not, the wait goes on and the entry's next change
					// or the ctx ends it.
					v.log.Warn("failed to decode a change of a waited-for customer", "customer", id, "error", err)
					continue
				}
				c = next
				if done(c) {
					sub.Close()
					return c, nil
				}
			}
		}
	}
}

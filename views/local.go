package views

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfold/eventfold/processor"
)

// ErrNotLocal is returned by reads of a partitioned view for an id whose
// partition this instance does not hold right now: another instance owns
// it, or a rebalance is moving it here and it is still being recovered.
var ErrNotLocal = errors.New("the customer's partition is not served by this instance")

// local is the table as the processor of this instance holds it: the
// partitions goka assigned to it, in the processor's own storage. goka
// builds a storage per assigned partition at each rebalance and closes it
// when the partition is revoked, so the set of partitions follows the
// assignment without asking goka.
//
// The processor writes its storage before Kafka acknowledges the table
// write (the same value reaches the table a few milliseconds later), so
// reads of a partitioned view may see a state an instant before a replica
// would.
type local struct {
	partitions int32
	hub        *Hub
	// ready is the processor's readiness: its partitions serve only
	// while it runs. standby, when set, holds warm copies of partitions
	// other instances own, read when this instance does not serve the
	// partition itself.
	ready   func() bool
	standby *Standbys
	// lingers keeps revoked partitions readable (linger.go): with
	// standby copies, or in a replica that shares the processor's copy.
	lingers bool
	log     *slog.Logger
	// mute, when set, stops the announcements of changes, and their
	// count in updates, if any: a shared replica's full copy announces
	// and counts them instead.
	mute    *atomic.Bool
	updates prometheus.Counter
	// shared is set for a shared replica (shared.go): a partition opened
	// on a kept copy serves while it catches up, and lists include the
	// lingering partitions.
	shared bool

	mu        sync.RWMutex
	parts     map[int32]*localPartition
	lingering map[int32]*lingerer // revoked, still readable (linger.go)
	stopped   bool                // no more lingering: the view stopped
}

func newLocal(partitions int32, hub *Hub, ready func() bool, log *slog.Logger) *local {
	return &local{partitions: partitions, hub: hub, ready: ready, log: log, parts: map[int32]*localPartition{}, lingering: map[int32]*lingerer{}}
}

// builder wraps the processor's storage builder: each partition it opens
// is readable by lookups once recovered, and announces its changes.
func (l *local) builder(inner storage.Builder) storage.Builder {
	return func(topic string, partition int32) (storage.Storage, error) {
		l.unlinger(partition) // the same files
		st, err := inner(topic, partition)
		if err != nil {
			return nil, err
		}
		return &localPartition{Storage: st, partition: partition, owner: l}, nil
	}
}

// partition returns the storage that serves id here: the processor's
// recovered partition while the processor runs, else a standby copy of
// it, else the partition this instance owned before a rebalance that is
// still going on (linger.go); standby tells it is not the first.
func (l *local) partition(id string) (st storage.Storage, standby bool, err error) {
	n := processor.PartitionFor(id, l.partitions)
	l.mu.RLock()
	p := l.parts[n]
	l.mu.RUnlock()
	if p != nil && p.readable() && l.ready() {
		return p, false, nil
	}
	if c := l.standby.serving(n); c != nil {
		return c.st, true, nil
	}
	if st := l.lingeringStorage(n); st != nil {
		return st, true, nil
	}
	return nil, false, ErrNotLocal
}

// moving reports whether partition n is assigned to this instance's
// processor and not yet served from it; serves whether it is served.
func (l *local) moving(n int32) bool {
	l.mu.RLock()
	p := l.parts[n]
	l.mu.RUnlock()
	return p != nil && !l.serves(n)
}

func (l *local) serves(n int32) bool {
	l.mu.RLock()
	p := l.parts[n]
	l.mu.RUnlock()
	return p != nil && p.recovered.Load() && l.ready()
}

// Owned returns the partitions this instance holds and has recovered, in
// order.
func (l *local) owned() []int32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]int32, 0, len(l.parts))
	for n, p := range l.parts {
		if p.recovered.Load() {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Get implements table.
func (l *local) Get(id string) (any, error) {
	p, _, err := l.partition(id)
	if err != nil {
		return nil, err
	}
	value, err := p.Get(id)
	if err != nil || value == nil {
		return nil, err
	}
	// leveldb's bytes are the caller's; the iterator's below are not.
	return json.RawMessage(value), nil
}

// IteratorWithRange implements table: the keys of every held partition,
// merged in order, as goka's view merges its partitions.
func (l *local) IteratorWithRange(start, limit string) (goka.Iterator, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	held := make([]storage.Storage, 0, len(l.parts))
	for _, p := range l.parts {
		if p.readable() {
			held = append(held, p)
		}
	}
	if l.shared { // the partitions the processor gave up, as they were
		for n, p := range l.lingering {
			if l.parts[n] == nil {
				held = append(held, p.Storage)
			}
		}
	}
	iters := make([]storage.Iterator, 0, len(held))
	for _, p := range held {
		it, err := p.IteratorWithRange([]byte(start), []byte(limit))
		if err != nil {
			for _, open := range iters {
				open.Release()
			}
			return nil, fmt.Errorf("failed to open a partition: %w", err)
		}
		iters = append(iters, it)
	}
	return &localIterator{Iterator: storage.NewMultiIterator(iters)}, nil
}

// positions returns, per held partition, the next table offset its
// storage expects.
func (l *local) positions() map[int32]int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make(map[int32]int64, len(l.parts))
	for n, p := range l.parts {
		if off, err := p.GetOffset(-1); err == nil && off >= 0 {
			out[n] = off + 1
		}
	}
	return out
}

// localPartition is one partition of the processor's storage.
type localPartition struct {
	storage.Storage
	partition int32
	owner     *local
	recovered atomic.Bool
	kept      atomic.Bool // opened on a kept copy, in a shared replica
}

// readable reports whether lookups may read the partition: recovered, or
// in a shared replica opened on a kept copy.
func (p *localPartition) readable() bool { return p.recovered.Load() || p.kept.Load() }

// Open makes the partition known to lookups, which still wait for it to
// be recovered.
func (p *localPartition) Open() error {
	if err := p.Storage.Open(); err != nil {
		return err
	}
	if p.owner.shared {
		// A kept copy holds a prefix of the table (the processor's
		// checkpoints): readable while it catches up, as a lagging
		// replica is.
		off, err := p.Storage.GetOffset(-1)
		p.kept.Store(err == nil && off >= 0)
	}
	p.owner.mu.Lock()
	p.owner.parts[p.partition] = p
	p.owner.mu.Unlock()
	return nil
}

// MarkRecovered lets lookups read the partition: it now holds the table.
func (p *localPartition) MarkRecovered() error {
	if err := p.Storage.MarkRecovered(); err != nil {
		return err
	}
	p.recovered.Store(true)
	return nil
}

// Close takes the partition away from lookups before goka closes it: it
// was revoked, or the processor stops.
func (p *localPartition) Close() error {
	p.owner.mu.Lock()
	if p.owner.parts[p.partition] == p {
		delete(p.owner.parts, p.partition)
	}
	p.owner.mu.Unlock()
	if p.owner.linger(p) {
		return nil
	}
	return p.Storage.Close()
}

// Set stores a state the processor folded, or one recovery read from the
// table, and announces it to the waiters and watchers of the customer.
func (p *localPartition) Set(key string, value []byte) error {
	if err := p.Storage.Set(key, value); err != nil {
		return err
	}
	p.owner.publish(key, value)
	return nil
}

// Delete removes a key and announces it.
func (p *localPartition) Delete(key string) error {
	if err := p.Storage.Delete(key); err != nil {
		return err
	}
	p.owner.publish(key, nil)
	return nil
}

// publish counts and announces a change, unless muted.
func (l *local) publish(key string, value []byte) {
	if l.mute != nil && l.mute.Load() {
		return
	}
	if l.updates != nil {
		l.updates.Inc()
	}
	l.hub.Publish(key, value)
}

// localIterator yields the stored bytes as the table codec decodes them,
// as goka's view iterator does.
type localIterator struct{ storage.Iterator }

func (it *localIterator) Key() string { return string(it.Iterator.Key()) }

func (it *localIterator) Value() (any, error) {
	value, err := it.Iterator.Value()
	if err != nil || value == nil {
		return nil, err
	}
	return json.RawMessage(bytes.Clone(value)), nil
}

func (it *localIterator) Seek(key string) bool { return it.Iterator.Seek([]byte(key)) }

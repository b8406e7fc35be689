package views

import (
	"time"

	"github.com/lovoo/goka/storage"
)

// maxLinger bounds how long a revoked partition stays open, should the
// processor never be seen stopped (a rebalance quicker than the checks).
const maxLinger = time.Minute

// With standby replicas, a partition goka revokes lingers: it stays open
// and readable until the group has settled, so that its old owner keeps
// answering its reads through the rebalance, as Kafka Streams lets a
// store serve stale reads during one (KIP-535). goka's eager rebalance
// stops every partition of every member, those that stay where they are
// included; without this, a partition whose standby was the instance
// that left has nobody to answer until the new assignment is set up.
//
// Nothing writes a lingering partition but the acknowledgements of table
// writes the processor issued before the revocation, so it holds the
// table as it was, and nothing is written to the partition meanwhile: no
// processor runs it. It is closed when goka opens the partition again
// (here: the same files), or once the processor, seen stopped since,
// runs again (it moved), or after maxLinger.

// lingerer is a revoked partition, with when it was revoked and whether
// the processor was seen stopped since: its readiness is updated a moment
// after goka's state changes, so "running" right after a revocation is
// still the old assignment's.
type lingerer struct {
	*localPartition
	since   time.Time
	stopped bool
}

// linger keeps a revoked partition readable; it reports false when
// lingering is off, or the view has stopped: the partition is then closed
// at once.
func (l *local) linger(p *localPartition) bool {
	if !l.lingers {
		return false
	}
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return false
	}
	old := l.lingering[p.partition]
	l.lingering[p.partition] = &lingerer{localPartition: p, since: time.Now()}
	l.mu.Unlock()
	if old != nil && old.localPartition != p {
		l.closeLingering(old.localPartition)
	}
	return true
}

// unlinger closes the lingering copy of partition n, if any, before goka
// opens it again.
func (l *local) unlinger(n int32) {
	l.mu.Lock()
	p := l.lingering[n]
	delete(l.lingering, n)
	l.mu.Unlock()
	if p != nil {
		l.closeLingering(p.localPartition)
	}
}

// settle closes the lingering partitions once the processor runs again
// after it was seen stopped, or lingered too long; every one when stop is
// set.
func (l *local) settle(stop bool) {
	ready := l.ready()
	l.mu.Lock()
	// Once stopped, the processor's partitions closed after this one are
	// closed at once (linger).
	l.stopped = l.stopped || stop
	var ps []*localPartition
	for n, p := range l.lingering {
		p.stopped = p.stopped || !ready
		if stop || ready && p.stopped || time.Since(p.since) > maxLinger {
			ps = append(ps, p.localPartition)
			delete(l.lingering, n)
		}
	}
	l.mu.Unlock()
	for _, p := range ps {
		l.closeLingering(p)
	}
}

func (l *local) closeLingering(p *localPartition) {
	if err := p.Storage.Close(); err != nil {
		l.log.Warn("failed to close a revoked partition", "partition", p.partition, "error", err)
	}
}

// lingeringStorage returns the lingering partition n, if any.
func (l *local) lingeringStorage(n int32) storage.Storage {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if p := l.lingering[n]; p != nil {
		return p.Storage
	}
	return nil
}

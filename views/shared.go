package views

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// sharedPoll is how often a shared replica checks whether its processor
// owns every partition; sharedSettle is how long it must be seen owning
// fewer before the replica copies the whole table: goka closes a
// processor's partitions one by one during a rebalance, and the
// processor's readiness follows goka's state a moment later.
const (
	sharedPoll   = 250 * time.Millisecond
	sharedSettle = time.Second
)

// shared is a replica that shares the processor's copy of its partitions.
//
// A replica used to keep a copy of the whole table beside the processor's
// copy of its partitions, and a fresh instance recovered both from the
// table topic: with one instance, which owns every partition, the same
// table twice (BENCHMARKS.md, "Restore with one copy"). A shared replica
// reads the partitions the processor owns from the processor's kept
// copy, under its checkpoints, which holds only what the table topic
// holds: records recovery read, and writes Kafka acknowledged, never one
// the table may not get. So it serves exactly what a replica of the table
// would, no sooner than the table has it.
//
// When the processor is seen owning fewer than all the partitions (other
// instances share the group), the replica starts a goka view of the whole
// table, as a replica without sharing does, and serves from it once it has
// recovered; until then it is not ready. A replica that made such a copy
// in an earlier run starts it at once (copyMark). A partition the processor closes (a rebalance, or the processor
// restarting) lingers, readable as it was, until the processor opens it
// again or the full copy serves.
type shared struct {
	*local
	// full is set once the goka view of the whole table has recovered:
	// it serves from then on, and announces the changes.
	full         atomic.Bool
	fullKeys     atomic.Int64
	fullAccepted atomic.Int64
}

func newShared(partitions int32, hub *Hub, log *slog.Logger) *shared {
	s := &shared{}
	// The processor's readiness does not gate reads: a partition serves
	// once recovered, and while it lingers after the processor closed it.
	s.local = newLocal(partitions, hub, func() bool { return true }, log)
	s.lingers, s.mute, s.local.shared = true, &s.full, true
	return s
}

// table returns the processor's partitions, or ErrNotReady before they
// all are held.
func (s *shared) table() (table, error) {
	if !s.holdsAll() {
		return nil, ErrNotReady
	}
	return s.local, nil
}

// holdsAll reports whether every partition is readable here: recovered
// by the processor, or lingering.
func (s *shared) holdsAll() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for n := range s.partitions {
		p := s.parts[n]
		if (p == nil || !p.readable()) && s.lingering[n] == nil {
			return false
		}
	}
	return true
}

// positions returns, per partition it holds, the next table offset of
// the copy that serves it: the processor's, or one that lingers, whose
// lag then grows with the table, so that reads with a bound on staleness
// refuse it.
func (s *shared) positions() map[int32]int64 {
	out := s.local.positions()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for n, p := range s.lingering {
		if _, ok := out[n]; ok {
			continue
		}
		if off, err := p.GetOffset(-1); err == nil && off >= 0 {
			out[n] = off + 1
		}
	}
	return out
}

// ownsAll reports whether the processor holds every partition, recovered.
func (s *shared) ownsAll() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for n := range s.partitions {
		if p := s.parts[n]; p == nil || !p.recovered.Load() {
			return false
		}
	}
	return true
}

// copyMark names the file a shared replica writes in its storage dir when
// it starts a copy of the whole table. A dir an earlier version left
// (every replica then kept a copy) has none, and is not taken as a sign
// that the instance shares the group.
const copyMark = "shared-copy.v1"

// keptCopy reports whether dir holds a copy a shared replica made.
func keptCopy(dir string) bool {
	if dir == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(dir, copyMark))
	return err == nil
}

// markCopy marks dir as holding a shared replica's copy; a failure costs
// only the early start of the next run, so it is logged.
func markCopy(dir string, log *slog.Logger) {
	if dir == "" {
		return
	}
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, copyMark), nil, 0o644)
	}
	if err != nil {
		log.Warn("failed to mark the view's copy", "dir", dir, "error", err)
	}
}

// runShared serves the processor's partitions until ctx ends, and
// replicates the whole table once the processor runs without owning every
// partition.
func (v *View) runShared(ctx context.Context) error {
	s := v.shared
	defer s.settle(true)
	t := time.NewTicker(sharedPoll)
	defer t.Stop()
	var partial time.Time // since when the processor runs on fewer partitions
	done := make(chan error, 1)
	started, seenReady := false, false
	start := func(why string) {
		v.log.Info("copying the whole table", "why", why)
		started = true
		markCopy(v.cfg.StorageDir, v.log)
		go func() { done <- v.runReplica(ctx) }()
	}
	// A copy this replica made in an earlier run says the instance
	// shared the group then: catching it up costs little, and it serves
	// sooner.
	if keptCopy(v.cfg.StorageDir) {
		start("a copy of the table kept from an earlier run")
	}
	for {
		switch {
		case started:
			if gv := v.goka(); !s.full.Load() && gv != nil && gv.Recovered() {
				s.full.Store(true)
				s.settle(true) // superseded: close the lingering partitions
				v.log.Info("the replica's copy of the whole table serves")
			}
		case !v.cfg.Ready() || s.ownsAll():
			partial = time.Time{}
			seenReady = seenReady || v.cfg.Ready()
		case !seenReady:
			// The first assignment: readiness cannot be a stale one of
			// an earlier assignment.
			start("the processor owns only some partitions")
		case partial.IsZero():
			partial = time.Now()
		case time.Since(partial) >= sharedSettle:
			start("the processor owns only some partitions")
		}
		select {
		case <-ctx.Done():
			if started {
				return <-done
			}
			return nil
		case err := <-done:
			return err
		case <-t.C:
		}
	}
}

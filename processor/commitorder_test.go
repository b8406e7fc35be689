package processor

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// heldWrites is a goka.Producer whose writes complete when the test says,
// in any order: what sarama's acknowledgements do across a broker restart.
type heldWrites struct {
	finish []goka.PromiseFinisher
}

func (h *heldWrites) Emit(topic, key string, value []byte) *goka.Promise {
	p, finish := goka.NewPromiseWithFinisher()
	h.finish = append(h.finish, finish)
	return p
}

func (h *heldWrites) EmitWithHeaders(topic, key string, value []byte, _ goka.Headers) *goka.Promise {
	return h.Emit(topic, key, value)
}

func (h *heldWrites) Close() error { return nil }

// record is a consumed record as goka tracks it: committed once its own
// writes succeeded and its place in the commit order was released.
type record struct {
	partition, offset int
	writes            []int // indexes into heldWrites.finish
	writeErrs         int   // writes that reported a failure
	writesDone        int
	released          bool
	releaseErr        error
}

func (r *record) committed() bool {
	return r.released && r.releaseErr == nil && r.writesDone == len(r.writes) && r.writeErrs == 0
}

// TestCommitOrderNeverCommitsPastAFailedWrite replays many random
// schedules: records of three partitions issue zero to two writes each,
// the writes complete in a random order and some fail. A partition's
// committed offset, like sarama's, is the highest committed record's
// offset plus one. No schedule may commit past a record whose write
// failed, and without failures every record must commit.
func TestCommitOrderNeverCommitsPastAFailedWrite(t *testing.T) {
	for seed := range uint64(500) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			failures := seed%3 != 0
			order := newCommitOrder()
			inner := &heldWrites{}
			producer := &orderedProducer{Producer: inner, order: order}
			var records []*record
			var failing []bool // per write
			next := map[int]int{}
			for range 40 {
				r := &record{partition: rng.IntN(3)}
				r.offset = next[r.partition]
				next[r.partition]++
				for range rng.IntN(3) {
					w := len(inner.finish)
					r.writes = append(r.writes, w)
					failing = append(failing, failures && rng.IntN(10) == 0)
					producer.Emit("table", "key", nil).Then(func(err error) {
						r.writesDone++
						if err != nil {
							r.writeErrs++
						}
					})
				}
				order.commit(func(err error) { r.released, r.releaseErr = true, err })
				records = append(records, r)
			}
			for _, w := range rng.Perm(len(inner.finish)) {
				if failing[w] {
					inner.finish[w](nil, errors.New("kafka: assertion failed: message out of sequence added to a batch"))
				} else {
					inner.finish[w](&sarama.ProducerMessage{}, nil)
				}
			}
			committedOffset := map[int]int{}
			for _, r := range records {
				if !r.released {
					t.Fatalf("record %d/%d never released", r.partition, r.offset)
				}
				if r.committed() {
					committedOffset[r.partition] = max(committedOffset[r.partition], r.offset+1)
				} else if !failures {
					t.Fatalf("record %d/%d not committed without any failure: %v", r.partition, r.offset, r.releaseErr)
				}
			}
			for _, r := range records {
				if r.writeErrs > 0 && r.offset < committedOffset[r.partition] {
					t.Fatalf("partition %d committed offset %d past record %d whose write failed", r.partition, committedOffset[r.partition], r.offset)
				}
			}
		})
	}
}

// TestCommitOrderReleasesAtOnceWithoutPendingWrites: a record that writes
// nothing, with nothing in flight, commits within its callback as goka's
// would.
func TestCommitOrderReleasesAtOnceWithoutPendingWrites(t *testing.T) {
	order := newCommitOrder()
	released := false
	order.commit(func(err error) {
		if err != nil {
			t.Errorf("release: %v", err)
		}
		released = true
	})
	if !released {
		t.Fatal("commit with nothing in flight was not released at once")
	}
}

// TestCommitOrderHoldsACommitBehindAPendingWrite is the crash campaign's
// lost event: a later record commits (here one that writes nothing, a
// duplicate) while an earlier record's table write is still being
// retried, and that write then fails.
func TestCommitOrderHoldsACommitBehindAPendingWrite(t *testing.T) {
	order := newCommitOrder()
	inner := &heldWrites{}
	producer := &orderedProducer{Producer: inner, order: order}
	producer.Emit("table", "a", nil) // record 1's write, in flight
	order.commit(func(error) {})     // record 1's commit
	var duplicate error
	released := false
	order.commit(func(err error) { released, duplicate = true, err }) // record 2 writes nothing
	if released {
		t.Fatal("record 2 committed while record 1's write was in flight")
	}
	lost := errors.New("kafka: run out of available brokers")
	inner.finish[0](nil, lost)
	if !released || !errors.Is(duplicate, lost) {
		t.Fatalf("record 2 released %v with %v, want released with %v", released, duplicate, lost)
	}
	// Everything after a failure fails too, whatever Kafka says.
	producer.Emit("table", "b", nil)
	inner.finish[1](&sarama.ProducerMessage{}, nil)
	var later error
	order.commit(func(err error) { later = err })
	if !errors.Is(later, lost) {
		t.Fatalf("commit after the failure: %v, want it failed", later)
	}
}

// TestUndecidedRecordFailsTheCommitsAfterIt is the crash campaign's
// skipped event with erasure on: a rebalance cancels the key lookup of a
// sealed event, so the record is not decided; goka's Fail returns, as the
// processor is already stopping, and goka hands the callback the next
// record of the partition, which decides and writes nothing. Its commit
// would move the partition's offset past the undecided record.
func TestUndecidedRecordFailsTheCommitsAfterIt(t *testing.T) {
	order := newCommitOrder()
	lookup := fmt.Errorf("%w: context canceled", ErrKeysUnavailable)
	var own, failed error
	undecided(order, func(err error) { own = err }, func(err error) { failed = err }, lookup)
	if !errors.Is(own, lookup) || !errors.Is(failed, lookup) {
		t.Fatalf("undecided record: commit %v, fail %v, want both %v", own, failed, lookup)
	}
	var next error
	released := false
	order.commit(func(err error) { released, next = true, err }) // the next record, a duplicate
	if !released || !errors.Is(next, lookup) {
		t.Fatalf("the next record's commit released %v with %v, want failed with %v", released, next, lookup)
	}
}

// TestCommitOrderKeepsAcknowledgedWritesInOrder completes table writes
// from many goroutines in a random order: the local copy must keep them
// in the order they were issued, whichever goroutine keeps them, and a
// write that cannot be kept must fail the commits queued after it.
func TestCommitOrderKeepsAcknowledgedWritesInOrder(t *testing.T) {
	for seed := range uint64(50) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			order := newCommitOrder()
			const writes = 400
			var mu sync.Mutex
			var kept []int
			done := make([]func(func() error, error), writes)
			for i := range done {
				done[i] = order.tableWrite()
			}
			perm := rng.Perm(writes)
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for _, i := range perm[g*writes/4 : (g+1)*writes/4] {
						done[i](func() error {
							mu.Lock()
							kept = append(kept, i)
							mu.Unlock()
							return nil
						}, nil)
					}
				})
			}
			wg.Wait()
			if len(kept) != writes {
				t.Fatalf("kept %d of %d acknowledged writes", len(kept), writes)
			}
			for n, i := range kept {
				if n != i {
					t.Fatalf("write %d kept as the %dth: not in the order issued", i, n)
				}
			}
		})
	}

	t.Run("failure", func(t *testing.T) {
		order := newCommitOrder()
		full := errors.New("no space left on device")
		order.tableWrite()(func() error { return full }, nil)
		var after error
		order.commit(func(err error) { after = err })
		if !errors.Is(after, full) {
			t.Fatalf("commit after a write that could not be kept: %v, want %v", after, full)
		}
	})
}

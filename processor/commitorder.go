package processor

import (
	"fmt"
	"hash"
	"sync"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// commitOrder keeps the processor from committing an offset past a write
// that failed.
//
// goka commits a record's offset as soon as the record's own writes have
// succeeded (at once for a record that writes nothing), and a partition's
// committed offset only moves forward. So a later record commits past an
// earlier one whose table write fails after it: sarama's idempotent
// producer, retrying across a broker restart, can fail one message
// ("assertion failed: message out of sequence added to a batch") after
// acknowledging later ones. The processor, rebuilt after the failure,
// then resumes after the lost write and the event is never folded
// (lovoo/goka#258; the crash campaign caught both orders).
//
// Every write the processor issues, and every record's commit, takes a
// place in one queue in the order they happen. A record's commit is
// released only once every write queued before it has completed, and it
// fails if any of them failed. A partition processes its records in
// order, so a record commits only after the writes of all its
// predecessors succeeded. One queue for all partitions is simpler than one
// per partition and costs only latency of commits, never of folding: a
// failed write stops the whole processor anyway.
//
// The acknowledged table writes are kept in the local copy in the order
// of the queue, but outside its lock: keeping one is a write to leveldb,
// and every partition's callback queues its record's commit under that
// lock (a mutex profile of the fold had the callbacks waiting 49 s in
// 37 s on it while writes were kept). One caller at a time keeps them,
// in batches taken from the head. A commit does not wait for the writes
// before it to be kept: they are in the table, where a restart reads
// them from the copy's checkpoint. A write that cannot be kept fails the
// commits queued after it is found, and so stops the processor.
type commitOrder struct {
	mu      sync.Mutex
	queue   []*orderedStep
	head    int
	failed  error          // the first write that failed, for good
	keep    []func() error // acknowledged table writes to keep, in order
	keeping bool           // a caller is keeping them
}

// orderedStep is a place in the queue: a write, or a record's commit.
type orderedStep struct {
	done    bool
	err     error        // the write's outcome
	apply   func() error // a table write's: keeps it in the local copy
	release func(error)  // a commit's: goka's deferred commit
}

// released is a commit ready to be told its outcome.
type released struct {
	release func(error)
	err     error
}

func newCommitOrder() *commitOrder { return &commitOrder{} }

// write queues a write; done reports its outcome.
func (o *commitOrder) write() (done func(error)) {
	step := &orderedStep{}
	o.mu.Lock()
	o.queue = append(o.queue, step)
	o.mu.Unlock()
	return func(err error) { o.complete(step, err) }
}

// tableWrite queues a write to the table; done reports its outcome and,
// if it succeeded, apply, which is called once every write queued before
// it succeeded too, in the order of the queue: that is when the local
// copy may keep the write (checkpoints). An apply that fails counts as a
// failed write for the commits queued after the failure is known.
func (o *commitOrder) tableWrite() (done func(apply func() error, err error)) {
	step := &orderedStep{}
	o.mu.Lock()
	o.queue = append(o.queue, step)
	o.mu.Unlock()
	return func(apply func() error, err error) {
		step.apply = apply
		o.complete(step, err)
	}
}

// abandon queues a record the processor could not decide: like a failed
// write, it fails every commit queued after it.
func (o *commitOrder) abandon(err error) {
	o.write()(fmt.Errorf("an earlier record was not decided: %w", err))
}

// commit queues a record's commit: release is called with nil once
// every write queued before it succeeded, or with an error if one failed.
func (o *commitOrder) commit(release func(error)) {
	o.complete(&orderedStep{release: release}, nil)
}

func (o *commitOrder) complete(step *orderedStep, err error) {
	o.mu.Lock()
	if step.release != nil {
		o.queue = append(o.queue, step)
	}
	step.done, step.err = true, err
	ready := o.drainLocked()
	o.mu.Unlock()
	// Outside the lock: release runs goka's commit. Two drains may call
	// theirs concurrently, which is safe: a commit is released with nil
	// only when every write before it succeeded.
	for _, r := range ready {
		r.release(r.err)
	}
	o.keepAcknowledged()
}

// keepAcknowledged keeps the acknowledged table writes in the local copy,
// in the order of the queue, unless another caller is doing it.
func (o *commitOrder) keepAcknowledged() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.keeping {
		return
	}
	o.keeping = true
	for len(o.keep) > 0 && o.failed == nil {
		batch := o.keep
		o.keep = nil
		o.mu.Unlock()
		var err error
		for _, apply := range batch {
			if err = apply(); err != nil {
				break
			}
		}
		o.mu.Lock()
		if err != nil && o.failed == nil {
			o.failed = fmt.Errorf("failed to keep an acknowledged table write: %w", err)
		}
	}
	o.keep = nil
	o.keeping = false
}

// drainLocked pops the completed steps at the head of the queue.
func (o *commitOrder) drainLocked() []released {
	var ready []released
	for o.head < len(o.queue) && o.queue[o.head].done {
		step := o.queue[o.head]
		o.queue[o.head] = nil
		o.head++
		switch {
		case step.release != nil && o.failed != nil:
			ready = append(ready, released{step.release,
				fmt.Errorf("not committing: an earlier write failed (%w)", o.failed)})
		case step.release != nil:
			ready = append(ready, released{step.release, nil})
		case step.err != nil && o.failed == nil:
			o.failed = step.err
		case step.err == nil && step.apply != nil && o.failed == nil:
			o.keep = append(o.keep, step.apply)
		}
	}
	if o.head > 64 && o.head*2 >= len(o.queue) {
		o.queue = append(o.queue[:0], o.queue[o.head:]...)
		o.head = 0
	}
	return ready
}

// orderedProducer queues every write of a goka producer in a commitOrder,
// and tells acks about the table writes Kafka acknowledged.
type orderedProducer struct {
	goka.Producer
	order *commitOrder
	table string
	acks  *checkpoints
}

// orderedProducers wraps every producer built by inner. acks, if not nil,
// is told of every write to table once it and every write before it are
// acknowledged.
func orderedProducers(order *commitOrder, table string, acks *checkpoints, inner goka.ProducerBuilder) goka.ProducerBuilder {
	return func(brokers []string, clientID string, hasher func() hash.Hash32) (goka.Producer, error) {
		p, err := inner(brokers, clientID, hasher)
		if err != nil {
			return nil, err
		}
		return &orderedProducer{Producer: p, order: order, table: table, acks: acks}, nil
	}
}

// Emit implements goka.Producer.
func (p *orderedProducer) Emit(topic string, key string, value []byte) *goka.Promise {
	return p.EmitWithHeaders(topic, key, value, nil)
}

// EmitWithHeaders implements goka.Producer. goka writes the table with it.
func (p *orderedProducer) EmitWithHeaders(topic string, key string, value []byte, headers goka.Headers) *goka.Promise {
	if topic != p.table || p.acks == nil {
		done := p.order.write() // queued before the write can complete
		return p.Producer.EmitWithHeaders(topic, key, value, headers).Then(done)
	}
	done := p.order.tableWrite()
	// Registered before goka's own callback, so the commit order knows
	// the write's outcome before goka counts it done.
	return p.Producer.EmitWithHeaders(topic, key, value, headers).ThenWithMessage(func(msg *sarama.ProducerMessage, err error) {
		if err != nil || msg == nil {
			done(nil, err)
			return
		}
		partition, offset := msg.Partition, msg.Offset
		done(func() error { return p.acks.acknowledged(topic, partition, key, value, offset) }, nil)
	})
}

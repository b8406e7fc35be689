package processor

import (
	"fmt"
	"hash"
	"sync"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// failStopProducer makes the processor's writes (table states and dead
// letters) fail-stop: once one write has failed for good, every write
// that completes after it fails too, also one already in flight that
// Kafka accepted.
//
// goka commits a record's offset once the record's own writes succeed,
// and a partition's committed offset only moves forward. Without this, a
// later record whose write succeeded would commit past an earlier one
// whose write failed, and the processor, rebuilt after the failure, would
// resume after the lost write (the second path of the crash campaign's
// lost event, lovoo/goka#258). With it, no record commits after the first
// failed write, so the processor resumes at or before it.
type failStopProducer struct {
	goka.Producer

	mu     sync.Mutex
	failed error // the first write that failed
}

// failStopProducers wraps every producer built by inner.
func failStopProducers(inner goka.ProducerBuilder) goka.ProducerBuilder {
	return func(brokers []string, clientID string, hasher func() hash.Hash32) (goka.Producer, error) {
		p, err := inner(brokers, clientID, hasher)
		if err != nil {
			return nil, err
		}
		return &failStopProducer{Producer: p}, nil
	}
}

// Emit implements goka.Producer.
func (p *failStopProducer) Emit(topic string, key string, value []byte) *goka.Promise {
	return p.guard(p.Producer.Emit(topic, key, value))
}

// EmitWithHeaders implements goka.Producer.
func (p *failStopProducer) EmitWithHeaders(topic string, key string, value []byte, headers goka.Headers) *goka.Promise {
	return p.guard(p.Producer.EmitWithHeaders(topic, key, value, headers))
}

func (p *failStopProducer) guard(write *goka.Promise) *goka.Promise {
	result, finish := goka.NewPromiseWithFinisher()
	write.ThenWithMessage(func(msg *sarama.ProducerMessage, err error) {
		finish(msg, p.settle(err))
	})
	return result
}

// settle returns what a completed write reports: its own error, or the
// first failure once there was one.
func (p *failStopProducer) settle(err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case err != nil:
		if p.failed == nil {
			p.failed = err
		}
		return err
	case p.failed != nil:
		return fmt.Errorf("write succeeded after an earlier write failed (%w): failing it so that no offset is committed past the lost one", p.failed)
	}
	return nil
}

package processor

import (
	"errors"
	"testing"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// heldWrites is a goka.Producer whose writes complete when the test says,
// in any order: what Kafka's acknowledgements do across a broker restart.
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

func TestFailStopProducerFailsWritesAfterTheFirstFailure(t *testing.T) {
	inner := &heldWrites{}
	p := &failStopProducer{Producer: inner}
	lost := errors.New("kafka: run out of available brokers")
	var results []error
	for i := 0; i < 4; i++ {
		i := i
		results = append(results, nil)
		p.Emit("table", "key", nil).Then(func(err error) { results[i] = err })
	}
	msg := &sarama.ProducerMessage{}
	inner.finish[0](msg, nil)  // before the failure: stays a success
	inner.finish[2](nil, lost) // the first failure
	inner.finish[1](msg, nil)  // in flight, accepted after the failure
	inner.finish[3](msg, nil)

	if results[0] != nil {
		t.Errorf("write 0, done before any failure: %v, want success", results[0])
	}
	if !errors.Is(results[2], lost) {
		t.Errorf("write 2: %v, want its own failure", results[2])
	}
	for _, i := range []int{1, 3} {
		if !errors.Is(results[i], lost) {
			t.Errorf("write %d, completed after the failure: %v, want it failed with the first failure", i, results[i])
		}
	}
	// A write after the failure fails as well, whatever Kafka says.
	var later error
	p.EmitWithHeaders("dlq", "key", nil, nil).Then(func(err error) { later = err })
	inner.finish[4](msg, nil)
	if !errors.Is(later, lost) {
		t.Errorf("write after the failure: %v, want it failed", later)
	}
}

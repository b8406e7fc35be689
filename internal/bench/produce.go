package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceEvents writes every event with a fast kgo producer: batches of
// up to 1 MB, a 10 ms linger, idempotent with acks=all and snappy like
// the service's own producer, partitioned by murmur2 of the key (the
// Java client's partitioner, which the processor checks). It is timed
// from the first record to the last acknowledgement.
func produceEvents(ctx context.Context, brokers []string, topic string, events *Events) (Throughput, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("eventfold-bench-producer"),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerLinger(10*time.Millisecond),
		kgo.MaxBufferedRecords(250_000),
		kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return Throughput{}, fmt.Errorf("failed to create kgo producer: %w", err)
	}
	defer cl.Close()
	// Connect before the clock starts: the rate is the producer's, not
	// the handshake's.
	if err := cl.Ping(ctx); err != nil {
		return Throughput{}, fmt.Errorf("failed to reach kafka: %w", err)
	}
	var (
		mu       sync.Mutex
		firstErr error
	)
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	}
	start := time.Now()
	for i := range events.Len() {
		key, value := events.At(i)
		cl.Produce(ctx, &kgo.Record{Key: []byte(key), Value: value}, done)
	}
	if err := cl.Flush(ctx); err != nil {
		return Throughput{}, fmt.Errorf("failed to flush the producer: %w", err)
	}
	elapsed := time.Since(start)
	if firstErr != nil {
		return Throughput{}, fmt.Errorf("failed to produce events: %w", firstErr)
	}
	return throughput(int64(events.Len()), int64(events.Bytes()), elapsed), nil
}

package kafka

import (
	"context"
	"fmt"
	"hash"

	"github.com/IBM/sarama"
)

// Publisher produces single events and reports where they landed.
type Publisher struct {
	producer sarama.SyncProducer
	topic    string
}

// NewPublisher connects an idempotent, acks=all producer of topic that
// partitions keys with hasher (processor.NewMurmur2Hasher).
func NewPublisher(cfg Config, topic string, hasher func() hash.Hash32) (*Publisher, error) {
	sc := cfg.ProducerConfig(hasher)
	sc.ClientID = cfg.ClientID + "-writes"
	// One request waits for each record: send it at once rather than
	// after the batching delay, which would add itself to every write.
	sc.Producer.Flush.Frequency = 0
	sc.Producer.Flush.Bytes = 0
	sc.Producer.Flush.Messages = 0
	p, err := sarama.NewSyncProducer(cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("failed to create event producer: %w", err)
	}
	return &Publisher{producer: p, topic: topic}, nil
}

// Publish produces value keyed by key and returns its partition and offset
// once all in-sync replicas have it. The context bounds the wait for the
// caller only: sarama's producer has no cancellation, so a cancelled
// publish may still land, which an idempotent event id makes harmless.
func (p *Publisher) Publish(ctx context.Context, key string, value []byte) (int32, int64, error) {
	return p.PublishRecord(ctx, key, value, nil)
}

// PublishRecord is Publish with record headers: a replayed dead letter
// carries its original headers (CloudEvents binary mode keeps the event's
// attributes there) and the replay's own.
func (p *Publisher) PublishRecord(ctx context.Context, key string, value []byte, headers []sarama.RecordHeader) (int32, int64, error) {
	type result struct {
		partition int32
		offset    int64
		err       error
	}
	done := make(chan result, 1)
	go func() {
		partition, offset, err := p.producer.SendMessage(&sarama.ProducerMessage{
			Topic: p.topic, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(value), Headers: headers,
		})
		done <- result{partition, offset, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return 0, 0, fmt.Errorf("failed to produce event for %s: %w", key, r.err)
		}
		return r.partition, r.offset, nil
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("failed to produce event for %s: %w", key, ctx.Err())
	}
}

// Close flushes and closes the producer.
func (p *Publisher) Close() error { return p.producer.Close() }

package kafka

import (
	"fmt"
	"hash"

	"github.com/IBM/sarama"
)

// ProducerConfig returns a sarama configuration for producing events: an
// idempotent producer that waits for all in-sync replicas and partitions
// keys exactly like Kafka's Java client (murmur2), so that every event of a
// customer lands on the partition the processor and views expect. Pass
// processor.NewMurmur2Hasher as hasher.
func (c Config) ProducerConfig(hasher func() hash.Hash32) *sarama.Config {
	sc := c.Sarama()
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1 // required by sarama's idempotent producer
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Retry.Max = 20
	sc.Producer.Partitioner = sarama.NewCustomHashPartitioner(hasher)
	return sc
}

// NewAsyncProducer connects an async event producer.
func NewAsyncProducer(c Config, hasher func() hash.Hash32) (sarama.AsyncProducer, error) {
	p, err := sarama.NewAsyncProducer(c.Brokers, c.ProducerConfig(hasher))
	if err != nil {
		return nil, fmt.Errorf("failed to create producer: %w", err)
	}
	return p, nil
}

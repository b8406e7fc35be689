package kafka

import (
	"context"
	"fmt"
	"hash"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// MaxRecordBytes is the largest record batch the goka producer sends:
// 1 MiB, under the brokers' default message.max.bytes (1 MiB plus 12
// bytes). franz-go's default is 1,000,012 bytes, which a dead letter
// truncated to fit 1 MiB would pass.
const MaxRecordBytes = 1 << 20

// MaxBufferedBytes bounds the bytes of records the goka producer holds
// unacknowledged; a writer past it waits. franz-go bounds only the count
// (50,000 records), which with states of up to 512 KiB
// (processor.MaxStateBytes) would let a burst of large states hold
// gigabytes. At about a kilobyte a state, 64 MiB is some 60,000 states,
// so the fold never waits on it.
const MaxBufferedBytes = 64 << 20

// producerCloseTimeout bounds how long Close waits for the records in
// flight, as goka's own producer does.
const producerCloseTimeout = 60 * time.Second

// GokaProducer is a goka.Producer on franz-go's client, for the
// processor's writes: the table, dead letters and data-key tombstones.
//
// goka's own producer is sarama's AsyncProducer, and a profile of the fold
// had it at a tenth of the CPU for one table write per event: four
// goroutine hand-offs per record, and sarama's idempotent producer allows
// one request in flight per broker. franz-go's idempotent producer keeps
// up to five in flight and still orders each partition's records (by
// their sequence numbers), and fails a partition's later records with an
// earlier one that failed, never one alone.
//
// Records are partitioned by murmur2 as Kafka's Java client does (goka's
// sarama producer used the same hash, processor.NewMurmur2Hasher), so
// each state lands on its customer's table partition. A promise is
// finished with a sarama.ProducerMessage carrying the record's topic,
// partition and offset: what goka and the processor's checkpoints read.
type GokaProducer struct {
	client *kgo.Client
}

// GokaProducerBuilder builds goka producers on franz-go with cfg's
// brokers, client id and security, logging to log. goka's hasher is not
// used: see GokaProducer.
func GokaProducerBuilder(cfg Config, log *slog.Logger) goka.ProducerBuilder {
	return func(brokers []string, clientID string, _ func() hash.Hash32) (goka.Producer, error) {
		return NewGokaProducer(cfg, brokers, clientID, log)
	}
}

// NewGokaProducer connects a producer to brokers.
func NewGokaProducer(cfg Config, brokers []string, clientID string, log *slog.Logger) (*GokaProducer, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID(clientID),
		kgo.WithLogger(KgoLogger(log, "table-producer")),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		// States are small and mostly unique JSON; the brokers store
		// them as sent.
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(MaxRecordBytes),
		kgo.MaxBufferedBytes(MaxBufferedBytes),
		kgo.ProducerLinger(cfg.FlushFrequency),
		// sarama retried a write for about a minute (600 retries, 100 ms
		// apart) before the processor failed and was rebuilt.
		kgo.RecordDeliveryTimeout(time.Minute),
	}
	sec, err := cfg.kgoSecurity()
	if err != nil {
		return nil, err
	}
	client, err := kgo.NewClient(append(opts, sec...)...)
	if err != nil {
		return nil, fmt.Errorf("failed to create producer: %w", err)
	}
	return &GokaProducer{client: client}, nil
}

// Emit implements goka.Producer.
func (p *GokaProducer) Emit(topic string, key string, value []byte) *goka.Promise {
	return p.EmitWithHeaders(topic, key, value, nil)
}

// EmitWithHeaders implements goka.Producer. It blocks while the client
// buffers its maximum of records, which holds the callers back.
func (p *GokaProducer) EmitWithHeaders(topic string, key string, value []byte, headers goka.Headers) *goka.Promise {
	promise, finish := goka.NewPromiseWithFinisher()
	rec := &kgo.Record{Topic: topic, Key: []byte(key), Value: value}
	for k, v := range headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: v})
	}
	p.client.Produce(context.Background(), rec, func(r *kgo.Record, err error) {
		if err != nil {
			finish(nil, fmt.Errorf("failed to write to %s: %w", topic, err))
			return
		}
		finish(&sarama.ProducerMessage{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}, nil)
	})
	return promise
}

// Close sends the records buffered, waiting up to a minute, then closes
// the client, which fails those still unsent: every promise is finished.
func (p *GokaProducer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), producerCloseTimeout)
	defer cancel()
	err := p.client.Flush(ctx)
	p.client.Close()
	if err != nil {
		return fmt.Errorf("failed to send the records in flight: %w", err)
	}
	return nil
}

// kgoSecurity is applySecurity for franz-go: the same TLS settings and
// SASL mechanisms.
func (c Config) kgoSecurity() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if c.TLS.Enabled {
		tc, err := c.TLS.load()
		if err != nil {
			tc = refuseAll(err)
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch c.SASL.mechanism() {
	case "":
	case SASLPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsMechanism()))
	case SASLScramSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsSha256Mechanism()))
	case SASLScramSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("unknown SASL mechanism %q", c.SASL.Mechanism)
	}
	return opts, nil
}

// Package redact rewrites an events topic into a new one in which the
// personal data of erased customers is unreadable, including plaintext
// that third-party producers wrote unsealed: see README, "Personal data
// and erasure". It owns the rewrite only; the fold, the keys and the
// event contract are processor's and keys'.
//
// The new topic keeps one record per record of the old one, in the same
// partition and in the same order, so that every offset of the old topic
// is the offset of the same event in the new one (checked record by
// record). An erased customer's plaintext personal fields are sealed with
// a key that is thrown away at once, so the event stays a valid sealed
// CloudEvent and folds, after a rebuild, as any sealed event whose key was
// erased with its customer: same versions, same decisions.
package redact

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/IBM/sarama"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/processor"
)

// Config configures a rewrite.
type Config struct {
	Kafka kafka.Config
	// From names the old events topic and the group whose table says
	// which customers were erased.
	From kafka.Topics
	// To is the new events topic: missing or empty. Its dead-letter and
	// keys topics (To.dlq, To.keys) are created beside it.
	To     string
	Logger *slog.Logger
}

// Validate reports a configuration that cannot run.
func (c Config) Validate() error {
	switch {
	case c.From.Events == "" || c.From.Group == "":
		return errors.New("the events topic and the group must not be empty")
	case c.To == "" || c.To == c.From.Events:
		return fmt.Errorf("the new events topic %q must be named and differ from %q", c.To, c.From.Events)
	}
	return nil
}

// Report counts what a rewrite did.
type Report struct {
	// Records is the number of records copied, one per record of the old
	// topic.
	Records int64 `json:"records"`
	// Redacted counts the erased customers' events whose plaintext
	// personal fields were sealed with a discarded key.
	Redacted int64 `json:"redacted"`
	// Blanked counts the erased customers' records that do not decode as
	// events: their value is replaced by a marker that stays malformed.
	Blanked int64 `json:"blanked"`
	// ErasedCustomers is the number of customers the table says are erased.
	ErasedCustomers int `json:"erased_customers"`
	// Keys is the number of records written to the new keys topic: the
	// live data keys and one erasure marker per erased customer.
	Keys int `json:"keys"`
}

// ErrRefused is returned when the topics do not allow a rewrite that
// keeps the offsets: a new topic that holds records, or an old one whose
// log does not start at offset 0 or has gaps.
var ErrRefused = errors.New("redact refused")

// Run rewrites cfg.From.Events into cfg.To. Stop every serve of the old
// topic first: events appended meanwhile would be missing from the new one.
func Run(ctx context.Context, cfg Config) (Report, error) {
	var rep Report
	if err := cfg.Validate(); err != nil {
		return rep, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	client, err := sarama.NewClient(cfg.Kafka.Brokers, cfg.Kafka.Sarama())
	if err != nil {
		return rep, fmt.Errorf("failed to connect to kafka: %w", err)
	}
	defer client.Close()
	partitions, err := client.Partitions(cfg.From.Events)
	if err != nil {
		return rep, fmt.Errorf("failed to list partitions of %s: %w", cfg.From.Events, err)
	}
	if err := checkEmpty(client, cfg.To); err != nil {
		return rep, err
	}
	to := kafka.Topics{Events: cfg.To, Group: cfg.From.Group, Partitions: int32(len(partitions)), Replication: cfg.From.Replication}
	if to.Replication < 1 {
		to.Replication = 1
	}
	n, err := kafka.Setup(ctx, cfg.Kafka, to)
	if err != nil {
		return rep, fmt.Errorf("failed to set up %s: %w", cfg.To, err)
	}
	if int(n) != len(partitions) {
		return rep, fmt.Errorf("%w: %s has %d partitions, %s has %d", ErrRefused, cfg.To, n, cfg.From.Events, len(partitions))
	}
	erased, err := erasedCustomers(ctx, client, cfg.From.Table())
	if err != nil {
		return rep, err
	}
	rep.ErasedCustomers = len(erased)
	if rep.Keys, err = copyKeys(ctx, cfg.Kafka, client, cfg.From.Keys(), to.Keys(), erased); err != nil {
		return rep, err
	}
	producer, err := sarama.NewSyncProducer(cfg.Kafka.Brokers, manualProducerConfig(cfg.Kafka))
	if err != nil {
		return rep, fmt.Errorf("failed to create producer: %w", err)
	}
	defer producer.Close()
	for _, p := range partitions {
		if err := copyPartition(ctx, client, producer, cfg.From.Events, cfg.To, p, erased, &rep); err != nil {
			return rep, err
		}
		cfg.Logger.Info("partition rewritten", "topic", cfg.To, "partition", p, "records_copied_so_far", rep.Records)
	}
	return rep, nil
}

// checkEmpty refuses a new topic that holds records: its offsets would
// not start at the old topic's.
func checkEmpty(client sarama.Client, topic string) error {
	partitions, err := client.Partitions(topic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return nil
	} else if err != nil {
		return fmt.Errorf("failed to list partitions of %s: %w", topic, err)
	}
	for _, p := range partitions {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("failed to read offsets of %s/%d: %w", topic, p, err)
		}
		if end > 0 {
			return fmt.Errorf("%w: the new events topic %s already holds records (partition %d ends at %d)", ErrRefused, topic, p, end)
		}
	}
	return nil
}

func manualProducerConfig(kc kafka.Config) *sarama.Config {
	sc := kc.ProducerConfig(processor.NewMurmur2Hasher)
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Producer.Return.Successes = true
	sc.Producer.MaxMessageBytes = 4 << 20
	return sc
}

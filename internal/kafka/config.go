// Package kafka builds the sarama configuration every eventfold component
// shares, TLS and SASL included, checks that the brokers accept it, and
// sets up and checks the topics the service relies on.
package kafka

import (
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// DefaultVersion is the Kafka protocol version sarama speaks. Kafka 4
// removed the protocol versions older than 2.1 that goka's default
// (sarama.V2_0_0_0) would pick.
const DefaultVersion = "3.6.0"

// Config says how to reach the Kafka cluster.
type Config struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string
	// Version is the Kafka protocol version sarama uses, at least 2.1.0.
	Version string
	// ClientID names this process to the brokers.
	ClientID string
	// FlushFrequency is how long the producer buffers records before
	// sending them. goka's 100 ms default dominates write latency.
	FlushFrequency time.Duration
	// TLS and SASL secure the connection to every broker, for every
	// client: they are applied in Sarama.
	TLS  TLSConfig
	SASL SASLConfig
}

// DefaultConfig returns a Config with defaults for everything but Brokers.
func DefaultConfig() Config {
	return Config{Version: DefaultVersion, ClientID: "eventfold", FlushFrequency: 5 * time.Millisecond}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("no brokers given")
	}
	v, err := sarama.ParseKafkaVersion(c.Version)
	if err != nil {
		return fmt.Errorf("failed to parse kafka version %q: %w", c.Version, err)
	}
	if !v.IsAtLeast(sarama.V2_1_0_0) {
		return fmt.Errorf("kafka version %s is older than 2.1.0, which Kafka 4 no longer speaks", c.Version)
	}
	if c.FlushFrequency < 0 {
		return fmt.Errorf("negative flush frequency %s", c.FlushFrequency)
	}
	if err := c.TLS.validate(); err != nil {
		return err
	}
	return c.SASL.validate()
}

// Sarama returns a fresh sarama configuration: goka's builders modify the
// config they are given, so every builder needs its own copy.
func (c Config) Sarama() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version, _ = sarama.ParseKafkaVersion(c.Version) // checked by Validate
	if c.Version == "" {
		sc.Version = sarama.V3_6_0_0
	}
	sc.ClientID = c.ClientID
	sc.Consumer.Return.Errors = true
	sc.Consumer.MaxProcessingTime = time.Second
	// The events topic is the source of truth: a new group folds it from
	// the beginning, never from "now".
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{groupStrategy}
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Compression = sarama.CompressionSnappy
	sc.Producer.Flush.Frequency = c.FlushFrequency
	sc.Producer.Flush.Bytes = 64 << 10
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Retry.Max = 10
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	c.applySecurity(sc)
	return sc
}

package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
)

// Broker kinds in the report.
const (
	BrokerEmbedded = "embedded"
	BrokerExternal = "external"
)

// cluster is the broker of a run and an admin client of it.
type cluster struct {
	kind  string
	label string
	kc    kafka.Config
	admin *kadm.Client
	// tmp holds the embedded broker's log and the views' storage.
	tmp  string
	stop func()
}

func openCluster(cfg Config, log *slog.Logger) (*cluster, error) {
	tmp, err := os.MkdirTemp("", "eventfold-bench-")
	if err != nil {
		return nil, fmt.Errorf("failed to create a temp dir: %w", err)
	}
	c := &cluster{kind: BrokerExternal, label: cfg.BrokerLabel, tmp: tmp, stop: func() {}}
	c.kc = kafka.DefaultConfig()
	c.kc.Version = cfg.KafkaVersion
	c.kc.ClientID = "eventfold-bench"
	c.kc.Brokers = cfg.Brokers
	if len(cfg.Brokers) == 0 {
		b, err := embedded.Start(embedded.Config{Addr: "127.0.0.1:0", DataDir: filepath.Join(tmp, "kafka"), Partitions: cfg.Partitions, Logger: log})
		if err != nil {
			os.RemoveAll(tmp)
			return nil, err
		}
		c.kind, c.kc.Brokers, c.stop = BrokerEmbedded, []string{b.Addr()}, b.Close
		if c.label == "" {
			c.label = "embedded kfake"
		}
	} else if c.label == "" {
		c.label = "Kafka at " + strings.Join(cfg.Brokers, ",")
	}
	if err := c.kc.Validate(); err != nil {
		c.close()
		return nil, fmt.Errorf("failed to validate kafka config: %w", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kc.Brokers...), kgo.ClientID("eventfold-bench-admin"))
	if err != nil {
		c.close()
		return nil, fmt.Errorf("failed to connect to kafka at %s: %w", strings.Join(c.kc.Brokers, ","), err)
	}
	c.admin = kadm.NewClient(cl)
	return c, nil
}

func (c *cluster) close() {
	if c.admin != nil {
		c.admin.Close()
	}
	c.stop()
	os.RemoveAll(c.tmp)
}

// endOffsets returns each partition's high-water mark and their sum.
func (c *cluster) endOffsets(ctx context.Context, topic string) (map[int32]int64, int64, error) {
	listed, err := c.admin.ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, 0, fmt.Errorf("failed to list end offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	var sum int64
	listed.Each(func(o kadm.ListedOffset) {
		out[o.Partition] = o.Offset
		sum += o.Offset
	})
	return out, sum, nil
}

// createTopic creates a plain topic for the bench's own use.
func (c *cluster) createTopic(ctx context.Context, topic string, partitions int) error {
	resp, err := c.admin.CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("failed to create topic %s: %w", topic, err)
	}
	return nil
}

// createReadyTopic creates a topic with the given configs and waits until
// its end offsets can be listed, that is until every partition has a
// leader the broker knows.
func (c *cluster) createReadyTopic(ctx context.Context, topic string, partitions int, configs map[string]*string) error {
	resp, err := c.admin.CreateTopic(ctx, int32(partitions), 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("failed to create topic %s: %w", topic, err)
	}
	for {
		offsets, _, err := c.endOffsets(ctx, topic)
		if err == nil && len(offsets) == partitions {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("failed to see topic %s ready: %w", topic, errors.Join(err, ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// deleteTopics removes the run's topics from an external broker, where
// they would otherwise stay; the embedded broker goes away with its dir.
func (c *cluster) deleteTopics(ctx context.Context, topics ...string) error {
	resp, err := c.admin.DeleteTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("failed to delete topics %s: %w", strings.Join(topics, ","), err)
	}
	// A scenario that did not run never created its topic.
	var errs []error
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("failed to delete topic %s: %w", r.Topic, r.Err))
		}
	}
	return errors.Join(errs...)
}

// runID names a run's topics and group, so that runs on a persistent
// broker never collide.
func runID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand does not fail on supported platforms
	return hex.EncodeToString(b)
}

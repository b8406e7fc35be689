package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// realKafkaPartitions is the partition count the real-Kafka tests give
// serve.
const realKafkaPartitions = 6

// Configs of the topics of `eventfold serve`: the events log is the source
// of truth, kept whole forever; the table keeps the latest state of each
// customer; dead letters are kept until someone looks at them.
var (
	eventsTopicConfigs = map[string]string{"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
	tableTopicConfigs  = map[string]string{"cleanup.policy": "compact", "segment.bytes": "16777216", "segment.ms": "3600000"}
	dlqTopicConfigs    = map[string]string{"retention.ms": "-1", "cleanup.policy": "delete"}
)

// kafkaAdmin returns an admin client of the broker, closed by the cleanup.
func kafkaAdmin(t *testing.T, brokers string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatalf("failed to create kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// createTopic creates a topic with replication factor 1 (the broker is a
// single node) and the given configs, and waits until the broker serves
// its metadata, with a leader for every partition, and its configs: KRaft
// answers CreateTopics once the controller committed the topic, before
// the broker's metadata cache knows it.
func createTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32, configs map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	entries := make(map[string]*string, len(configs))
	for k, v := range configs {
		entries[k] = kadm.StringPtr(v)
	}
	if _, err := adm.CreateTopic(ctx, partitions, 1, entries, topic); err != nil {
		t.Fatalf("failed to create topic %s with %v: %v", topic, configs, err)
	}
	for {
		// Short attempts: kgo retries a request internally for seconds
		// when a metadata answer looks stale (another test deleting
		// topics is enough), and asking again is quicker.
		attempt, cancelAttempt := context.WithTimeout(ctx, time.Second)
		err := topicReady(attempt, adm, topic, partitions)
		cancelAttempt()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("topic %s created but not ready: %v", topic, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// topicReady returns why the broker does not yet serve topic as created,
// or nil.
func topicReady(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("failed to list topic %s: %w", topic, err)
	}
	d, ok := details[topic]
	switch {
	case !ok:
		return errors.New("not in the metadata")
	case d.Err != nil:
		return d.Err
	case len(d.Partitions) != int(partitions):
		return fmt.Errorf("%d of %d partitions in the metadata", len(d.Partitions), partitions)
	}
	for _, p := range d.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return fmt.Errorf("partition %d has no leader (%v)", p.Partition, p.Err)
		}
	}
	resources, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("failed to describe the configs of %s: %w", topic, err)
	}
	_, err = resources.On(topic, nil)
	return err
}

// createServeTopics creates the three topics of names as an operator
// would, with the settings serve requires, so that a test about something
// else does not depend on serve's creation of topics
// (realkafka_topics_test.go tests that). Nil tableConfigs are serve's.
func createServeTopics(t *testing.T, adm *kadm.Client, names kafkaNames, tableConfigs map[string]string) {
	t.Helper()
	if tableConfigs == nil {
		tableConfigs = tableTopicConfigs
	}
	createTopic(t, adm, names.events, realKafkaPartitions, eventsTopicConfigs)
	createTopic(t, adm, names.table(), realKafkaPartitions, tableConfigs)
	createTopic(t, adm, names.dlq(), realKafkaPartitions, dlqTopicConfigs)
}

// topicConfigs returns the effective configs of a topic, defaults
// included.
func topicConfigs(t *testing.T, adm *kadm.Client, topic string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rc kadm.ResourceConfig
	resources, err := adm.DescribeTopicConfigs(ctx, topic)
	if err == nil {
		rc, err = resources.On(topic, nil)
	}
	if err != nil {
		t.Fatalf("failed to describe configs of %s: %v", topic, err)
	}
	out := make(map[string]string, len(rc.Configs))
	for _, c := range rc.Configs {
		if c.Value != nil {
			out[c.Key] = *c.Value
		}
	}
	return out
}

// committedOffsets returns the group's committed offset of each of the
// first partitions of topic, 0 where it has none.
func committedOffsets(t *testing.T, adm *kadm.Client, topic, group string, partitions int) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := make([]int64, partitions)
	resp, err := adm.FetchOffsetsForTopics(ctx, group, topic)
	if errors.Is(err, kerr.GroupIDNotFound) {
		// kfake's answer for a group without commits; Kafka's is -1.
		return out
	}
	if err != nil {
		t.Fatalf("failed to fetch the offsets of group %s: %v", group, err)
	}
	for p := range out {
		if o, ok := resp.Lookup(topic, int32(p)); ok && o.Err == nil && o.At >= 0 {
			out[p] = o.At
		}
	}
	return out
}

package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// Topics names the topics of one eventfold deployment.
type Topics struct {
	Events      string
	Group       string
	Partitions  int32
	Replication int16
}

// MaxPartitions bounds the partitions of the topics created at start.
const MaxPartitions = 10000

// Validate reports topics that cannot be set up: a name missing, or a
// partition count or replication factor out of range.
func (t Topics) Validate() error {
	switch {
	case t.Events == "" || t.Group == "":
		return errors.New("the events topic and the group must not be empty")
	case t.Partitions < 1 || t.Partitions > MaxPartitions:
		return fmt.Errorf("partitions %d must be from 1 to %d", t.Partitions, MaxPartitions)
	case t.Replication < 1:
		return fmt.Errorf("replication %d must be positive", t.Replication)
	}
	return nil
}

// TableSegmentBytes is the segment size of a table topic Setup creates.
const TableSegmentBytes = 16 << 20

// Table is the goka group table topic of the group.
func (t Topics) Table() string { return t.Group + "-table" }

// DeadLetter is the dead-letter topic of the events topic.
func (t Topics) DeadLetter() string { return t.Events + ".dlq" }

// Keys is the compacted topic of the customers' data keys, wrapped by the
// key-encryption key. It belongs to the events topic, not to a group: a
// rebuild into a new group reads the same sealed events with the same keys.
func (t Topics) Keys() string { return t.Events + ".keys" }

// ErrTopicMisconfigured is returned when an existing topic would break the
// service's guarantees, such as an events topic that deletes old events.
var ErrTopicMisconfigured = errors.New("topic misconfigured")

// Setup creates the events, table and dead-letter topics when they are
// missing and checks the existing ones. It returns the partition count of
// the events topic, which the processor needs to check partitioning.
func Setup(ctx context.Context, cfg Config, topics Topics) (int32, error) {
	admin, err := sarama.NewClusterAdmin(cfg.Brokers, cfg.Sarama())
	if err != nil {
		return 0, fmt.Errorf("failed to connect to kafka at %s: %w", strings.Join(cfg.Brokers, ","), err)
	}
	defer admin.Close()

	specs := []struct {
		name    string
		configs map[string]string
		check   func(map[string]string) error
	}{
		// The log is the source of truth: keep every event forever and
		// never compact it.
		{topics.Events, map[string]string{"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}, checkEvents},
		// The table: compacted, in segments of 16 MiB (rolled at least
		// hourly). The cleaner never touches the active segment, and
		// Kafka's default of 1 GiB kept a fold's whole history there: a
		// fresh instance restored 990,081 records for 100,000 customers.
		// A restore now reads each partition's keys and at most its
		// active segment's history.
		{topics.Table(), map[string]string{"cleanup.policy": "compact", "segment.bytes": strconv.Itoa(TableSegmentBytes), "segment.ms": "3600000"}, checkTable},
		// Bad input is kept as long as the input itself.
		{topics.DeadLetter(), map[string]string{"retention.ms": "-1", "cleanup.policy": "delete"}, nil},
		// Data keys: compacted, so that an erased key's record is gone
		// for good once the cleaner passes; hourly segments, because the
		// cleaner never touches the active one.
		{topics.Keys(), map[string]string{"cleanup.policy": "compact", "segment.ms": "3600000"}, checkKeys},
	}
	var eventPartitions int32
	for _, spec := range specs {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		want := topics.Partitions
		if spec.name != topics.Events && eventPartitions > 0 {
			// The table and the dead-letter topic follow the events topic,
			// which may have been created with another count.
			want = eventPartitions
		}
		partitions, err := ensure(admin, spec.name, want, topics.Replication, spec.configs)
		if err != nil {
			return 0, err
		}
		if spec.name == topics.Events {
			eventPartitions = partitions
		} else if spec.name == topics.Table() && partitions != eventPartitions {
			return 0, fmt.Errorf("%w: table %s has %d partitions, events topic %s has %d: they must be equal",
				ErrTopicMisconfigured, spec.name, partitions, topics.Events, eventPartitions)
		}
		if spec.check == nil {
			continue
		}
		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: spec.name})
		if err != nil {
			return 0, fmt.Errorf("failed to describe configs of topic %s: %w", spec.name, err)
		}
		configs := make(map[string]string, len(entries))
		for _, e := range entries {
			configs[e.Name] = e.Value
		}
		if err := spec.check(configs); err != nil {
			return 0, fmt.Errorf("%w: topic %s: %w", ErrTopicMisconfigured, spec.name, err)
		}
	}
	return eventPartitions, nil
}

// ensure creates a topic unless it exists and returns its partition count.
// A new topic's metadata reaches the brokers a moment after the
// controller accepted it, and a topic's leader may be moving; both are
// waited out for a while.
func ensure(admin sarama.ClusterAdmin, name string, partitions int32, replication int16, configs map[string]string) (int32, error) {
	deadline := time.Now().Add(30 * time.Second)
	created := false
	for {
		n, err := partitionCount(admin, name)
		switch {
		case err == nil && n > 0:
			return n, nil
		case err == nil && !created:
			if err := create(admin, name, partitions, replication, configs); err != nil {
				return 0, err
			}
			created = true
			continue
		case err == nil:
			err = errors.New("no partitions reported yet")
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("topic %s is not ready: %w", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func create(admin sarama.ClusterAdmin, name string, partitions int32, replication int16, configs map[string]string) error {
	entries := make(map[string]*string, len(configs))
	for k, v := range configs {
		entries[k] = &v
	}
	err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: replication, ConfigEntries: entries}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("failed to create topic %s: %w", name, err)
	}
	return nil
}

func partitionCount(admin sarama.ClusterAdmin, name string) (int32, error) {
	meta, err := admin.DescribeTopics([]string{name})
	if err != nil {
		return 0, fmt.Errorf("failed to describe topic %s: %w", name, err)
	}
	for _, m := range meta {
		if m.Name != name {
			continue
		}
		if errors.Is(m.Err, sarama.ErrUnknownTopicOrPartition) {
			return 0, nil
		}
		if errors.Is(m.Err, sarama.ErrLeaderNotAvailable) && len(m.Partitions) == 0 {
			return 0, fmt.Errorf("topic %s has no leader yet: %w", name, m.Err)
		}
		if m.Err != sarama.ErrNoError {
			return 0, fmt.Errorf("failed to describe topic %s: %w", name, m.Err)
		}
		// A partition without a leader cannot be written yet: goka's
		// first writes to a just-created table would fail.
		for _, pm := range m.Partitions {
			if pm.Err != sarama.ErrNoError || pm.Leader < 0 {
				return 0, fmt.Errorf("partition %d of topic %s has no leader yet", pm.ID, name)
			}
		}
		return int32(len(m.Partitions)), nil
	}
	return 0, nil
}

func checkEvents(configs map[string]string) error {
	if policy := configs["cleanup.policy"]; strings.Contains(policy, "compact") {
		return fmt.Errorf("cleanup.policy is %q: compaction would delete events, the source of truth; use delete with retention.ms=-1", policy)
	}
	retention, ok := configs["retention.ms"]
	if !ok {
		return errors.New("retention.ms is not reported; it must be -1 so that no event is ever deleted")
	}
	if ms, err := strconv.ParseInt(retention, 10, 64); err != nil || ms >= 0 {
		return fmt.Errorf("retention.ms is %s: events would be deleted; set retention.ms=-1", retention)
	}
	if bytes, ok := configs["retention.bytes"]; ok {
		if n, err := strconv.ParseInt(bytes, 10, 64); err == nil && n >= 0 {
			return fmt.Errorf("retention.bytes is %s: events would be deleted; set retention.bytes=-1", bytes)
		}
	}
	return nil
}

func checkKeys(configs map[string]string) error {
	if policy := configs["cleanup.policy"]; policy != "compact" {
		return fmt.Errorf("cleanup.policy is %q: the keys topic must be compacted, and never deleted by time (an erased key would outlive its tombstone otherwise, a live one would be lost)", policy)
	}
	return nil
}

func checkTable(configs map[string]string) error {
	if policy := configs["cleanup.policy"]; !strings.Contains(policy, "compact") {
		return fmt.Errorf("cleanup.policy is %q: the group table must be compacted", policy)
	}
	return nil
}

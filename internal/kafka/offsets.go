package kafka

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
)

// Offsets reads high-water marks and a group's committed offsets.
type Offsets struct {
	client sarama.Client
	admin  sarama.ClusterAdmin
}

// NewOffsets connects an offsets reader.
func NewOffsets(cfg Config) (*Offsets, error) {
	sc := cfg.Sarama()
	sc.ClientID = cfg.ClientID + "-offsets"
	// Reading offsets must never create a topic, for example a mistyped
	// --events-topic, as a side effect of a metadata request.
	sc.Metadata.AllowAutoTopicCreation = false
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("failed to connect offsets reader: %w", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("failed to create admin client: %w", err)
	}
	return &Offsets{client: client, admin: admin}, nil
}

// Close releases the connections.
func (o *Offsets) Close() error { return o.admin.Close() }

// HighWaterMarks returns the next offset to be written, per partition.
func (o *Offsets) HighWaterMarks(topic string) (map[int32]int64, error) {
	partitions, err := o.client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("failed to list partitions of %s: %w", topic, err)
	}
	out := make(map[int32]int64, len(partitions))
	for _, p := range partitions {
		hwm, err := o.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("failed to read high-water mark of %s/%d: %w", topic, p, err)
		}
		out[p] = hwm
	}
	return out, nil
}

// Committed returns the group's committed offsets on topic, per
// partition; -1 where it has committed none.
func (o *Offsets) Committed(group, topic string) (map[int32]int64, error) {
	partitions, err := o.client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("failed to list partitions of %s: %w", topic, err)
	}
	resp, err := o.admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: partitions})
	out := make(map[int32]int64, len(partitions))
	if errors.Is(err, sarama.ErrGroupIDNotFound) {
		// kfake's answer for a group that never committed; Kafka's is -1.
		for _, p := range partitions {
			out[p] = -1
		}
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read offsets of group %s: %w", group, err)
	}
	for _, p := range partitions {
		out[p] = -1
		if b := resp.GetBlock(topic, p); b != nil && b.Err == sarama.ErrNoError {
			out[p] = b.Offset
		}
	}
	return out, nil
}

// LagCollector exports the records a consumer has yet to read, per
// partition, computed at scrape time from Kafka's high-water marks.
type LagCollector struct {
	desc     *prometheus.Desc
	offsets  *Offsets
	topic    string
	position func() (map[int32]int64, error)
}

// NewLagCollector returns a collector of metric name whose consumer
// position per partition (the next offset it will read) comes from
// position.
func NewLagCollector(name, help string, offsets *Offsets, topic string, position func() (map[int32]int64, error)) *LagCollector {
	return &LagCollector{
		desc:     prometheus.NewDesc(name, help, []string{"partition"}, nil),
		offsets:  offsets,
		topic:    topic,
		position: position,
	}
}

// Describe implements prometheus.Collector.
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector. When Kafka cannot be read the
// metric is left out of the scrape rather than reported wrong.
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	hwms, err := c.offsets.HighWaterMarks(c.topic)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	positions, err := c.position()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for p, hwm := range hwms {
		pos, ok := positions[p]
		if !ok || pos < 0 {
			pos = 0
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(max(hwm-pos, 0)), strconv.Itoa(int(p)))
	}
}

// positionCollector exports a consumer's positions per partition as they
// are, read at scrape time.
type positionCollector struct {
	desc     *prometheus.Desc
	position func() (map[int32]int64, error)
}

func (c *positionCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *positionCollector) Collect(ch chan<- prometheus.Metric) {
	positions, err := c.position()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for p, pos := range positions {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(max(pos, 0)), strconv.Itoa(int(p)))
	}
}

// LagCollectors returns the lag gauges of a service: the group's
// (eventfold_processor_lag_records) from its committed offsets, and the
// view's (eventfold_view_lag_records) from viewPositions; and the group's
// committed offsets themselves (eventfold_processor_committed_offset),
// whose sum is the records of the events topic ever decided, which no
// restart resets.
func LagCollectors(offsets *Offsets, topics Topics, viewPositions func() (map[int32]int64, error)) []prometheus.Collector {
	committed := func() (map[int32]int64, error) { return offsets.Committed(topics.Group, topics.Events) }
	return []prometheus.Collector{
		&positionCollector{desc: prometheus.NewDesc("eventfold_processor_committed_offset",
			"The group's committed offset per partition of the events topic: records decided (accepted, rejected, dead-lettered or duplicate) since the topic was created.",
			[]string{"partition"}, nil), position: committed},
		NewLagCollector("eventfold_processor_lag_records",
			"Events not yet folded by the group, per partition: high-water mark minus committed offset.",
			offsets, topics.Events, committed),
		NewLagCollector("eventfold_view_lag_records",
			"Table records not yet applied by this view, per partition: high-water mark minus the view's position.",
			offsets, topics.Table(), viewPositions),
	}
}

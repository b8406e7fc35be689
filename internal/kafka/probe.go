package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// sarama's client and admin calls take no context: they block for as
// long as their own retries last. The calls below run them aside and stop
// waiting when ctx ends, so that an interrupted command returns at once
// (the abandoned call ends by itself within sarama's timeouts).

// await runs call and returns its outcome, or ctx's error once ctx ends.
func await[T any](ctx context.Context, call func() (T, error)) (T, error) {
	type outcome struct {
		v   T
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		v, err := call()
		done <- outcome{v, err}
	}()
	select {
	case o := <-done:
		return o.v, o.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// PartitionCount returns the partition count of topic, 0 if it does not
// exist. It never creates the topic.
func (o *Offsets) PartitionCount(ctx context.Context, topic string) (int32, error) {
	meta, err := await(ctx, func() ([]*sarama.TopicMetadata, error) { return o.admin.DescribeTopics([]string{topic}) })
	if err != nil {
		return 0, fmt.Errorf("failed to describe topic %s: %w", topic, err)
	}
	for _, m := range meta {
		switch {
		case m.Name != topic:
		case errors.Is(m.Err, sarama.ErrUnknownTopicOrPartition):
			return 0, nil
		case !errors.Is(m.Err, sarama.ErrNoError):
			return 0, fmt.Errorf("failed to describe topic %s: %w", topic, m.Err)
		default:
			return int32(len(m.Partitions)), nil
		}
	}
	return 0, nil
}

// Offset returns the oldest or newest offset (sarama.OffsetOldest,
// sarama.OffsetNewest) of one partition. A topic created a moment ago may
// have no leader for a few seconds, so leadership errors are retried
// until ctx ends.
func (o *Offsets) Offset(ctx context.Context, topic string, partition int32, which int64) (int64, error) {
	return GetOffset(ctx, o.client, topic, partition, which)
}

// GetOffset is client.GetOffset that retries leadership errors until ctx
// ends: a topic created a moment ago may have no leader yet, and a
// client's first metadata of it may name none.
func GetOffset(ctx context.Context, client sarama.Client, topic string, partition int32, which int64) (int64, error) {
	for {
		off, err := await(ctx, func() (int64, error) { return client.GetOffset(topic, partition, which) })
		leaderless := errors.Is(err, sarama.ErrNotLeaderForPartition) || errors.Is(err, sarama.ErrLeaderNotAvailable) ||
			errors.Is(err, sarama.ErrUnknownTopicOrPartition)
		if err == nil {
			return off, nil
		}
		if !leaderless {
			return 0, fmt.Errorf("failed to read the offsets of %s/%d: %w", topic, partition, err)
		}
		// GetOffset refreshes the metadata itself after a failure.
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("failed to read the offsets of %s/%d: %w (%w)", topic, partition, ctx.Err(), err)
		case <-time.After(client.Config().Metadata.Retry.Backoff):
		}
	}
}

// Offsets returns the oldest or newest offset of partitions 0 to n-1.
func (o *Offsets) Offsets(ctx context.Context, topic string, n int32, which int64) ([]int64, error) {
	out := make([]int64, n)
	for p := range n {
		off, err := o.Offset(ctx, topic, p, which)
		if err != nil {
			return nil, err
		}
		out[p] = off
	}
	return out, nil
}

// Written returns the records ever written to topic: the sum of its
// high-water marks, 0 if it does not exist.
func (o *Offsets) Written(ctx context.Context, topic string) (int64, error) {
	n, err := o.PartitionCount(ctx, topic)
	if err != nil {
		return 0, err
	}
	ends, err := o.Offsets(ctx, topic, n, sarama.OffsetNewest)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, end := range ends {
		sum += end
	}
	return sum, nil
}

// GroupOffsets returns group's committed offsets by topic and partition;
// nil partitions asks for every topic. A group the coordinator does not
// know has none: Kafka answers with offsets of -1, kfake with
// GROUP_ID_NOT_FOUND, which is read as an empty answer.
func (o *Offsets) GroupOffsets(ctx context.Context, group string, partitions map[string][]int32) (map[string]map[int32]*sarama.OffsetFetchResponseBlock, error) {
	resp, err := await(ctx, func() (*sarama.OffsetFetchResponse, error) {
		return o.admin.ListConsumerGroupOffsets(group, partitions)
	})
	switch {
	case errors.Is(err, sarama.ErrGroupIDNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("failed to read the committed offsets of group %s: %w", group, err)
	}
	return resp.Blocks, nil
}

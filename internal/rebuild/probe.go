package rebuild

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/eventfold/eventfold/internal/kafka"
)

// probe reads a group's position in the events topic from Kafka.
type probe struct {
	kafka      *kafka.Offsets
	topics     kafka.Topics
	partitions int32
	// logStart is the first offset of each partition: where a group with
	// nothing committed starts (Offsets.Initial is OffsetOldest).
	logStart []int64
}

func newProbe(ctx context.Context, offsets *kafka.Offsets, topics kafka.Topics) (*probe, error) {
	p := &probe{kafka: offsets, topics: topics}
	n, err := offsets.PartitionCount(ctx, topics.Events)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: events topic does not exist: %s, so there is nothing to rebuild from (check --events-topic and --brokers)",
			ErrRefused, topics.Events)
	}
	p.partitions = n
	if p.logStart, err = p.offsets(ctx, topics.Events, sarama.OffsetOldest); err != nil {
		return nil, err
	}
	return p, nil
}

// offsets returns the oldest or newest offset of each partition of topic,
// which has as many partitions as the events topic. A topic created a
// moment ago may have no leader yet: the reading waits up to leaderWait.
func (p *probe) offsets(ctx context.Context, topic string, which int64) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, leaderWait)
	defer cancel()
	return p.kafka.Offsets(ctx, topic, p.partitions, which)
}

// checkNewGroup refuses a group that has folded before: its committed
// offsets would make the processor resume instead of starting over, and
// its table holds values of the fold being replaced.
func (p *probe) checkNewGroup(ctx context.Context) error {
	all, err := p.kafka.GroupOffsets(ctx, p.topics.Group, nil) // nil: every topic
	if err != nil {
		return err
	}
	var committed []string
	for topic, blocks := range all {
		for part, b := range blocks {
			if !errors.Is(b.Err, sarama.ErrNoError) {
				return fmt.Errorf("failed to read the committed offset of group %s on %s/%d: %w", p.topics.Group, topic, part, b.Err)
			}
			if b.Offset >= 0 {
				committed = append(committed, fmt.Sprintf("%s/%d@%d", topic, part, b.Offset))
			}
		}
	}
	slices.Sort(committed)
	table := p.topics.Table()
	written, err := p.kafka.Written(ctx, table)
	if err != nil {
		return err
	}
	if len(committed) == 0 && written == 0 {
		return nil
	}
	var why []string
	if len(committed) > 0 {
		why = append(why, fmt.Sprintf("has committed offsets (%s)", abbreviate(committed, 6)))
	}
	if written > 0 {
		why = append(why, fmt.Sprintf("its table %s holds %d records", table, written))
	}
	return fmt.Errorf("%w: group %s %s: a rebuild folds into a new group, never into one that has folded before; choose a new --group",
		ErrRefused, p.topics.Group, strings.Join(why, " and "))
}

// measure reads the committed offsets first and the high-water marks
// second, so that the lag it reports is never less than the real one.
func (p *probe) measure(ctx context.Context) (position, error) {
	pos := position{at: time.Now(), next: make([]int64, p.partitions)}
	parts := make([]int32, p.partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	committed, err := p.kafka.GroupOffsets(ctx, p.topics.Group, map[string][]int32{p.topics.Events: parts})
	if err != nil {
		return pos, err
	}
	for i, part := range parts {
		b := committed[p.topics.Events][part]
		switch {
		case b == nil || b.Offset < 0:
			pos.next[i] = p.logStart[i]
		case !errors.Is(b.Err, sarama.ErrNoError):
			return pos, fmt.Errorf("failed to read the committed offset of %s/%d: %w", p.topics.Events, part, b.Err)
		default:
			pos.next[i] = b.Offset
		}
	}
	pos.end, err = p.offsets(ctx, p.topics.Events, sarama.OffsetNewest)
	return pos, err
}

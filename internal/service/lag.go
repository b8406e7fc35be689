package service

import (
	"context"
	"fmt"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/processor"
)

// lagReader tells how far the copy that serves a customer is behind, in
// records of the customer's partition (web.Lagger): for a replica, the
// table records its view has not read; for a partitioned instance, whose
// copy is the processor's own, the events its processor has not folded.
type lagReader struct {
	offsets     *offsetCache
	topics      kafka.Topics
	partitions  int32
	partitioned bool
	processor   *processor.Processor
	view        interface {
		Positions() (map[int32]int64, error)
		Holds(id string) (owned, standby bool)
		StandbyPosition(p int32) (int64, bool)
	}
}

// Lag implements web.Lagger.
func (l *lagReader) Lag(ctx context.Context, id string) (int64, error) {
	p := processor.PartitionFor(id, l.partitions)
	topic := l.topics.Table()
	if l.partitioned {
		if _, standby := l.view.Holds(id); standby {
			return l.standbyLag(ctx, p)
		}
		topic = l.topics.Events
	}
	end, err := l.offsets.End(ctx, topic, p)
	if err != nil || end == 0 {
		return 0, err // an empty partition: nothing to be behind
	}
	position, err := l.position(ctx, p)
	if err != nil {
		return 0, err
	}
	return max(0, end-position), nil
}

// position is the next offset the serving copy reads of partition p.
func (l *lagReader) position(ctx context.Context, p int32) (int64, error) {
	if !l.partitioned {
		positions, err := l.view.Positions()
		if err != nil {
			return 0, err
		}
		position, ok := positions[p]
		if !ok {
			return 0, fmt.Errorf("the view has no position on partition %d yet", p)
		}
		return position, nil
	}
	// The folded position where this run folded records, else the
	// group's commit: an idle partition's whole fold is committed.
	position := l.processor.Positions(ctx)[p]
	committed, err := l.offsets.Committed(ctx, l.topics.Group, l.topics.Events)
	if err != nil {
		return 0, err
	}
	return max(position, committed[p]), nil
}

// standbyLag is the lag of the standby copy that serves partition p here:
// the table records it has not read.
func (l *lagReader) standbyLag(ctx context.Context, p int32) (int64, error) {
	next, ok := l.view.StandbyPosition(p)
	if !ok {
		return 0, fmt.Errorf("no standby copy of partition %d serves here", p)
	}
	end, err := l.offsets.End(ctx, l.topics.Table(), p)
	if err != nil {
		return 0, err
	}
	return max(0, end-next), nil
}

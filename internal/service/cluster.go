package service

import (
	"context"

	"github.com/IBM/sarama"

	"github.com/eventfold/eventfold/internal/cluster"
	"github.com/eventfold/eventfold/views"
	"github.com/eventfold/eventfold/web"
)

// clusterStatus tells GET /cluster and GET /cluster/instance about this
// instance (web.ClusterStatus): the copies it serves with their lag, read
// from Kafka's offsets as ?max_lag= reads them (lag.go), and the
// membership it read from the consumer group.
type clusterStatus struct {
	mode    string
	lag     *lagReader
	view    *views.View
	members *cluster.Members // nil in replica mode
}

// Membership implements web.ClusterStatus.
func (c *clusterStatus) Membership() (web.Membership, bool) {
	if c.members == nil {
		return web.Membership{}, false
	}
	pic := c.members.Picture()
	return web.Membership{ReadAt: pic.ReadAt, Members: pic.Members, Owners: pic.Owners, Standbys: pic.Standbys}, true
}

// Instance implements web.ClusterStatus. A lag that cannot be read (Kafka
// unreachable, a copy still recovering) is left out, not guessed.
func (c *clusterStatus) Instance(ctx context.Context) web.InstanceStatus {
	st := web.InstanceStatus{Mode: c.mode, Keys: c.view.Keys() + c.view.Standbys().Keys()}
	l := c.lag
	if !l.partitioned {
		ends, _ := l.offsets.Offsets(ctx, l.topics.Table(), l.partitions, sarama.OffsetNewest)
		positions, _ := l.view.Positions()
		for p := range l.partitions {
			cp := web.PartitionCopy{Partition: p, Role: web.RoleReplica}
			if pos, ok := positions[p]; ok && ends != nil {
				cp.Lag = lagOf(ends[p], pos)
			}
			st.Copies = append(st.Copies, cp)
		}
		return st
	}
	if owned := c.view.Owned(); len(owned) > 0 {
		ends, _ := l.offsets.Offsets(ctx, l.topics.Events, l.partitions, sarama.OffsetNewest)
		committed, _ := l.offsets.Committed(l.topics.Group, l.topics.Events)
		folded := l.processor.Positions(ctx)
		for _, p := range owned {
			cp := web.PartitionCopy{Partition: p, Role: web.RoleOwner}
			if ends != nil && committed != nil {
				cp.Lag = lagOf(ends[p], max(folded[p], committed[p]))
			}
			st.Copies = append(st.Copies, cp)
		}
	}
	if held := c.view.Standbys().Held(); len(held) > 0 {
		ends, _ := l.offsets.Offsets(ctx, l.topics.Table(), l.partitions, sarama.OffsetNewest)
		for _, p := range held {
			cp := web.PartitionCopy{Partition: p, Role: web.RoleStandby}
			if next, ok := l.view.StandbyPosition(p); ok && ends != nil {
				cp.Lag = lagOf(ends[p], next)
			}
			st.Copies = append(st.Copies, cp)
		}
	}
	return st
}

// lagOf is the records from position to the partition's end; an empty
// partition has nothing to be behind.
func lagOf(end, position int64) *int64 {
	lag := int64(0)
	if end > 0 {
		lag = max(0, end-position)
	}
	return &lag
}

package service

import (
	"context"

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

// Instance implements web.ClusterStatus. It reads the end offset of each
// partition it serves, nothing of the others. A lag that cannot be read
// (Kafka unreachable, a copy still recovering) is left out, not guessed.
func (c *clusterStatus) Instance(ctx context.Context) web.InstanceStatus {
	st := web.InstanceStatus{Mode: c.mode, Keys: c.view.Keys() + c.view.Standbys().Keys()}
	l := c.lag
	if !l.partitioned {
		all := make([]int32, l.partitions)
		for p := range all {
			all[p] = int32(p)
		}
		positions, _ := l.view.Positions()
		return c.add(ctx, st, all, web.RoleReplica, l.topics.Table(), func(p int32) (int64, bool) {
			pos, ok := positions[p]
			return pos, ok
		})
	}
	if owned := c.view.Owned(); len(owned) > 0 {
		committed, err := l.offsets.Committed(ctx, l.topics.Group, l.topics.Events)
		folded := l.processor.Positions(ctx)
		st = c.add(ctx, st, owned, web.RoleOwner, l.topics.Events, func(p int32) (int64, bool) {
			return max(folded[p], committed[p]), err == nil
		})
	}
	return c.add(ctx, st, c.view.Standbys().Held(), web.RoleStandby, l.topics.Table(), l.view.StandbyPosition)
}

// add appends the copies of partitions in role to st, each with its lag:
// the records of topic from its position to the partition's end.
func (c *clusterStatus) add(ctx context.Context, st web.InstanceStatus, partitions []int32, role, topic string,
	position func(p int32) (int64, bool)) web.InstanceStatus {
	for _, p := range partitions {
		cp := web.PartitionCopy{Partition: p, Role: role}
		if pos, ok := position(p); ok {
			if end, err := c.lag.offsets.End(ctx, topic, p); err == nil {
				cp.Lag = lagOf(end, pos)
			}
		}
		st.Copies = append(st.Copies, cp)
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

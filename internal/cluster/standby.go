package cluster

import (
	"slices"

	"github.com/eventfold/eventfold/processor"
)

// MaxStandbyReplicas bounds Config.StandbyReplicas: each standby copy of
// a partition is a full copy of it on another instance's disk.
const MaxStandbyReplicas = 8

// standbyPicture is who stands by for each partition, from the last
// stable description of the group.
type standbyPicture struct {
	// byPartition holds, for each partition, the advertised URLs of its
	// standby instances in order of preference.
	byPartition [][]string
	// members is the stable group's members, sorted, and owners the
	// owner of each partition.
	members, owners []string
}

// setStandbys chooses the standbys of every partition from a stable
// picture: the StandbyReplicas members that follow its owner in sorted
// member order. Every instance reads the same description of the group,
// so every instance chooses the same standbys without asking the others,
// as Kafka Streams' assignor places num.standby.replicas. With fewer
// members than StandbyReplicas+1, a partition has as many standbys as
// there are other members.
func (m *Members) setStandbys(owners, members []string) {
	slices.Sort(members)
	members = slices.Compact(members)
	n := min(m.cfg.StandbyReplicas, len(members)-1)
	if m.cfg.StandbyReplicas > 0 && n < m.cfg.StandbyReplicas && m.short.CompareAndSwap(false, true) {
		m.log.Warn("fewer instances than standby replicas: each partition has a standby on every other instance",
			"instances", len(members), "standby_replicas", m.cfg.StandbyReplicas)
	}
	pic := &standbyPicture{byPartition: make([][]string, len(owners)), members: members, owners: owners}
	for p, owner := range owners {
		at := slices.Index(members, owner)
		if at < 0 {
			continue
		}
		for k := 1; k <= n; k++ {
			pic.byPartition[p] = append(pic.byPartition[p], members[(at+k)%len(members)])
		}
	}
	m.standbys.Store(pic)
}

// Standbys returns the advertised URLs of the instances that stand by for
// id's partition, as the last stable group placed them: during a
// rebalance they keep serving what they stood by for.
func (m *Members) Standbys(id string) []string {
	pic := m.standbys.Load()
	if pic == nil {
		return nil
	}
	return pic.byPartition[processor.PartitionFor(id, m.cfg.Partitions)]
}

// Fallbacks returns, in order, the instances that may answer a read of id
// while its owner is unknown or does not answer: its standbys, then its
// owner in the last stable group, which keeps serving its partitions
// through a rebalance (views: lingering partitions).
func (m *Members) Fallbacks(id string) []string {
	pic := m.standbys.Load()
	if pic == nil {
		return nil
	}
	p := processor.PartitionFor(id, m.cfg.Partitions)
	out := slices.Clone(pic.byPartition[p])
	if owner := pic.owners[p]; owner != "" && m.cfg.StandbyReplicas > 0 {
		out = append(out, owner)
	}
	return out
}

// StandbyPartitions returns the partitions this instance stands by for,
// in order: the copies it keeps warm.
func (m *Members) StandbyPartitions() []int32 {
	pic, self := m.standbys.Load(), m.Self()
	if pic == nil || self == "" {
		return nil
	}
	var out []int32
	for p, urls := range pic.byPartition {
		if slices.Contains(urls, self) {
			out = append(out, int32(p))
		}
	}
	return out
}

// OwnedPartitions returns the partitions the group assigned to this
// instance, as last described.
func (m *Members) OwnedPartitions() []int32 { return m.Partitions()[m.Self()] }

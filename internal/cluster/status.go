package cluster

import (
	"slices"
	"time"
)

// Picture is the membership as this instance last read it, for the
// cluster status route (GET /cluster).
type Picture struct {
	// ReadAt is when the group was last described; zero before the
	// first description.
	ReadAt time.Time
	// Members are the advertised URLs of the instances of the last stable
	// group and of the current owners, sorted.
	Members []string
	// Owners holds the owner of each partition, "" during a rebalance,
	// and Standbys the instances that stand by for it, as the last stable
	// group placed them.
	Owners   []string
	Standbys [][]string
}

// Picture returns the membership as last read. Kafka's DescribeGroups
// answer carries no generation, so the time of the read dates it.
func (m *Members) Picture() Picture {
	pic := Picture{Owners: slices.Clone(*m.owners.Load()), Standbys: make([][]string, m.cfg.Partitions)}
	if at := m.readAt.Load(); at != nil {
		pic.ReadAt = *at
	}
	if sb := m.standbys.Load(); sb != nil {
		pic.Members = slices.Clone(sb.members)
		for p := range pic.Standbys {
			if p < len(sb.byPartition) {
				pic.Standbys[p] = slices.Clone(sb.byPartition[p])
			}
		}
	}
	for _, owner := range pic.Owners {
		if owner != "" && !slices.Contains(pic.Members, owner) {
			pic.Members = append(pic.Members, owner)
		}
	}
	slices.Sort(pic.Members)
	return pic
}

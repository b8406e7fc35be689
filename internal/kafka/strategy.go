package kafka

import (
	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// rankedByMemberData is goka's copartitioning strategy with the members
// ranked by their member data before their ids.
//
// goka sorts the members by id and hands each a contiguous range of
// partitions. Kafka gives a member a new random id at every join, so an
// instance that restarts lands at a random rank and gets other partitions
// than it held: in partitioned mode, where an instance serves from the
// processor's kept copy of its partitions, it had to read its new
// partitions whole from the table (39 s at a million customers over three
// instances, BENCHMARKS.md), and its peers moved too. A partitioned
// instance joins with its advertised URL as member data, which a restart
// keeps, so ranked by it the same instances get the same partitions back.
// Without member data (replica mode) the order is goka's. The name is
// goka's, so instances of older builds in the same group agree on the
// protocol during a rolling upgrade: the leader's plan is followed, and
// either plan is valid.
type rankedByMemberData struct{ inner sarama.BalanceStrategy }

// groupStrategy is the rebalance strategy of every consumer group.
var groupStrategy sarama.BalanceStrategy = rankedByMemberData{inner: goka.CopartitioningStrategy}

func (s rankedByMemberData) Name() string { return s.inner.Name() }

func (s rankedByMemberData) Plan(members map[string]sarama.ConsumerGroupMemberMetadata, topics map[string][]int32) (sarama.BalanceStrategyPlan, error) {
	ranked := make(map[string]sarama.ConsumerGroupMemberMetadata, len(members))
	ids := make(map[string]string, len(members)) // rank key -> member id
	for id, m := range members {
		key := string(m.UserData) + "\x00" + id
		ranked[key], ids[key] = m, id
	}
	plan, err := s.inner.Plan(ranked, topics)
	if err != nil {
		return nil, err
	}
	out := make(sarama.BalanceStrategyPlan, len(plan))
	for key, assignment := range plan {
		out[ids[key]] = assignment
	}
	return out, nil
}

func (s rankedByMemberData) AssignmentData(memberID string, topics map[string][]int32, generationID int32) ([]byte, error) {
	return s.inner.AssignmentData(memberID, topics, generationID)
}

package crash

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Group probes a goka group's progress on its input topic.
type Group struct {
	Admin      *kadm.Client
	Name       string // the group
	Topic      string // the events topic
	Partitions int32
}

// Committed returns the group's committed offset per partition; a
// partition without a commit is absent.
func (g Group) Committed(ctx context.Context) (map[int32]int64, error) {
	resp, err := g.Admin.FetchOffsetsForTopics(ctx, g.Name, g.Topic)
	if err != nil {
		return nil, fmt.Errorf("failed to fetch the committed offsets of %s: %w", g.Name, err)
	}
	out := map[int32]int64{}
	for p := range g.Partitions {
		if o, ok := resp.Lookup(g.Topic, p); ok && o.Err == nil && o.At >= 0 {
			out[p] = o.At
		}
	}
	return out, nil
}

// Progressed reports whether every partition's committed offset is past
// its value in before, or at the end of the log: the partitions of a dead
// member have been taken over and are folded again.
func (g Group) Progressed(ctx context.Context, before map[int32]int64) bool {
	ends, err := g.Admin.ListEndOffsets(ctx, g.Topic)
	if err != nil || ends.Error() != nil {
		return false
	}
	now, err := g.Committed(ctx)
	if err != nil {
		return false
	}
	for p := range g.Partitions {
		end, ok := ends.Lookup(g.Topic, p)
		at, committed := now[p]
		if !ok || !committed || (at <= before[p] && at < end.Offset) {
			return false
		}
	}
	return true
}

// Stable reports whether the group is stable with the given number of
// members.
func (g Group) Stable(ctx context.Context, members int) bool {
	described, err := g.Admin.DescribeGroups(ctx, g.Name)
	if err != nil {
		return false
	}
	d, ok := described[g.Name]
	return ok && d.Err == nil && d.State == "Stable" && len(d.Members) == members
}

// Owners returns the advertised URL of the member that owns each
// partition of the events topic, read as the instances read it: from the
// member data each joined the group with (serve --serve-mode
// partitioned). It fails unless the group is Stable with every partition
// owned.
func (g Group) Owners(ctx context.Context) (map[int32]string, error) {
	described, err := g.Admin.DescribeGroups(ctx, g.Name)
	if err != nil {
		return nil, fmt.Errorf("failed to describe %s: %w", g.Name, err)
	}
	d, ok := described[g.Name]
	switch {
	case !ok || d.Err != nil:
		return nil, fmt.Errorf("failed to describe %s: %v", g.Name, d.Err)
	case d.State != "Stable":
		return nil, fmt.Errorf("group %s is %s", g.Name, d.State)
	}
	owners := map[int32]string{}
	for _, m := range d.Members {
		join, ok1 := m.Join.AsConsumer()
		assigned, ok2 := m.Assigned.AsConsumer()
		var data struct {
			URL string `json:"url"`
		}
		if !ok1 || !ok2 || json.Unmarshal(join.UserData, &data) != nil || data.URL == "" {
			return nil, fmt.Errorf("member %s of %s advertises no URL", m.MemberID, g.Name)
		}
		for _, t := range assigned.Topics {
			if t.Topic == g.Topic {
				for _, p := range t.Partitions {
					owners[p] = data.URL
				}
			}
		}
	}
	if len(owners) != int(g.Partitions) {
		return nil, fmt.Errorf("group %s owns %d of %d partitions", g.Name, len(owners), g.Partitions)
	}
	return owners, nil
}

package cluster

import (
	"log/slog"
	"slices"
	"testing"
)

// TestStandbysFollowTheOwnerInMemberOrder: every instance derives the
// same standbys from the same group description: the N members after
// the owner in sorted order, never the owner, fewer when the group is
// smaller than N+1, none for a partition without an owner.
func TestStandbysFollowTheOwnerInMemberOrder(t *testing.T) {
	const a, b, c = "http://a:1", "http://b:1", "http://c:1"
	tests := []struct {
		name     string
		replicas int
		owners   []string
		members  []string
		want     [][]string
	}{
		{"one standby, the next member", 1, []string{a, b, c, ""}, []string{c, a, b},
			[][]string{{b}, {c}, {a}, nil}},
		{"two standbys wrap around", 2, []string{c, a}, []string{b, c, a},
			[][]string{{a, b}, {b, c}}},
		{"fewer members than standbys", 3, []string{a, b}, []string{b, a, a},
			[][]string{{b}, {a}}},
		{"a lone member stands by for nothing", 1, []string{a, a}, []string{a},
			[][]string{nil, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Members{cfg: Config{Partitions: int32(len(tt.owners)), StandbyReplicas: tt.replicas}, log: slog.Default()}
			m.setStandbys(tt.owners, tt.members)
			got := m.standbys.Load().byPartition
			for p := range tt.want {
				if !slices.Equal(got[p], tt.want[p]) {
					t.Errorf("standbys of partition %d = %v, want %v", p, got[p], tt.want[p])
				}
			}
			for _, self := range []string{a, b, c} {
				m.SetSelf(self)
				var want []int32
				for p, urls := range tt.want {
					if slices.Contains(urls, self) {
						want = append(want, int32(p))
					}
				}
				if got := m.StandbyPartitions(); !slices.Equal(got, want) {
					t.Errorf("%s stands by for %v, want %v", self, got, want)
				}
			}
		})
	}
}

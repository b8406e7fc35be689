package kafka

import (
	"fmt"
	"slices"
	"testing"

	"github.com/IBM/sarama"
)

// A partitioned instance that restarts joins with a new member id and the
// same advertised URL: it must get the partitions it held back, and so
// must the others, so that each serves from its kept copy. goka's own
// strategy ranks by member id and moved them (this test fails with it:
// the restarted instance got another range).
func TestGroupStrategyGivesARestartedInstanceItsPartitionsBack(t *testing.T) {
	strategy := DefaultConfig().Sarama().Consumer.Group.Rebalance.GroupStrategies[0]
	topics := map[string][]int32{"events": {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}}
	member := func(url string) sarama.ConsumerGroupMemberMetadata {
		return sarama.ConsumerGroupMemberMetadata{Topics: []string{"events"}, UserData: []byte(fmt.Sprintf(`{"url":%q}`, url))}
	}
	byURL := func(members map[string]string) map[string][]int32 {
		t.Helper()
		metas := map[string]sarama.ConsumerGroupMemberMetadata{}
		for id, url := range members {
			metas[id] = member(url)
		}
		plan, err := strategy.Plan(metas, topics)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]int32{}
		for id, assignment := range plan {
			out[members[id]] = slices.Sorted(slices.Values(assignment["events"]))
		}
		return out
	}
	before := byURL(map[string]string{"id-a": "http://a:8080", "id-b": "http://b:8080", "id-c": "http://c:8080"})
	for _, rejoined := range []string{"id-0", "id-bb", "id-z"} { // ranks first, between, last by id
		t.Run(rejoined, func(t *testing.T) {
			after := byURL(map[string]string{rejoined: "http://a:8080", "id-b": "http://b:8080", "id-c": "http://c:8080"})
			for url, partitions := range before {
				if !slices.Equal(after[url], partitions) {
					t.Errorf("%s held %v, after a's restart it got %v", url, partitions, after[url])
				}
			}
		})
	}
	// Without member data (replica mode) the plan is goka's: by member id.
	plan, err := strategy.Plan(map[string]sarama.ConsumerGroupMemberMetadata{
		"id-b": {Topics: []string{"events"}}, "id-a": {Topics: []string{"events"}},
	}, topics)
	if err != nil {
		t.Fatal(err)
	}
	if got := plan["id-a"]["events"]; !slices.Contains(got, 0) {
		t.Errorf("without member data, id-a (first by id) got %v, want the first range", got)
	}
}

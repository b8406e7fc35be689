package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// kafkaNames are the topic and group names of one test's `eventfold
// serve` on a real broker.
type kafkaNames struct {
	events, group string
}

func (n kafkaNames) table() string { return n.group + "-table" }
func (n kafkaNames) dlq() string   { return n.events + ".dlq" }

// uniqueKafkaNames returns names no other test uses, for a broker of the
// test's own that goes away with it.
func uniqueKafkaNames(prefix string) kafkaNames {
	return kafkaNames{events: testkit.UniqueName(prefix + "-events"), group: testkit.UniqueName(prefix + "-group")}
}

// newKafkaNames returns fresh names on the shared broker, which is
// persistent: the cleanup deletes their topics and group (see
// deleteAfter).
func newKafkaNames(t *testing.T, brokers, prefix string) kafkaNames {
	t.Helper()
	n := uniqueKafkaNames(prefix)
	deleteAfter(t, brokers, []string{n.events, n.table(), n.dlq()}, []string{n.group})
	return n
}

// deleteAfter deletes a test's topics and groups from the shared broker
// when the test ends, unless it failed: then they are kept for a look and
// their names logged. Deleting is best effort, and a topic or group that
// was never created is no error.
func deleteAfter(t *testing.T, brokers string, topics, groups []string) {
	t.Helper()
	adm := kafkaAdmin(t, brokers)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept topics %s and groups %s", strings.Join(topics, ", "), strings.Join(groups, ", "))
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		deleted, err := adm.DeleteTopics(ctx, topics...)
		if err != nil {
			t.Logf("failed to delete topics %s: %v", strings.Join(topics, ", "), err)
		}
		for _, r := range deleted.Sorted() {
			if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
				t.Logf("failed to delete topic %s: %v", r.Topic, r.Err)
			}
		}
		gone, err := adm.DeleteGroups(ctx, groups...)
		if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			t.Logf("failed to delete groups %s: %v", strings.Join(groups, ", "), err)
		}
		for _, r := range gone.Sorted() {
			if r.Err != nil && !errors.Is(r.Err, kerr.GroupIDNotFound) {
				t.Logf("failed to delete group %s: %v", r.Group, r.Err)
			}
		}
	})
}

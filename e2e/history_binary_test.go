package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/processor"
)

// TestHistoryReadsBinaryModeEvents: an event produced in binary content
// mode is read back by history and time travel as the processor read it,
// from its value and its ce_ headers.
func TestHistoryReadsBinaryModeEvents(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	const id = "cust-binary-history"
	p.produce(t, &kgo.Record{Key: []byte(id), Value: []byte(`{"name":"Binary Person","email":"binary@example.com"}`), Headers: []kgo.RecordHeader{
		{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("bin-h-1")}, {Key: "ce_source", Value: []byte("/kcat")},
		{Key: "ce_type", Value: []byte(processor.TypeRegistered)}, {Key: "ce_subject", Value: []byte(id)},
		{Key: "content-type", Value: []byte("application/json")}}})
	p.awaitVersion(t, id, 1)
	for _, path := range []string{"/customers/" + id + "/events", "/customers/" + id + "?version=1"} {
		status, body := p.client.Get(t, p.client.Base+path)
		if status != http.StatusOK || !strings.Contains(string(body), "Binary Person") {
			t.Errorf("GET %s: %d %s", path, status, body)
		}
	}
}

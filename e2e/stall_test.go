package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/processor"
)

// stallIDBytes is the size of the attack's ids: as large as an event
// under the 64 KiB limit lets them be.
const stallIDBytes = 63 << 10

// TestHostileWriterCannotStallPartition replays issue 12's attack. Each
// event id is kept in the customer's state, so before ids were bounded
// about 17 events with 63 KB ids to one unregistered customer pushed its
// state past the producer's 1 MiB limit: the table write failed, the
// processor stopped, was rebuilt, read the same record and failed again,
// and every customer of that partition waited for ever. Now such ids are
// malformed: POSTs get 400 and produced records go to the dead-letter
// topic, the partition keeps folding, and the processor never restarts.
func TestHostileWriterCannotStallPartition(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	const victim = "stall-victim"
	partition := processor.PartitionFor(victim, p.topics.Partitions)
	longID := func(i int) string { return fmt.Sprintf("%04d-", i) + strings.Repeat("i", stallIDBytes) }

	// Over HTTP, open by default: refused before anything is produced.
	for i := range 3 {
		body := fmt.Sprintf(`{"id":%q,"type":"customer.renamed","data":{"name":"x"}}`, longID(i))
		status, code := stallPost(t, p.client.Base+"/customers/"+victim+"/events?wait=1s", body)
		if status != http.StatusBadRequest || code != processor.ReasonMalformed {
			t.Errorf("POST with a %d-byte id: %d %q, want 400 %q", stallIDBytes, status, code, processor.ReasonMalformed)
		}
	}

	// Straight to the topic: dead-lettered. A long source is refused too,
	// though it is not kept in the state.
	var attack []*kgo.Record
	for i := range 20 {
		attack = append(attack, &kgo.Record{Key: []byte(victim), Value: []byte(fmt.Sprintf(
			`{"specversion":"1.0","id":%q,"source":"/attack","type":"customer.renamed","data":{"name":"x"}}`, longID(100+i)))})
	}
	for i := range 2 {
		attack = append(attack, &kgo.Record{Key: []byte(victim), Value: []byte(fmt.Sprintf(
			`{"specversion":"1.0","id":"src-%d","source":"/%s","type":"customer.renamed","data":{"name":"x"}}`, i, strings.Repeat("s", stallIDBytes)))})
	}
	p.produceMixed(t, attack)

	// A customer of the same partition, registered after the attack, is
	// served at once.
	newcomer := ""
	for i := 0; newcomer == ""; i++ {
		if k := fmt.Sprintf("stall-newcomer-%d", i); processor.PartitionFor(k, p.topics.Partitions) == partition {
			newcomer = k
		}
	}
	start := time.Now()
	status, _ := stallPost(t, p.client.Base+"/customers/"+newcomer+"/events?wait=10s",
		`{"type":"customer.registered","data":{"name":"New Comer","email":"new@example.com"}}`)
	if status != http.StatusCreated {
		answered := time.Since(start).Round(time.Millisecond)
		served := stallAwaitServed(t, p, newcomer, 45*time.Second)
		t.Fatalf("registering %s on the attacked partition %d: %d after %s, want 201; %s; %v processor restarts in %s",
			newcomer, partition, status, answered, served,
			sumCounter(t, p.reg, "eventfold_processor_restarts_total"), time.Since(start).Round(time.Second))
	}
	t.Logf("%s registered on the attacked partition in %s", newcomer, time.Since(start).Round(time.Millisecond))

	dlq := p.readDeadLetters(t, len(attack), 30*time.Second)
	if len(dlq) != len(attack) {
		t.Errorf("%d dead letters for %d attack records", len(dlq), len(attack))
	}
	for _, r := range dlq {
		h := headers(r)
		if h[processor.HeaderReason] != processor.ReasonMalformed || !strings.Contains(h[processor.HeaderError], "exceeds") {
			t.Errorf("dead letter reason %q, error %q; want malformed, the id or source exceeds its bound",
				h[processor.HeaderReason], h[processor.HeaderError])
		}
		if n := len(h[processor.HeaderError]); n > 1024 {
			t.Errorf("error header of %d bytes, want a bounded message", n)
		}
	}
	for name, want := range map[string]float64{"eventfold_events_rejected_total": float64(len(attack)), "eventfold_dlq_records_total": float64(len(attack))} {
		if got := counterValue(t, p.reg, name, "reason", processor.ReasonMalformed); got != want {
			t.Errorf("%s{reason=malformed} = %v, want %v", name, got, want)
		}
	}
	if got := sumCounter(t, p.reg, "eventfold_processor_restarts_total"); got != 0 {
		t.Errorf("eventfold_processor_restarts_total = %v, want 0", got)
	}
	if status, _ := p.client.Customer(t, victim, ""); status != http.StatusNotFound {
		t.Errorf("GET the attacked customer: %d, want 404", status)
	}
	if status, _ := p.client.Get(t, p.client.Base+"/readyz"); status != http.StatusOK {
		t.Errorf("/readyz %d after the attack, want 200", status)
	}
}

// stallPost posts body and returns the status and the error code, if any.
func stallPost(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: reading body: %v", url, err)
	}
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(raw, &e) // success bodies have no error code
	return resp.StatusCode, e.Error
}

// stallAwaitServed says how long id took to be served, up to timeout:
// the measure of a stalled partition when the test fails.
func stallAwaitServed(t *testing.T, p *pipeline, id string, timeout time.Duration) string {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if status, _ := p.client.Customer(t, id, ""); status == http.StatusOK {
			return fmt.Sprintf("served %s later", time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Sprintf("still not served %s later", timeout)
}

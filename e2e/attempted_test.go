package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
)

// attemptedBody is the body of GET /customers/{id}/decisions/{event_id}/event.
type attemptedBody struct {
	ID        string             `json:"id"`
	Decision  processor.Decision `json:"decision"`
	Partition int32              `json:"partition"`
	Offset    int64              `json:"offset"`
	Event     struct {
		ID           string                     `json:"id"`
		Type         string                     `json:"type"`
		PersonalData string                     `json:"personaldata"`
		Data         map[string]json.RawMessage `json:"data"`
	} `json:"event"`
}

// TestAttemptedEventOfADecision: what a rejected event attempted, its type
// and its data, is read back from the log by the decision's offset, for an
// id never registered too; its sealed fields are opened as history opens
// them, and once the customer is erased they are left out, plaintext a
// third-party producer wrote included.
func TestAttemptedEventOfADecision(t *testing.T) {
	broker := testkit.StartKfake(t, embedded.Config{Partitions: 3})
	topics := kafka.Topics{Events: "customer-events", Group: "customers", Partitions: 3, Replication: 1}
	keks, _ := testKEKs(t, "test-1")
	p := startPipelineKEKs(t, broker, topics, t.TempDir(), keks)
	c := p.client
	get := func(t *testing.T, id, eventID string, status int) attemptedBody {
		t.Helper()
		got, body := c.Get(t, c.Base+"/customers/"+id+"/decisions/"+eventID+"/event")
		if got != status {
			t.Fatalf("GET the event of %s's decision on %s = %d %s, want %d", id, eventID, got, body, status)
		}
		var out attemptedBody
		if status == http.StatusOK {
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
		}
		return out
	}
	name := func(a attemptedBody) string {
		var s string
		_ = json.Unmarshal(a.Event.Data["name"], &s) // absent: ""
		return s
	}

	const ghost, id = "ghost-attempt", "cust-attempt"
	if status, body := p.post(t, ghost, `{"id":"g-1","type":"customer.renamed","data":{"name":"Ghost Secret"}}`); status != http.StatusUnprocessableEntity {
		t.Fatalf("rename before registration: %d %s, want 422", status, body)
	}
	p.mustPost(t, id, `{"type":"customer.registered","data":{"name":"First Secret","email":"first@example.com"}}`)
	if status, body := p.post(t, id, `{"id":"dup-1","type":"customer.registered","data":{"name":"Second Secret","email":"second@example.com"}}`); status != http.StatusUnprocessableEntity {
		t.Fatalf("second registration: %d %s, want 422", status, body)
	}
	// A third-party producer writes personal data in plaintext.
	produceRecords(t, broker, topics.Events, 20*time.Second, []*kgo.Record{{Key: []byte(id),
		Value: []byte(`{"specversion":"1.0","id":"tp-1","source":"/third-party","type":"customer.registered","data":{"name":"Plain Secret","email":"plain@example.com"}}`)}})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, body := c.Get(t, c.Base+"/customers/"+id+"/decisions"); strings.Contains(string(body), `"tp-1"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the third party's event was not decided within 30 s")
		}
	}

	t.Run("before the erasure", func(t *testing.T) {
		tests := []struct {
			name, id, eventID, reason, typ, wantName string
		}{
			{"an id never registered", ghost, "g-1", processor.ReasonNotRegistered, processor.TypeRenamed, "Ghost Secret"},
			{"sealed, opened", id, "dup-1", processor.ReasonAlreadyRegistered, processor.TypeRegistered, "Second Secret"},
			{"plaintext", id, "tp-1", processor.ReasonAlreadyRegistered, processor.TypeRegistered, "Plain Secret"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a := get(t, tt.id, tt.eventID, http.StatusOK)
				if a.ID != tt.id || a.Decision.EventID != tt.eventID || a.Decision.Outcome != processor.Rejected || a.Decision.Reason != tt.reason ||
					a.Offset != a.Decision.Offset || a.Partition != processor.PartitionFor(tt.id, topics.Partitions) {
					t.Errorf("got %+v, want the %s rejection of %s at its offset", a, tt.reason, tt.eventID)
				}
				if a.Event.ID != tt.eventID || a.Event.Type != tt.typ || name(a) != tt.wantName {
					t.Errorf("attempted %s %s with name %q, want %s %s with %q", a.Event.ID, a.Event.Type, name(a), tt.eventID, tt.typ, tt.wantName)
				}
			})
		}
	})

	p.mustPost(t, id, `{"type":"customer.erased"}`)
	t.Run("after the erasure", func(t *testing.T) {
		for _, eventID := range []string{"dup-1", "tp-1"} {
			t.Run(eventID, func(t *testing.T) {
				_, body := c.Get(t, c.Base+"/customers/"+id+"/decisions/"+eventID+"/event")
				if strings.Contains(string(body), "Secret") || strings.Contains(string(body), "@example.com") {
					t.Errorf("the attempted event of an erased customer shows personal data: %s", body)
				}
				a := get(t, id, eventID, http.StatusOK)
				if a.Event.PersonalData != string(processor.StatusErased) || a.Event.Data != nil || a.Event.Type != processor.TypeRegistered {
					t.Errorf("attempted event %+v, want a %s marked personaldata erased, without data", a.Event, processor.TypeRegistered)
				}
			})
		}
	})

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name, path string
			status     int
			code       string
		}{
			{"a decision not among the recent ones", "/customers/" + id + "/decisions/nope/event", http.StatusNotFound, "decision_not_found"},
			{"an id with no decision", "/customers/nobody-at-all/decisions/g-1/event", http.StatusNotFound, "not_found"},
			{"another id's decision", "/customers/" + id + "/decisions/g-1/event", http.StatusNotFound, "decision_not_found"},
			{"a bad id", "/customers/bad%20id/decisions/g-1/event", http.StatusBadRequest, "invalid_id"},
			{"an event id over 256 bytes", "/customers/" + id + "/decisions/" + strings.Repeat("e", 257) + "/event", http.StatusBadRequest, "invalid_parameter"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, body := c.Get(t, c.Base+tt.path)
				var e struct{ Error, Message string }
				if err := json.Unmarshal(body, &e); status != tt.status || err != nil || e.Error != tt.code || e.Message == "" {
					t.Errorf("GET %s = %d %s, want %d JSON error %s", tt.path, status, body, tt.status, tt.code)
				}
			})
		}
	})
}

package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/eventfold/eventfold/processor"
)

// TestDecisionsOfAnIDNeverRegistered: an id whose every event was
// rejected has no customer (GET /customers/{id} is a 404), but its
// decisions can be read, each with what the event attempted (its type)
// and where it is (its offset), never its data.
func TestDecisionsOfAnIDNeverRegistered(t *testing.T) {
	p := startPipeline(t)
	c := p.client
	const id = "never-registered"
	if status, _, body := post(t, c, id, "", `{"id":"r-1","type":"customer.renamed","data":{"name":"Secret Name"}}`); status != http.StatusUnprocessableEntity {
		t.Fatalf("rename before registration: %d %s, want 422", status, body)
	}
	if status, _, body := post(t, c, id, "", `{"id":"r-2","type":"customer.email_changed","data":{"email":"secret@example.com"}}`); status != http.StatusUnprocessableEntity {
		t.Fatalf("email change before registration: %d %s, want 422", status, body)
	}
	if status, _ := c.Get(t, c.Base+"/customers/"+id); status != http.StatusNotFound {
		t.Errorf("GET /customers/%s = %d, want 404: the customer does not exist", id, status)
	}
	tests := []struct {
		name, id string
		status   int
		check    func(t *testing.T, body []byte)
	}{
		{"rejected only", id, http.StatusOK, func(t *testing.T, body []byte) {
			var got struct {
				ID        string               `json:"id"`
				Version   int64                `json:"version"`
				Decisions []processor.Decision `json:"recent_decisions"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			if got.ID != id || got.Version != 0 || len(got.Decisions) != 2 {
				t.Fatalf("body %s, want version 0 and two decisions", body)
			}
			for i, want := range []string{processor.TypeRenamed, processor.TypeEmailChanged} {
				d := got.Decisions[i]
				if d.Outcome != processor.Rejected || d.Reason != processor.ReasonNotRegistered || d.Type != want || d.Offset < 0 {
					t.Errorf("decision %d = %+v, want a not_registered rejection of a %s at a known offset", i, d, want)
				}
			}
			if got.Decisions[0].Offset >= got.Decisions[1].Offset {
				t.Errorf("offsets %d, %d: the second event is after the first in the partition", got.Decisions[0].Offset, got.Decisions[1].Offset)
			}
			if s := string(body); strings.Contains(s, "Secret Name") || strings.Contains(s, "secret@example.com") {
				t.Errorf("decisions carry the attempted data: %s", body)
			}
		}},
		{"no decision at all", "nobody-at-all", http.StatusNotFound, nil},
		{"bad id", "bad%20id", http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := c.Get(t, c.Base+"/customers/"+tt.id+"/decisions")
			if status != tt.status {
				t.Fatalf("GET decisions of %s = %d %s, want %d", tt.id, status, body, tt.status)
			}
			if tt.check != nil {
				tt.check(t, body)
			}
		})
	}
}

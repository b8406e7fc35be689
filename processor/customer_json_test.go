package processor

import (
	"testing"
	"time"
)

func TestPublicJSONDropsHistoryWithoutDecoding(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 500, time.UTC)
	full := Customer{ID: "cust:0001.a_b-c", Version: 12, Status: StatusSuspended, Name: "Zoë \"Z\" <Müller>",
		Email: "z@example.com", Address: &Address{Line1: "1 Main St", City: "São Paulo", PostalCode: "01000", Country: "BR"},
		SuspendedReason: "payment overdue", CreatedAt: at, UpdatedAt: at.Add(time.Hour), LastEventID: "evt-12", NextOffset: 1234,
		Decisions: []Decision{{EventID: "evt-11", Outcome: Rejected, Reason: ReasonVersionConflict, Message: `expected "3"`, Version: 11},
			{EventID: "evt-12", Outcome: Accepted, Version: 12}},
		History: History{}.Append(11, 1000).Append(12, 1233)}
	tests := []struct {
		name string
		c    Customer
	}{
		{"full state with history", full},
		{"no history", func() Customer { c := full; c.History = History{}; return c }()},
		{"only decisions (version 0)", Customer{ID: "x", Decisions: []Decision{{EventID: "e", Outcome: Rejected, Reason: ReasonNotRegistered, Version: 0}}, NextOffset: 3}},
		{"version 10", func() Customer { c := full; c.Version = 10; return c }()},
		{"empty", Customer{ID: "e"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkPublicJSON(t, tt.c) })
	}
}

func TestPublicJSONRejectsWhatIsNotAState(t *testing.T) {
	for _, in := range []string{``, `{`, `[]`, `{"id":"a","version":x}`, `{"id":"a","version":01,"x":1}`} {
		if body, _, err := PublicJSON([]byte(in)); err == nil {
			t.Errorf("PublicJSON(%q) = %s, want an error", in, body)
		}
	}
}

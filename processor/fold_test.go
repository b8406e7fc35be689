package processor

import (
	"bytes"
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const testKey = "cust-1"

var baseTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// timeAt is the event time the helpers give the event at offset n.
func timeAt(n int64) time.Time { return baseTime.Add(time.Duration(n) * time.Minute) }

// at builds the event read at offset n of the test customer's partition:
// id "e<n>", time baseTime plus n minutes.
func at(n int64, typ string, payload any) Event {
	return Event{ID: fmt.Sprintf("e%d", n), Source: "/test", Type: typ, Subject: testKey,
		Time: timeAt(n), Payload: payload, Key: testKey, Offset: n}
}

func expecting(ev Event, version int64) Event {
	ev.ExpectedVersion = &version
	return ev
}

func withoutTime(ev Event) Event {
	ev.Time = time.Time{}
	return ev
}

func withID(ev Event, id string) Event {
	ev.ID = id
	return ev
}

func validAddress() *Address {
	return &Address{Line1: "1 Main Street", Line2: "Flat 2", City: "London", PostalCode: "N1 9GU", Country: " gb "}
}

func registeredData() *RegisteredData {
	return &RegisteredData{Name: "  Ada Lovelace ", Email: " ada@example.com ", Address: validAddress()}
}

// foldAll folds evs into an empty customer and returns the state and the
// decision on every event.
func foldAll(t *testing.T, evs ...Event) (Customer, []Decision) {
	t.Helper()
	var c Customer
	ds := make([]Decision, 0, len(evs))
	for _, ev := range evs {
		var d Decision
		c, d = Apply(c, ev)
		ds = append(ds, d)
	}
	return c, ds
}

// mustAccept folds evs into an empty customer and fails unless every
// event is accepted: it builds the history a table case starts from.
func mustAccept(t *testing.T, evs ...Event) Customer {
	t.Helper()
	c, ds := foldAll(t, evs...)
	for i, d := range ds {
		if d.Outcome != Accepted {
			t.Fatalf("history event %d (%s) was not accepted: %+v", i, evs[i].Type, d)
		}
	}
	return c
}

func mustEncode(t *testing.T, c Customer) []byte {
	t.Helper()
	b, err := CustomerCodec{}.Encode(&c)
	if err != nil {
		t.Fatalf("failed to encode customer: %v", err)
	}
	return b
}

// cloneCustomer deep-copies c, so that a later comparison can tell whether
// anything reachable from c was modified.
func cloneCustomer(c Customer) Customer {
	out := c
	if c.Address != nil {
		a := *c.Address
		out.Address = &a
	}
	if c.Decisions != nil {
		out.Decisions = slices.Clone(c.Decisions)
	}
	return out
}

func TestApplyAccepts(t *testing.T) {
	registeredAddress := &Address{Line1: "1 Main Street", Line2: "Flat 2", City: "London", PostalCode: "N1 9GU", Country: "GB"}
	registered := Customer{ID: testKey, Version: 1, Status: StatusActive, Name: "Ada Lovelace", Email: "ada@example.com",
		Address: registeredAddress, CreatedAt: timeAt(0), UpdatedAt: timeAt(0), LastEventID: "e0", NextOffset: 1}
	suspended := registered
	suspended.Version, suspended.Status, suspended.SuspendedReason = 2, StatusSuspended, "fraud check"
	suspended.UpdatedAt, suspended.LastEventID, suspended.NextOffset = timeAt(1), "e1", 2

	tests := []struct {
		name    string
		history []Event
		ev      Event
		want    Customer // Decisions are checked separately
	}{
		{
			name: "registered trims name and email and normalises the country",
			ev:   at(0, TypeRegistered, registeredData()),
			want: registered,
		},
		{
			name: "registered without address",
			ev:   at(0, TypeRegistered, &RegisteredData{Name: "Ada", Email: "ada@example.com"}),
			want: Customer{ID: testKey, Version: 1, Status: StatusActive, Name: "Ada", Email: "ada@example.com",
				CreatedAt: timeAt(0), UpdatedAt: timeAt(0), LastEventID: "e0", NextOffset: 1},
		},
		{
			name: "registered with the expected version 0",
			ev:   expecting(at(0, TypeRegistered, registeredData()), 0),
			want: registered,
		},
		{
			name: "registered without time leaves the timestamps zero",
			ev:   withoutTime(at(0, TypeRegistered, registeredData())),
			want: func() Customer { c := registered; c.CreatedAt, c.UpdatedAt = time.Time{}, time.Time{}; return c }(),
		},
		{
			name:    "renamed",
			history: []Event{at(0, TypeRegistered, registeredData())},
			ev:      at(1, TypeRenamed, &RenamedData{Name: " Ada King "}),
			want: func() Customer {
				c := registered
				c.Version, c.Name, c.UpdatedAt, c.LastEventID, c.NextOffset = 2, "Ada King", timeAt(1), "e1", 2
				return c
			}(),
		},
		{
			name:    "renamed with the current expected version",
			history: []Event{at(0, TypeRegistered, registeredData())},
			ev:      expecting(at(1, TypeRenamed, &RenamedData{Name: "Ada King"}), 1),
			want: func() Customer {
				c := registered
				c.Version, c.Name, c.UpdatedAt, c.LastEventID, c.NextOffset = 2, "Ada King", timeAt(1), "e1", 2
				return c
			}(),
		},
		{
			name:    "renamed without time keeps updated_at",
			history: []Event{at(0, TypeRegistered, registeredData())},
			ev:      withoutTime(at(1, TypeRenamed, &RenamedData{Name: "Ada King"})),
			want: func() Customer {
				c := registered
				c.Version, c.Name, c.LastEventID, c.NextOffset = 2, "Ada King", "e1", 2
				return c
			}(),
		},
		{
			name:    "email changed",
			history: []Event{at(0, TypeRegistered, registeredData())},
			ev:      at(1, TypeEmailChanged, &EmailChangedData{Email: " ada@lovelace.org\t"}),
			want: func() Customer {
				c := registered
				c.Version, c.Email, c.UpdatedAt, c.LastEventID, c.NextOffset = 2, "ada@lovelace.org", timeAt(1), "e1", 2
				return c
			}(),
		},
		{
			name:    "address changed normalises the country",
			history: []Event{at(0, TypeRegistered, &RegisteredData{Name: "Ada", Email: "ada@example.com"})},
			ev:      at(1, TypeAddressChanged, &AddressChangedData{Address: &Address{Line1: "Unter den Linden 1", City: "Berlin", PostalCode: "10117", Country: " de"}}),
			want: Customer{ID: testKey, Version: 2, Status: StatusActive, Name: "Ada", Email: "ada@example.com",
				Address:   &Address{Line1: "Unter den Linden 1", City: "Berlin", PostalCode: "10117", Country: "DE"},
				CreatedAt: timeAt(0), UpdatedAt: timeAt(1), LastEventID: "e1", NextOffset: 2},
		},
		{
			name:    "suspended records the reason",
			history: []Event{at(0, TypeRegistered, registeredData())},
			ev:      at(1, TypeSuspended, &SuspendedData{Reason: "fraud check"}),
			want:    suspended,
		},
		{
			name: "reactivated clears the suspension",
			history: []Event{
				at(0, TypeRegistered, registeredData()),
				at(1, TypeSuspended, &SuspendedData{Reason: "fraud check"}),
			},
			ev: at(2, TypeReactivated, &ReactivatedData{}),
			want: func() Customer {
				c := registered
				c.Version, c.UpdatedAt, c.LastEventID, c.NextOffset = 3, timeAt(2), "e2", 3
				return c
			}(),
		},
		{
			name: "erased clears personal fields but keeps id, version and created_at",
			history: []Event{
				at(0, TypeRegistered, registeredData()),
				at(1, TypeSuspended, &SuspendedData{Reason: "fraud check"}),
			},
			ev: at(2, TypeErased, &ErasedData{}),
			want: Customer{ID: testKey, Version: 3, Status: StatusErased,
				CreatedAt: timeAt(0), UpdatedAt: timeAt(2), LastEventID: "e2", NextOffset: 3},
		},
		{
			name:    "unknown offset leaves next_offset alone",
			history: []Event{at(0, TypeRegistered, registeredData())},
			ev:      func() Event { ev := at(1, TypeRenamed, &RenamedData{Name: "Ada King"}); ev.Offset = -1; return ev }(),
			want: func() Customer {
				c := registered
				c.Version, c.Name, c.UpdatedAt, c.LastEventID = 2, "Ada King", timeAt(1), "e1"
				return c
			}(),
		},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			state := mustAccept(t, test.history...)
			got, d := Apply(state, test.ev)

			wantDecision := Decision{EventID: test.ev.ID, Outcome: Accepted, Version: test.want.Version,
				Type: test.ev.Type, Offset: max(test.ev.Offset, -1)}
			if d != wantDecision {
				t.Errorf("decision = %+v, want %+v", d, wantDecision)
			}
			if want := append(slices.Clone(state.Decisions), wantDecision); !reflect.DeepEqual(got.Decisions, want) {
				t.Errorf("decisions = %+v, want %+v", got.Decisions, want)
			}
			got.Decisions = nil
			// An accepted event's offset, when known, joins the history;
			// an unknown one empties it, since it could not be read back.
			wantHistory := 0
			if test.ev.Offset >= 0 {
				wantHistory = state.History.Len() + 1
			}
			if got.History.Len() != wantHistory {
				t.Errorf("history holds %d offsets, want %d", got.History.Len(), wantHistory)
			}
			test.want.History = got.History
			if !reflect.DeepEqual(got, test.want) {
				t.Errorf("state =\n%+v\nwant\n%+v", got, test.want)
			}
		})
	}
}

func TestApplyRejects(t *testing.T) {
	reg := at(0, TypeRegistered, registeredData())
	erase := at(1, TypeErased, &ErasedData{})
	long := func(n int) string { return strings.Repeat("é", n) }

	tests := []struct {
		name    string
		history []Event
		ev      Event
		reason  string
	}{
		{"registered with empty name", nil, at(0, TypeRegistered, &RegisteredData{Name: " \t", Email: "ada@example.com"}), ReasonInvalid},
		{"registered with too long name", nil, at(0, TypeRegistered, &RegisteredData{Name: long(201), Email: "ada@example.com"}), ReasonInvalid},
		{"registered with empty email", nil, at(0, TypeRegistered, &RegisteredData{Name: "Ada"}), ReasonInvalid},
		{"registered with bad email", nil, at(0, TypeRegistered, &RegisteredData{Name: "Ada", Email: "not-an-email"}), ReasonInvalid},
		{"registered with display-name email", nil, at(0, TypeRegistered, &RegisteredData{Name: "Ada", Email: "Ada <ada@example.com>"}), ReasonInvalid},
		{"registered with too long email", nil, at(0, TypeRegistered, &RegisteredData{Name: "Ada", Email: strings.Repeat("a", 250) + "@x.io"}), ReasonInvalid},
		{"registered with unknown country", nil, at(0, TypeRegistered, &RegisteredData{Name: "Ada", Email: "ada@example.com",
			Address: &Address{Line1: "1 Main Street", City: "London", PostalCode: "N1", Country: "UK"}}), ReasonInvalid},
		{"registered with empty line1", nil, at(0, TypeRegistered, &RegisteredData{Name: "Ada", Email: "ada@example.com",
			Address: &Address{Line1: " ", City: "London", PostalCode: "N1", Country: "GB"}}), ReasonInvalid},
		{"registered without payload", nil, at(0, TypeRegistered, nil), ReasonInvalid},
		{"renamed to empty name", []Event{reg}, at(1, TypeRenamed, &RenamedData{Name: ""}), ReasonInvalid},
		{"email changed to bad email", []Event{reg}, at(1, TypeEmailChanged, &EmailChangedData{Email: "ada@"}), ReasonInvalid},
		{"address changed to three-letter country", []Event{reg}, at(1, TypeAddressChanged, &AddressChangedData{
			Address: &Address{Line1: "1 Main Street", City: "London", PostalCode: "N1", Country: "GBR"}}), ReasonInvalid},
		{"address changed to empty country", []Event{reg}, at(1, TypeAddressChanged, &AddressChangedData{
			Address: &Address{Line1: "1 Main Street", City: "London", PostalCode: "N1"}}), ReasonInvalid},
		{"address changed without city", []Event{reg}, at(1, TypeAddressChanged, &AddressChangedData{
			Address: &Address{Line1: "1 Main Street", PostalCode: "N1", Country: "GB"}}), ReasonInvalid},
		{"address changed without address", []Event{reg}, at(1, TypeAddressChanged, &AddressChangedData{}), ReasonInvalid},
		{"suspended with too long reason", []Event{reg}, at(1, TypeSuspended, &SuspendedData{Reason: long(501)}), ReasonInvalid},
		{"invalid before not registered", nil, at(0, TypeRenamed, &RenamedData{}), ReasonInvalid},

		{"renamed before registered", nil, at(0, TypeRenamed, &RenamedData{Name: "Ada"}), ReasonNotRegistered},
		{"email changed before registered", nil, at(0, TypeEmailChanged, &EmailChangedData{Email: "ada@example.com"}), ReasonNotRegistered},
		{"address changed before registered", nil, at(0, TypeAddressChanged, &AddressChangedData{Address: validAddress()}), ReasonNotRegistered},
		{"suspended before registered", nil, at(0, TypeSuspended, &SuspendedData{}), ReasonNotRegistered},
		{"reactivated before registered", nil, at(0, TypeReactivated, &ReactivatedData{}), ReasonNotRegistered},
		{"erased before registered", nil, at(0, TypeErased, &ErasedData{}), ReasonNotRegistered},
		{"not registered before version conflict", nil, expecting(at(0, TypeRenamed, &RenamedData{Name: "Ada"}), 7), ReasonNotRegistered},

		{"registered twice", []Event{reg}, at(1, TypeRegistered, registeredData()), ReasonAlreadyRegistered},

		{"registered after erasure", []Event{reg, erase}, at(2, TypeRegistered, registeredData()), ReasonErased},
		{"renamed after erasure", []Event{reg, erase}, at(2, TypeRenamed, &RenamedData{Name: "Ada"}), ReasonErased},
		{"email changed after erasure", []Event{reg, erase}, at(2, TypeEmailChanged, &EmailChangedData{Email: "ada@example.com"}), ReasonErased},
		{"address changed after erasure", []Event{reg, erase}, at(2, TypeAddressChanged, &AddressChangedData{Address: validAddress()}), ReasonErased},
		{"suspended after erasure", []Event{reg, erase}, at(2, TypeSuspended, &SuspendedData{}), ReasonErased},
		{"reactivated after erasure", []Event{reg, erase}, at(2, TypeReactivated, &ReactivatedData{}), ReasonErased},
		{"erased after erasure", []Event{reg, erase}, at(2, TypeErased, &ErasedData{}), ReasonErased},
		{"erased before version conflict", []Event{reg, erase}, expecting(at(2, TypeRenamed, &RenamedData{Name: "Ada"}), 0), ReasonErased},
		{"invalid before erased", []Event{reg, erase}, at(2, TypeRenamed, &RenamedData{Name: " "}), ReasonInvalid},

		{"renamed expecting an older version", []Event{reg, at(1, TypeRenamed, &RenamedData{Name: "Ada King"})},
			expecting(at(2, TypeRenamed, &RenamedData{Name: "Ada"}), 1), ReasonVersionConflict},
		{"renamed expecting a newer version", []Event{reg}, expecting(at(1, TypeRenamed, &RenamedData{Name: "Ada"}), 2), ReasonVersionConflict},
		{"erased expecting version 0", []Event{reg}, expecting(at(1, TypeErased, &ErasedData{}), 0), ReasonVersionConflict},
		{"registered expecting version 1", nil, expecting(at(0, TypeRegistered, registeredData()), 1), ReasonVersionConflict},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			state := mustAccept(t, test.history...)
			got, d := Apply(state, test.ev)

			if d.Outcome != Rejected || d.Reason != test.reason {
				t.Fatalf("decision = %+v, want rejected with reason %q", d, test.reason)
			}
			if d.EventID != test.ev.ID || d.Version != state.Version || d.Message == "" {
				t.Errorf("decision = %+v, want event id %q, version %d and a message", d, test.ev.ID, state.Version)
			}
			// A rejection changes nothing but the bookkeeping: the id of
			// the entity, the offset decided and the remembered decision.
			want := cloneCustomer(state)
			want.ID = testKey
			want.NextOffset = test.ev.Offset + 1
			want.Decisions = append(want.Decisions, d)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("state =\n%+v\nwant\n%+v", got, want)
			}
			if rec, ok := got.Decision(test.ev.ID); !ok || rec != d {
				t.Errorf("Decision(%q) = %+v, %v; want %+v", test.ev.ID, rec, ok, d)
			}
		})
	}
}

func TestApplyRejectionOfUnregisteredKeepsVersionZero(t *testing.T) {
	c, d := Apply(Customer{}, at(5, TypeRenamed, &RenamedData{Name: "Ada"}))
	if d.Outcome != Rejected || d.Version != 0 {
		t.Fatalf("decision = %+v, want rejected at version 0", d)
	}
	if c.Registered() || c.ID != testKey || c.NextOffset != 6 || len(c.Decisions) != 1 {
		t.Errorf("state = %+v, want unregistered %q with next offset 6 and one decision", c, testKey)
	}
	// A later registration is still possible and starts at version 1.
	c, d = Apply(c, at(6, TypeRegistered, registeredData()))
	if d.Outcome != Accepted || c.Version != 1 || !c.CreatedAt.Equal(timeAt(6)) || len(c.Decisions) != 2 {
		t.Errorf("after registration: decision %+v, state %+v", d, c)
	}
}

func TestApplyDuplicates(t *testing.T) {
	reg := at(0, TypeRegistered, registeredData())
	badRename := at(1, TypeRenamed, &RenamedData{Name: ""})
	rename := at(2, TypeRenamed, &RenamedData{Name: "Ada King"})
	history := []Event{reg, badRename, rename}

	tests := []struct {
		name   string
		ev     Event
		reason string // the reason of the earlier decision, if any
	}{
		{"accepted event id at a later offset", withID(at(10, TypeRenamed, &RenamedData{Name: "Other"}), "e0"), ""},
		{"rejected event id at a later offset", withID(at(10, TypeRenamed, &RenamedData{Name: "Other"}), "e1"), ReasonInvalid},
		{"same event at an unknown offset", func() Event { ev := rename; ev.Offset = -1; return ev }(), ""},
		{"redelivered offset with a new id", withID(at(1, TypeRenamed, &RenamedData{Name: "Other"}), "fresh"), ""},
		{"redelivered last offset", withID(at(2, TypeSuspended, &SuspendedData{}), "fresh"), ""},
		{"redelivered first offset", withID(at(0, TypeErased, &ErasedData{}), "fresh"), ""},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			state, _ := foldAll(t, history...)
			before := cloneCustomer(state)
			got, d := Apply(state, test.ev)

			if d.Outcome != Duplicate || d.EventID != test.ev.ID || d.Version != state.Version || d.Reason != test.reason {
				t.Errorf("decision = %+v, want duplicate of %q at version %d with reason %q", d, test.ev.ID, state.Version, test.reason)
			}
			if !reflect.DeepEqual(got, before) {
				t.Errorf("state changed on a duplicate:\n%+v\nwant\n%+v", got, before)
			}
		})
	}

	t.Run("next offset with a new id is not a duplicate", func(t *testing.T) {
		state, _ := foldAll(t, history...)
		_, d := Apply(state, at(3, TypeSuspended, &SuspendedData{}))
		if d.Outcome != Accepted {
			t.Errorf("decision = %+v, want accepted", d)
		}
	})
	t.Run("unknown offset with a new id is not a duplicate", func(t *testing.T) {
		state, _ := foldAll(t, history...)
		ev := at(3, TypeSuspended, &SuspendedData{})
		ev.Offset = -1
		got, d := Apply(state, ev)
		if d.Outcome != Accepted || got.NextOffset != state.NextOffset {
			t.Errorf("decision = %+v, next offset %d; want accepted and next offset %d", d, got.NextOffset, state.NextOffset)
		}
	})
}

func TestApplyRingKeepsRecentDecisions(t *testing.T) {
	const renames = 40
	evs := []Event{at(0, TypeRegistered, registeredData())}
	for i := int64(1); i <= renames; i++ {
		evs = append(evs, at(i, TypeRenamed, &RenamedData{Name: fmt.Sprintf("Ada %d", i)}))
	}
	state := mustAccept(t, evs...)

	if len(state.Decisions) != RecentDecisions {
		t.Fatalf("%d decisions remembered, want %d", len(state.Decisions), RecentDecisions)
	}
	first := int64(renames + 1 - RecentDecisions)
	for i, d := range state.Decisions {
		if want := fmt.Sprintf("e%d", first+int64(i)); d.EventID != want || d.Version != first+int64(i)+1 {
			t.Errorf("decision %d = %+v, want event %s at version %d", i, d, want, first+int64(i)+1)
		}
	}

	tests := []struct {
		name    string
		id      string
		outcome Outcome
	}{
		{"oldest remembered id is a duplicate", fmt.Sprintf("e%d", first), Duplicate},
		{"newest id is a duplicate", fmt.Sprintf("e%d", renames), Duplicate},
		{"dropped id is decided again", fmt.Sprintf("e%d", first-1), Accepted},
		{"first id is decided again", "e0", Accepted},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			got, d := Apply(state, withID(at(renames+1, TypeRenamed, &RenamedData{Name: "Again"}), test.id))
			if d.Outcome != test.outcome {
				t.Fatalf("decision = %+v, want %s", d, test.outcome)
			}
			if test.outcome == Accepted {
				if len(got.Decisions) != RecentDecisions || got.Decisions[0].EventID != fmt.Sprintf("e%d", first+1) ||
					got.Decisions[RecentDecisions-1] != d {
					t.Errorf("ring after one more decision = %+v", got.Decisions)
				}
			}
		})
	}
}

func TestApplyDoesNotMutateInput(t *testing.T) {
	sentinel := Decision{EventID: "sentinel", Outcome: Accepted}
	// withSpare returns c with its decisions in a backing array with
	// spare capacity holding sentinels: an append in place would
	// overwrite them.
	withSpare := func(c Customer) Customer {
		ring := make([]Decision, len(c.Decisions), len(c.Decisions)+4)
		copy(ring, c.Decisions)
		for i := len(ring); i < cap(ring); i++ {
			ring[:cap(ring)][i] = sentinel
		}
		c.Decisions = ring
		return c
	}
	evs := []Event{at(0, TypeRegistered, registeredData())}
	for i := int64(1); i < RecentDecisions+3; i++ {
		evs = append(evs, at(i, TypeSuspended, &SuspendedData{Reason: fmt.Sprint(i)}))
	}
	short := mustAccept(t, evs[:3]...)
	full := mustAccept(t, evs...)
	next := int64(len(evs))

	tests := []struct {
		name  string
		state Customer
		ev    Event
	}{
		{"accepted", short, at(next, TypeRenamed, &RenamedData{Name: "Ada King"})},
		{"accepted address change", short, at(next, TypeAddressChanged, &AddressChangedData{Address: &Address{Line1: "x", City: "y", PostalCode: "z", Country: "fr"}})},
		{"accepted erasure", short, at(next, TypeErased, &ErasedData{})},
		{"rejected", short, at(next, TypeRenamed, &RenamedData{})},
		{"duplicate", short, withID(at(next, TypeRenamed, &RenamedData{Name: "x"}), "e1")},
		{"accepted into a full ring", full, at(next, TypeRenamed, &RenamedData{Name: "Ada King"})},
		{"rejected into a full ring", full, at(next, TypeRegistered, registeredData())},
		{"unregistered", Customer{}, at(next, TypeRenamed, &RenamedData{Name: "x"})},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			state := withSpare(test.state)
			before := cloneCustomer(state)
			addr := state.Address
			// The JSON form reaches what a shallow copy shares, such as
			// the history's encoding.
			beforeJSON := mustEncode(t, state)

			got, _ := Apply(state, test.ev)

			if !reflect.DeepEqual(state, before) {
				t.Errorf("input state changed:\n%+v\nwas\n%+v", state, before)
			}
			if after := mustEncode(t, state); !bytes.Equal(after, beforeJSON) {
				t.Errorf("input state changed:\n%s\nwas\n%s", after, beforeJSON)
			}
			if addr != nil && !reflect.DeepEqual(*addr, *before.Address) {
				t.Errorf("input address changed to %+v", *addr)
			}
			for i := len(state.Decisions); i < cap(state.Decisions); i++ {
				if d := state.Decisions[:cap(state.Decisions)][i]; d != sentinel {
					t.Errorf("spare capacity of the input decisions overwritten at %d with %+v", i, d)
				}
			}
			// A second Apply on the same input must not change the first result.
			snapshot := mustEncode(t, got)
			Apply(state, withID(test.ev, "other"))
			if after := mustEncode(t, got); !bytes.Equal(after, snapshot) {
				t.Errorf("first result changed by a second Apply:\n%s\nwas\n%s", after, snapshot)
			}
		})
	}
}

func TestApplyIsDeterministic(t *testing.T) {
	evs := randomEvents(rand.New(rand.NewSource(7)), 300)
	first, firstDecisions := foldAll(t, evs...)
	second, secondDecisions := foldAll(t, evs...)
	if !reflect.DeepEqual(first, second) {
		t.Errorf("two folds of the same events differ:\n%+v\n%+v", first, second)
	}
	if !reflect.DeepEqual(firstDecisions, secondDecisions) {
		t.Errorf("two folds of the same events decided differently")
	}
}

// randomEvents returns n events at offsets 0..n-1 with random types, valid
// and invalid data, expected versions right and wrong, and reused ids.
func randomEvents(rng *rand.Rand, n int) []Event {
	names := []string{"Ada", " Grace ", "", "Édouard Lucas", strings.Repeat("x", 201)}
	emails := []string{"ada@example.com", "grace@navy.mil", "bad", "", " a@b.co "}
	countries := []string{"GB", "de", " fr ", "XX", "", "USA"}
	address := func() *Address {
		if rng.Intn(5) == 0 {
			return nil
		}
		return &Address{Line1: "1 Main Street", City: "Town", PostalCode: "12345", Country: countries[rng.Intn(len(countries))]}
	}
	pick := func(s []string) string { return s[rng.Intn(len(s))] }

	evs := make([]Event, 0, n)
	for i := 0; i < n; i++ {
		var payload any
		typ := EventTypes[rng.Intn(len(EventTypes))]
		// Registrations and erasures are rarer, so that histories are long.
		if (typ == TypeRegistered || typ == TypeErased) && rng.Intn(3) != 0 {
			typ = TypeRenamed
		}
		switch typ {
		case TypeRegistered:
			payload = &RegisteredData{Name: pick(names), Email: pick(emails), Address: address()}
			if rng.Intn(2) == 0 {
				payload = registeredData() // valid, so that most histories get going
			}
		case TypeRenamed:
			payload = &RenamedData{Name: pick(names)}
		case TypeEmailChanged:
			payload = &EmailChangedData{Email: pick(emails)}
		case TypeAddressChanged:
			payload = &AddressChangedData{Address: address()}
		case TypeSuspended:
			payload = &SuspendedData{Reason: pick([]string{"", "fraud", strings.Repeat("r", 501)})}
		case TypeReactivated:
			payload = &ReactivatedData{}
		case TypeErased:
			payload = &ErasedData{}
		}
		ev := at(int64(i), typ, payload)
		if i > 0 && rng.Intn(10) == 0 {
			ev.ID = evs[rng.Intn(i)].ID // a producer retry with a new offset
		}
		if rng.Intn(4) == 0 {
			ev.ExpectedVersion = new(int64(rng.Intn(8)))
		}
		if rng.Intn(10) == 0 {
			ev.Time = time.Time{}
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestApplyRandomSequences(t *testing.T) {
	// seen counts outcomes and reasons over all seeds: the properties are
	// only worth something if the sequences reach every kind of decision.
	seen := map[string]int{}
	for seed := int64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			evs := randomEvents(rand.New(rand.NewSource(seed)), 200)
			var state Customer
			accepted := 0
			for i, ev := range evs {
				prev := state.Version
				var d Decision
				state, d = Apply(state, ev)
				seen[string(d.Outcome)+" "+d.Reason]++
				switch d.Outcome {
				case Accepted:
					accepted++
					if d.Version != prev+1 {
						t.Fatalf("event %d accepted at version %d after version %d", i, d.Version, prev)
					}
				case Rejected, Duplicate:
					if state.Version != prev || d.Version != prev {
						t.Fatalf("event %d %s changed the version from %d to %d (decision %d)", i, d.Outcome, prev, state.Version, d.Version)
					}
				default:
					t.Fatalf("event %d: unknown outcome %q", i, d.Outcome)
				}
				if state.Version != int64(accepted) {
					t.Fatalf("after event %d: version %d, %d accepted decisions", i, state.Version, accepted)
				}
				if state.History.Len() != int(state.Version) {
					t.Fatalf("after event %d: %d offsets in the history at version %d", i, state.History.Len(), state.Version)
				}
				if len(state.Decisions) > RecentDecisions {
					t.Fatalf("after event %d: %d decisions remembered", i, len(state.Decisions))
				}
				if state.Status == StatusErased && (state.Name != "" || state.Email != "" || state.Address != nil) {
					t.Fatalf("after event %d: erased customer keeps personal data: %+v", i, state)
				}
			}
			if accepted == 0 {
				t.Fatalf("no event of the sequence was accepted; the generator is useless")
			}
			for i, ev := range evs {
				got, d := Apply(state, ev)
				if d.Outcome != Duplicate {
					t.Errorf("re-applying event %d (offset %d) decided %+v, want duplicate", i, ev.Offset, d)
				}
				if !reflect.DeepEqual(got, state) {
					t.Errorf("re-applying event %d changed the state", i)
				}
			}
		})
	}
	for _, kind := range []string{"accepted ", "duplicate ",
		"rejected " + ReasonInvalid, "rejected " + ReasonNotRegistered, "rejected " + ReasonAlreadyRegistered,
		"rejected " + ReasonErased, "rejected " + ReasonVersionConflict} {
		if seen[kind] == 0 {
			t.Errorf("no random sequence produced a %q decision: %v", kind, seen)
		}
	}
}

func TestCustomerCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		state Customer
	}{
		{"empty", Customer{}},
		{"rejected only", func() Customer { c, _ := Apply(Customer{}, at(0, TypeRenamed, &RenamedData{Name: "x"})); return c }()},
		{"registered", mustAccept(t, at(0, TypeRegistered, registeredData()))},
		{"suspended", mustAccept(t, at(0, TypeRegistered, registeredData()), at(1, TypeSuspended, &SuspendedData{Reason: "why"}))},
		{"erased", mustAccept(t, at(0, TypeRegistered, registeredData()), at(1, TypeErased, &ErasedData{}))},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			b, err := CustomerCodec{}.Encode(&test.state)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			v, err := CustomerCodec{}.Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			got, ok := v.(*Customer)
			if !ok {
				t.Fatalf("Decode returned %T, want *Customer", v)
			}
			if !reflect.DeepEqual(*got, test.state) {
				t.Errorf("round trip =\n%+v\nwant\n%+v", *got, test.state)
			}
		})
	}

	t.Run("encode rejects other types", func(t *testing.T) {
		if _, err := (CustomerCodec{}).Encode(Customer{}); err == nil {
			t.Error("Encode(Customer{}) succeeded, want an error for a non-pointer")
		}
	})
	t.Run("decode rejects bad JSON", func(t *testing.T) {
		if _, err := (CustomerCodec{}).Decode([]byte("{")); err == nil {
			t.Error("Decode of truncated JSON succeeded")
		}
	})
}

// TestApplyHistoryVersionsWithUnknownOffsets: History promises the offsets
// of versions FirstVersion..FirstVersion+Len-1, and views read version v
// at that position. An accepted event with an unknown offset (-1, which
// Apply supports) is not appended, so every later offset is attributed to
// the wrong version.
func TestApplyHistoryVersionsWithUnknownOffsets(t *testing.T) {
	unknown := at(0, TypeRegistered, registeredData())
	unknown.Offset = -1
	state := mustAccept(t, unknown, at(5, TypeRenamed, &RenamedData{Name: "Ada King"}))
	if state.Version != 2 {
		t.Fatalf("version %d, want 2", state.Version)
	}
	offsets, err := state.History.Offsets()
	if err != nil {
		t.Fatalf("Offsets: %v", err)
	}
	// Either the history says it starts after the unknown offset, or it
	// is empty (nothing to read back); it must not claim version 1 is at
	// offset 5.
	if n := len(offsets); n > 0 && state.History.FirstVersion()+int64(n)-1 != state.Version {
		t.Errorf("history claims versions %d..%d at offsets %v, but offset 5 holds version %d",
			state.History.FirstVersion(), state.History.FirstVersion()+int64(n)-1, offsets, state.Version)
	}
}

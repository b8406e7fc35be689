package processor

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// worstChar is the character whose JSON encoding is the longest for its
// size: "<" is written "\u003c", six bytes for one.
const worstChar = "<"

// TestWorstCaseStateFitsTable builds the largest state the bounds allow,
// every string at its bound in the character that encodes longest, 32
// decisions with the longest ids and messages, and MaxHistory offsets of
// the longest varint, and checks that it encodes under MaxStateBytes. The
// bounds, not luck, keep every state the fold makes writable.
func TestWorstCaseStateFitsTable(t *testing.T) {
	worst := func(n int) string { return strings.Repeat(worstChar, n) }
	// The data bounds are what validate accepts, checked here so that
	// this case follows them if they change.
	for _, f := range []struct {
		name  string
		valid func(string) string
		limit int
	}{
		{"name", validateName, maxNameLength},
		{"email", func(s string) string { return validateEmail(s, quote) }, maxEmailLength},
		{"address.line1", func(s string) string {
			return validateAddress(Address{Line1: s, City: "c", PostalCode: "p", Country: "GB"}, quote)
		}, maxFieldLength},
		{"suspension reason", func(s string) string {
			return validate(Event{Type: TypeSuspended, Payload: &SuspendedData{Reason: s}}, quote)
		}, maxReasonLength},
	} {
		if msg := f.valid(worst(f.limit + 1)); msg == "" {
			t.Errorf("%s of %d characters is valid; the worst case below assumes at most %d", f.name, f.limit+1, f.limit)
		}
	}
	c := Customer{
		ID: strings.Repeat("k", MaxKeyLength), Version: 1 << 62, Status: StatusSuspended,
		Name: worst(maxNameLength), Email: worst(maxEmailLength),
		Address: &Address{Line1: worst(maxFieldLength), Line2: worst(maxFieldLength), City: worst(maxFieldLength),
			PostalCode: worst(maxFieldLength), Country: "GB"},
		SuspendedReason: worst(maxReasonLength),
		// The record timestamp can be any int64 of milliseconds.
		CreatedAt: time.UnixMilli(1<<63 - 1).UTC(), UpdatedAt: time.UnixMilli(-1 << 63).UTC(),
		LastEventID: worst(MaxIDBytes), NextOffset: 1<<63 - 1,
	}
	// Every decision names its event's type, one of EventTypes, and its
	// offset; the longest of each.
	minOffset := int64(-1 << 63)
	longestType := slices.MaxFunc(EventTypes, func(a, b string) int { return len(a) - len(b) })
	for i := range RecentDecisions {
		c.Decisions = append(c.Decisions, Decision{EventID: worst(MaxIDBytes-3) + fmt.Sprintf("%03d", i),
			Outcome: Rejected, Reason: ReasonAlreadyRegistered, Message: worst(MaxDecisionMessageBytes), Version: -1 << 63,
			Type: longestType, Offset: minOffset})
	}
	// Offsets that swing by more than 2^62 need the longest varint, 10
	// bytes.
	for v := range int64(MaxHistory) {
		offset := int64(1 << 62)
		if v%2 == 1 {
			offset = -1
		}
		c.History = c.History.Append(v+1, offset)
	}
	if c.History.Len() != MaxHistory || len(c.History.deltas) != 10*MaxHistory {
		t.Fatalf("history of %d offsets in %d bytes, want %d in %d", c.History.Len(), len(c.History.deltas), MaxHistory, 10*MaxHistory)
	}
	encoded := mustEncode(t, c)
	if len(encoded) > MaxStateBytes {
		t.Errorf("the worst-case state encodes to %d bytes, over MaxStateBytes (%d)", len(encoded), MaxStateBytes)
	}
	if bound := stateSizeBound(&c); bound < len(encoded) || bound > MaxStateBytes {
		t.Errorf("stateSizeBound = %d for %d encoded bytes; want a bound at least that and within %d", bound, len(encoded), MaxStateBytes)
	}
	t.Logf("worst-case state: %d bytes encoded (bound %d), limit %d", len(encoded), stateSizeBound(&c), MaxStateBytes)
}

// TestApplyKeepsLargestReachableStateUnderLimit folds, with Apply, the
// events that make the largest state: every field at its bound, a full
// history and 32 rejections with the longest ids and messages.
func TestApplyKeepsLargestReachableStateUnderLimit(t *testing.T) {
	worst := func(n int) string { return strings.Repeat(worstChar, n) }
	addr := &Address{Line1: worst(maxFieldLength), Line2: worst(maxFieldLength), City: worst(maxFieldLength),
		PostalCode: worst(maxFieldLength), Country: "gb"}
	var c Customer
	offset := int64(0)
	step := func(typ string, id string, payload any) Decision {
		t.Helper()
		var d Decision
		// Offsets far apart make the history's varints long.
		offset += 1 << 49
		c, d = Apply(c, Event{ID: id, Source: "/s", Type: typ, Key: strings.Repeat("k", MaxKeyLength),
			Time: baseTime, Offset: offset, Payload: payload})
		return d
	}
	if d := step(TypeRegistered, "r", &RegisteredData{Name: worst(maxNameLength), Email: strings.Repeat("a", maxEmailLength-12) + "@example.com", Address: addr}); d.Outcome != Accepted {
		t.Fatalf("registration: %+v", d)
	}
	for i := range MaxHistory - 2 { // with the registration and the suspension, a full history
		if d := step(TypeRenamed, fmt.Sprintf("n%d", i), &RenamedData{Name: worst(maxNameLength)}); d.Outcome != Accepted {
			t.Fatalf("rename %d: %+v", i, d)
		}
	}
	if d := step(TypeSuspended, worst(MaxIDBytes), &SuspendedData{Reason: worst(maxReasonLength)}); d.Outcome != Accepted {
		t.Fatalf("suspension: %+v", d)
	}
	for i := range RecentDecisions {
		d := step(TypeEmailChanged, worst(MaxIDBytes-3)+fmt.Sprintf("%03d", i), &EmailChangedData{Email: worst(maxEmailLength)})
		if d.Reason != ReasonInvalid || !strings.Contains(d.Message, "bytes)") {
			t.Fatalf("email change %d: %+v, want invalid with the email cut", i, d)
		}
	}
	encoded := mustEncode(t, c)
	if len(c.Decisions) != RecentDecisions || c.History.Len() != MaxHistory {
		t.Errorf("%d decisions and %d offsets kept, want %d and %d: nothing should have been trimmed",
			len(c.Decisions), c.History.Len(), RecentDecisions, MaxHistory)
	}
	if len(encoded) > MaxStateBytes {
		t.Errorf("state of %d bytes, over MaxStateBytes (%d)", len(encoded), MaxStateBytes)
	}
	t.Logf("largest state folded: %d bytes", len(encoded))
}

// TestApplyTrimsStateOfOlderBuild: a state written before ids were
// bounded (32 decisions with 30,000-character ids) loses its oldest
// decisions to fit, and the event still applies.
func TestApplyTrimsStateOfOlderBuild(t *testing.T) {
	c := mustAccept(t, at(1, TypeRegistered, registeredData()))
	for i := range RecentDecisions {
		c.Decisions = append(c.Decisions, Decision{EventID: fmt.Sprintf("%05d", i) + strings.Repeat(worstChar, 30000),
			Outcome: Rejected, Reason: ReasonAlreadyRegistered, Version: 1})
	}
	if n := len(mustEncode(t, c)); n <= MaxStateBytes {
		t.Fatalf("the old state is only %d bytes; the test needs one over %d", n, MaxStateBytes)
	}
	before := cloneCustomer(c)
	next, d := Apply(c, at(2, TypeRenamed, &RenamedData{Name: "Ada King"}))
	if d.Outcome != Accepted || next.Name != "Ada King" || next.Version != 2 {
		t.Fatalf("Apply = %+v, %+v; want the rename accepted", next, d)
	}
	if n := len(mustEncode(t, next)); n > MaxStateBytes {
		t.Errorf("state of %d bytes after Apply, over %d", n, MaxStateBytes)
	}
	if len(next.Decisions) >= RecentDecisions || next.Decisions[len(next.Decisions)-1].EventID != "e2" {
		t.Errorf("%d decisions kept, the newest %q; want fewer than %d, ending with e2",
			len(next.Decisions), next.Decisions[len(next.Decisions)-1].EventID, RecentDecisions)
	}
	if want := c.Decisions[len(c.Decisions)-1].EventID; next.Decisions[len(next.Decisions)-2].EventID != want {
		t.Error("the decisions kept are not the newest ones")
	}
	if !equalCustomers(c, before) {
		t.Error("Apply modified its input")
	}
}

func equalCustomers(a, b Customer) bool {
	return string(a.AppendJSON(nil)) == string(b.AppendJSON(nil))
}

// TestDecodeBoundsAttributes: the id and the source have bounds; an
// attribute over its bound is malformed, and errors stay short whatever
// they are about.
func TestDecodeBoundsAttributes(t *testing.T) {
	long := strings.Repeat("x", 60000)
	key := strings.Repeat("k", 30000)
	tests := []struct {
		name    string
		edit    map[string]any
		wantErr string // "" for a valid event
	}{
		{"id at its bound", map[string]any{"id": strings.Repeat("i", MaxIDBytes)}, ""},
		{"id over its bound", map[string]any{"id": strings.Repeat("i", MaxIDBytes+1)}, "id of 257 bytes exceeds the 256-byte limit"},
		{"id of escaped characters over its bound", map[string]any{"id": strings.Repeat("é", MaxIDBytes/2+1)}, "id of 258 bytes exceeds"},
		{"source at its bound", map[string]any{"source": strings.Repeat("s", MaxSourceBytes)}, ""},
		{"source over its bound", map[string]any{"source": strings.Repeat("s", MaxSourceBytes+1)}, "source of 1025 bytes exceeds the 1024-byte limit"},
		{"long subject", map[string]any{"subject": long}, "differs from key"},
		{"long type", map[string]any{"type": long}, "unknown event type"},
		{"long time", map[string]any{"time": long}, "is not RFC 3339"},
		{"long datacontenttype", map[string]any{"datacontenttype": long}, "is not application/json"},
		{"long specversion", map[string]any{"specversion": long}, "is not 1.0"},
		{"long number in data", map[string]any{"data": json.RawMessage(`{"name":` + strings.Repeat("1", 60000) + `}`)}, "data of customer.registered"},
		{"long expectedversion", map[string]any{"expectedversion": json.RawMessage(strings.Repeat("9", 60000))}, "expectedversion"},
		{"long duplicate key", map[string]any{"x": json.RawMessage(`{"` + key + `":1,"` + key + `":2}`)}, "duplicate key"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			_, err := Decode(testKey, eventJSON(t, test.edit))
			switch {
			case test.wantErr == "" && err != nil:
				t.Fatalf("Decode: %v, want a valid event", err)
			case test.wantErr == "":
				return
			case err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), test.wantErr):
				t.Fatalf("Decode: %v, want a malformed error with %q", err, test.wantErr)
			}
			if n := len(err.Error()); n > maxErrorBytes+len(ErrMalformed.Error())+8 {
				t.Errorf("error of %d bytes, want at most about %d", n, maxErrorBytes)
			}
			if !utf8.ValidString(err.Error()) {
				t.Error("the cut error is not valid UTF-8")
			}
		})
	}
}

// TestDecisionMessagesQuoteBoundedInput: a decision's message quotes at
// most a short prefix of the input it is about; a message quoting a 60 KB
// field would carry it into the state, 32 times.
func TestDecisionMessagesQuoteBoundedInput(t *testing.T) {
	registered := mustAccept(t, at(1, TypeRegistered, registeredData()))
	long := strings.Repeat("<", 60000)
	tests := []struct {
		name string
		ev   Event
	}{
		{"long country", at(2, TypeAddressChanged, &AddressChangedData{Address: &Address{Line1: "1", City: "c", PostalCode: "p", Country: long}})},
		{"long invalid email", at(2, TypeEmailChanged, &EmailChangedData{Email: long})},
		{"invalid email at its bound", at(2, TypeEmailChanged, &EmailChangedData{Email: long[:maxEmailLength]})},
		{"long name", at(2, TypeRenamed, &RenamedData{Name: long})},
		{"long suspension reason", at(2, TypeSuspended, &SuspendedData{Reason: long})},
		{"long line1", at(2, TypeAddressChanged, &AddressChangedData{Address: &Address{Line1: long, City: "c", PostalCode: "p", Country: "DE"}})},
		{"unknown type without data", at(2, long, nil)},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			next, d := Apply(registered, test.ev)
			if d.Outcome != Rejected || d.Reason != ReasonInvalid {
				t.Fatalf("decision %+v, want rejected invalid", d)
			}
			if len(d.Message) > MaxDecisionMessageBytes || !utf8.ValidString(d.Message) {
				t.Errorf("message of %d bytes, want valid UTF-8 of at most %d: %.100s", len(d.Message), MaxDecisionMessageBytes, d.Message)
			}
			if grown := len(mustEncode(t, next)) - len(mustEncode(t, registered)); grown > 2048 {
				t.Errorf("one rejection grew the state by %d bytes", grown)
			}
		})
	}
}

func TestQuoteAndTruncate(t *testing.T) {
	if got := quote("short"); got != `"short"` {
		t.Errorf("quote(short) = %s", got)
	}
	long := strings.Repeat("é", 100) // 200 bytes
	got := quote(long)
	if !strings.HasPrefix(got, `"`+strings.Repeat("é", maxQuotedBytes/2)+`"`) || !strings.HasSuffix(got, "(200 bytes)") {
		t.Errorf("quote of 200 bytes = %s", got)
	}
	for n := range 6 {
		if s := truncateUTF8("aé€😀", n); !utf8.ValidString(s) || len(s) > n {
			t.Errorf("truncateUTF8(_, %d) = %q", n, s)
		}
	}
}

package processor

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestProcessorDeadLettersStateTooLarge: a state an older build wrote,
// too large even without its decisions (here a 600 KB last_event_id), is
// never written back: the event that would keep it is dead-lettered as
// state_too_large and the processor goes on. An event that replaces the
// large field folds as usual.
func TestProcessorDeadLettersStateTooLarge(t *testing.T) {
	h := startProcessor(t, 1)
	old := mustAccept(t, at(1, TypeRegistered, registeredData()))
	old.LastEventID = strings.Repeat("x", 600<<10)
	old.ID, old.NextOffset = testKey, 0 // the tester's offsets start at 0
	h.tt.SetTableValue(groupTable, testKey, &old)

	// already_registered keeps last_event_id: the state stays too large.
	h.consume(t, testKey, wireEvent(t, testKey, "again", TypeRegistered, registeredData()))
	headers, _, _, ok := h.dlq.NextRawWithHeaders()
	if !ok {
		t.Fatal("no dead letter for an event whose state would be too large")
	}
	if r := string(headers[HeaderReason]); r != ReasonStateTooLarge || !strings.Contains(string(headers[HeaderError]), "over the") {
		t.Errorf("dead letter reason %q, error %q; want %s", r, headers[HeaderError], ReasonStateTooLarge)
	}
	if c := h.customer(t, testKey); c == nil || c.LastEventID != old.LastEventID || len(c.Decisions) != len(old.Decisions) {
		t.Error("the table value changed on a dead-lettered event")
	}
	h.wantCounters(t, map[string]float64{
		"eventfold_events_rejected_total{" + ReasonStateTooLarge + "}": 1,
		"eventfold_dlq_records_total{" + ReasonStateTooLarge + "}":     1,
		"eventfold_table_writes_total":                                 0,
	})

	// A rename replaces last_event_id: the state fits again.
	h.consume(t, testKey, wireEvent(t, testKey, "rename", TypeRenamed, &RenamedData{Name: "Ada King"}))
	c := h.customer(t, testKey)
	if c == nil || c.Name != "Ada King" || c.LastEventID != "rename" {
		t.Fatalf("after a rename: %+v, want it applied", c)
	}
	if n := len(mustEncode(t, *c)); n > MaxStateBytes {
		t.Errorf("state of %d bytes written, over %d", n, MaxStateBytes)
	}
	h.wantNoDeadLetters(t)
}

// TestProcessorTrimsDecisionsOfOlderBuild: a state an older build wrote
// with 32 decisions on 30 KB ids folds the next event, and what is
// written fits under MaxStateBytes.
func TestProcessorTrimsDecisionsOfOlderBuild(t *testing.T) {
	h := startProcessor(t, 1)
	var old Customer
	old.ID = testKey
	for i := range RecentDecisions {
		old.Decisions = append(old.Decisions, Decision{EventID: fmt.Sprintf("%02d", i) + strings.Repeat("<", 30000),
			Outcome: Rejected, Reason: ReasonNotRegistered})
	}
	h.tt.SetTableValue(groupTable, testKey, &old)
	h.consume(t, testKey, wireEvent(t, testKey, "reg", TypeRegistered, registeredData()))
	c := h.customer(t, testKey)
	if c == nil || c.Version != 1 {
		t.Fatalf("table value %+v, want the registration applied", c)
	}
	if n := len(mustEncode(t, *c)); n > MaxStateBytes || len(c.Decisions) >= RecentDecisions {
		t.Errorf("state of %d bytes with %d decisions, want at most %d bytes, older decisions dropped", n, len(c.Decisions), MaxStateBytes)
	}
	h.wantNoDeadLetters(t)
}

// fuzzLengths are the lengths a fuzzed field takes: around each bound,
// and the most an event holds.
var fuzzLengths = []int{0, 1, 2, 63, 64, 65, maxNameLength, maxNameLength + 1, maxEmailLength, maxEmailLength + 1,
	MaxIDBytes, MaxIDBytes + 1, maxReasonLength, maxReasonLength + 1, MaxSourceBytes + 1, 63 << 10}

// fuzzChars are the characters a fuzzed field is made of: plain, the
// longest to encode in JSON, multi-byte, and ones %q escapes.
var fuzzChars = []string{"a", "<", "é", "\u2028", "\"", " ", "😀", "\x01"}

// fuzzFields are the members of an event a fuzzed record makes long.
var fuzzFields = []string{"id", "source", "name", "email", "country", "line1", "reason", "subject"}

// fuzzRecordValue builds the value of the i-th record from three bytes:
// the type, which field is long and how long, and its character.
func fuzzRecordValue(i int, a, b, c byte) []byte {
	n, char := fuzzLengths[int(b)%len(fuzzLengths)], fuzzChars[int(c)%len(fuzzChars)]
	long := strings.Repeat(char, n)
	field := fuzzFields[int(a>>3)%len(fuzzFields)]
	if field == "id" && n >= 4 { // unique, or every record but the first is a duplicate
		long = fmt.Sprintf("%04d", i%10000) + strings.Repeat(char, n-4)
	}
	attrs := map[string]any{"specversion": "1.0", "id": fmt.Sprintf("e%d", i), "source": "/fuzz", "subject": "k"}
	addr := map[string]any{"line1": "1 Main St", "city": "C", "postal_code": "P", "country": "DE"}
	data := map[string]any{}
	switch a % 8 {
	case 0:
		attrs["type"], data["name"], data["email"], data["address"] = TypeRegistered, "N", "n@example.com", addr
	case 1:
		attrs["type"], data["name"] = TypeRenamed, "M"
	case 2:
		attrs["type"], data["email"] = TypeEmailChanged, "m@example.com"
	case 3:
		attrs["type"], data["address"] = TypeAddressChanged, addr
	case 4:
		attrs["type"], data["reason"] = TypeSuspended, "r"
	case 5:
		attrs["type"] = TypeReactivated
	case 6:
		attrs["type"] = TypeErased
	default:
		attrs["type"], data["name"] = TypeRenamed, long // a long name in every case
	}
	switch field {
	case "id", "source", "subject":
		attrs[field] = long
	case "country", "line1":
		addr[field] = long
	default:
		data[field] = long
	}
	attrs["data"] = data
	value, _ := json.Marshal(attrs) // maps of strings always encode
	return value
}

// FuzzProcessorStateStaysUnderLimit runs arbitrary sequences of records
// for one key through decide, the processor's own step, and reads each
// state back as the table would hold it. Whatever the records, no step
// panics, every state written encodes under MaxStateBytes (and under the
// bound the fold checks), no state the fold made is ever too large, and
// messages and errors stay short. The seeds, run by go test, include the
// attack of issue 12.
func FuzzProcessorStateStaysUnderLimit(f *testing.F) {
	attack := make([]byte, 0, 60)
	for range 20 {
		attack = append(attack, 1, 15, 0) // renames of an unregistered customer with 63 KiB ids
	}
	f.Add(attack, []byte(nil))
	for field := range fuzzFields {
		for _, length := range []int{10, 11, 15} { // 256, 257 and 63 KiB
			ops := []byte{0, 0, 0}
			for i := range 40 {
				ops = append(ops, byte(field<<3|i%8), byte(length), byte(i))
			}
			f.Add(ops, []byte(nil))
		}
	}
	f.Add([]byte{0, 0, 0, 7, 6, 1, 3, 15, 1}, []byte(`{"specversion":"1.0","id":"x","source":"/s","type":"customer.renamed","subject":"k","data":{"name":1e999}}`))
	f.Fuzz(func(t *testing.T, ops, raw []byte) {
		const partitions = 1
		var state Customer
		for i := 0; i <= len(ops)/3 && i < 200; i++ {
			value := raw
			if 3*i+2 < len(ops) {
				value = fuzzRecordValue(i, ops[3*i], ops[3*i+1], ops[3*i+2])
			}
			v := decide(func() Customer { return state }, input{key: "k", value: value, offset: int64(i), timestamp: time.UnixMilli(int64(i) << 40)}, partitions, nil)
			if v.deadLetter != "" {
				if v.deadLetter == ReasonStateTooLarge {
					t.Fatalf("record %d: a state the fold made is too large: %v", i, v.cause)
				}
				if n := len(v.cause.Error()); n > maxErrorHeaderBytes {
					t.Fatalf("record %d: error of %d bytes", i, n)
				}
				continue
			}
			if v.decision.Outcome == Duplicate {
				continue
			}
			// The bounds, not the trimming of older states, keep it small:
			// no decision is dropped before the ring is full.
			if want := min(len(state.Decisions)+1, RecentDecisions); len(v.next.Decisions) != want {
				t.Fatalf("record %d: %d decisions kept of %d, want %d", i, len(v.next.Decisions), len(state.Decisions), want)
			}
			if len(v.decision.Message) > MaxDecisionMessageBytes || len(v.decision.EventID) > MaxIDBytes {
				t.Fatalf("record %d: decision %.200v is over its bounds", i, v.decision)
			}
			encoded, err := CustomerCodec{}.Encode(&v.next)
			if err != nil {
				t.Fatal(err)
			}
			if len(encoded) > MaxStateBytes || stateSizeBound(&v.next) < len(encoded) {
				t.Fatalf("record %d: state of %d bytes (bound %d), limit %d", i, len(encoded), stateSizeBound(&v.next), MaxStateBytes)
			}
			back, err := DecodeCustomer(encoded)
			if err != nil {
				t.Fatalf("record %d: the state written does not decode: %v", i, err)
			}
			state = *back
		}
	})
}

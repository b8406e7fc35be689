package processor

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzDecode: no input makes Decode panic; every error is a malformed
// error; an accepted event survives Encode and Decode unchanged.
func FuzzDecode(f *testing.F) {
	f.Add("cust-1", []byte(`{"specversion":"1.0","id":"e","source":"/s","type":"customer.registered","data":{"name":"A","email":"a@example.com"}}`))
	f.Add("cust-1", []byte(`{"specversion":"1.0","id":"e","source":"/s","type":"customer.address_changed","subject":"cust-1","time":"2026-01-01T00:00:00Z","expectedversion":"3","data":{"address":{"line1":"1","city":"c","postal_code":"p","country":"de"}}}`))
	f.Add("k", []byte(`{"specversion":"1.0","id":"a","id":"b"}`))
	f.Add("k", []byte(`{"SpecVersion":"1.0"}`))
	f.Add("", []byte(`null`))
	f.Add("k", []byte{0xff, 0xfe})
	f.Add("k", []byte(`[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]`))
	f.Add("k", []byte(`{"specversion":"1.0","id":"a","source":"/s","type":"customer.erased","x":tru}`))
	f.Add("k", []byte(`{"specversion":"1.0","id":"a\u00e9","source":"/s","type":"customer.erased","n":-01.5e+3}`))
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		ev, err := Decode(key, value)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !json.Valid(value) {
			t.Fatalf("Decode accepted invalid JSON %q", value)
		}
		ev.Subject = key
		encoded, err := Encode(ev)
		if err != nil {
			t.Fatalf("a decoded event does not encode: %v", err)
		}
		again, err := Decode(key, encoded)
		if err != nil {
			t.Fatalf("re-encoded event %s does not decode: %v", encoded, err)
		}
		if !reflect.DeepEqual(again.Payload, ev.Payload) || again.ID != ev.ID || again.Type != ev.Type {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, again)
		}
	})
}

// FuzzCustomerJSON: the fast state decoder agrees with encoding/json on
// every input it accepts.
func FuzzCustomerJSON(f *testing.F) {
	f.Add([]byte(`{"id":"c","version":2,"status":"active","name":"A \"q\"","email":"a@example.com","address":{"line1":"1","city":"c","postal_code":"p","country":"DE"},"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:01.5Z","last_event_id":"e2","next_offset":7,"recent_decisions":[{"event_id":"e1","outcome":"accepted","version":1},{"event_id":"e9","outcome":"rejected","reason":"invalid","message":"name must not be empty","version":1}],"history":{"first_version":1,"count":2,"last":6,"deltas":"AAw="}}`))
	f.Add([]byte(`{"id":"c","version":0,"address":null,"recent_decisions":null}`))
	f.Add([]byte(`{"id":"c","version":2,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:01.5Z","next_offset":7,"decisions":[["e1",0,1,5,3],["e\"9",1,1,6,"",15,"name \u003c"],["e10","other",1,-1,"x.y"]],"data_keys":["k"],"history":{"first_version":1,"count":1,"last":5,"deltas":"Cg=="}}`))
	f.Add([]byte(`{"id":"c","version":1,"decisions":[["e1",99,1,5]]}`))
	f.Add([]byte(`{"id":"c","version":1,"decisions":[]}`))
	f.Add([]byte(`{"id":"\u0063"}`))
	f.Add([]byte(`{"version":1e3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast Customer
		p := stateParser{data: data}
		if p.customer(&fast) != nil {
			return
		}
		p.ws()
		if p.pos != len(data) {
			return
		}
		slow, err := fallbackDecode(data)
		if err != nil {
			return // the fast path is lenient where encoding/json is not; both paths must then agree that UnmarshalJSON fails
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast and encoding/json decoders disagree on %s:\nfast %+v\nslow %+v", data, fast, slow)
		}
		if fast.CreatedAt.Year() > 9999 || fast.UpdatedAt.Year() > 9999 || fast.CreatedAt.Year() < 0 || fast.UpdatedAt.Year() < 0 {
			return // encoding/json refuses such times; the fold never makes them
		}
		want, err := json.Marshal(customerFallback(slow))
		if err != nil {
			return
		}
		if got := fast.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("AppendJSON differs from encoding/json:\n got %s\nwant %s", got, want)
		}
		checkPublicJSON(t, fast)
	})
}

// fallbackDecode decodes data as UnmarshalJSON's fallback to
// encoding/json does.
func fallbackDecode(data []byte) (Customer, error) {
	var slow storedFallback
	if err := json.Unmarshal(data, &slow); err != nil {
		return Customer{}, err
	}
	c := Customer(slow.customerFallback)
	if slow.Stored != nil {
		c.Decisions = *slow.Stored
	}
	return c, nil
}

// checkPublicJSON checks that PublicJSON of c as stored, and of c in
// another layout, is AppendJSON of c without its history.
func checkPublicJSON(t *testing.T, c Customer) {
	t.Helper()
	public := c
	public.History = History{}
	want := public.AppendJSON(nil)
	stored := c.AppendStored(nil)
	keep := string(stored)
	// As stored, in the layout before the stored decisions, and in a
	// layout PublicJSON decodes.
	for _, in := range [][]byte{stored, c.AppendJSON(nil), append([]byte(" "), stored...)} {
		got, version, err := PublicJSON(in)
		if err != nil {
			t.Fatalf("PublicJSON(%s): %v", in, err)
		}
		if string(got) != string(want) || version != c.Version {
			t.Fatalf("PublicJSON(%s) = %s, version %d\nwant %s, version %d", in, got, version, want, c.Version)
		}
	}
	if string(stored) != keep {
		t.Fatalf("PublicJSON modified its input")
	}
}

// FuzzApply folds a random sequence and checks the fold's invariants:
// version counts accepted events, a replayed offset is a duplicate, and
// the state stays encodable.
func FuzzApply(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 1, 1, 2})
	f.Add([]byte{6, 0, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var state Customer
		accepted := int64(0)
		for i, op := range ops {
			ev := fuzzEvent(op, i)
			next, d := Apply(state, ev)
			if d.Outcome == Accepted {
				accepted++
			}
			if again, d2 := Apply(next, ev); d2.Outcome != Duplicate || !reflect.DeepEqual(again, next) {
				t.Fatalf("replaying event %d gave %+v", i, d2)
			}
			state = next
			if state.Version != accepted {
				t.Fatalf("version %d after %d accepted events", state.Version, accepted)
			}
		}
		raw, err := CustomerCodec{}.Encode(&state)
		if err != nil {
			t.Fatal(err)
		}
		if want := state.AppendStored(nil); string(raw) != string(want) {
			t.Fatalf("the codec's JSON differs from AppendStored:\n got %s\nwant %s", raw, want)
		}
		if want, _ := json.Marshal(customerFallback(state)); string(state.AppendJSON(nil)) != string(want) {
			t.Fatalf("AppendJSON differs from encoding/json:\n got %s\nwant %s", state.AppendJSON(nil), want)
		}
		back, err := DecodeCustomer(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.Decisions, state.Decisions) {
			t.Fatalf("the decisions do not survive the codec:\n got %+v\nwant %+v", back.Decisions, state.Decisions)
		}
		if slow, err := fallbackDecode(raw); err != nil || len(state.Decisions) > 0 && !reflect.DeepEqual(slow.Decisions, state.Decisions) {
			t.Fatalf("encoding/json reads the stored decisions of %s differently: %v", raw, err)
		}
		checkPublicJSON(t, state)
		if back.Version != state.Version || len(back.Decisions) != len(state.Decisions) || back.History.Len() != state.History.Len() {
			t.Fatalf("state does not survive its codec: %s", raw)
		}
	})
}

func fuzzEvent(op byte, i int) Event {
	ev := Event{ID: "e" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)), Key: "k", Offset: int64(i)}
	if op&0x80 != 0 {
		v := int64(op & 0x07)
		ev.ExpectedVersion = &v
	}
	switch op % 8 {
	case 0:
		ev.Type, ev.Payload = TypeRegistered, &RegisteredData{Name: "N", Email: "n@example.com"}
	case 1:
		ev.Type, ev.Payload = TypeRenamed, &RenamedData{Name: "M"}
	case 2:
		ev.Type, ev.Payload = TypeEmailChanged, &EmailChangedData{Email: "bad"}
	case 3:
		ev.Type, ev.Payload = TypeAddressChanged, &AddressChangedData{Address: &Address{Line1: "1", City: "c", PostalCode: "p", Country: "FR"}}
	case 4:
		ev.Type, ev.Payload = TypeSuspended, &SuspendedData{Reason: "r"}
	case 5:
		ev.Type, ev.Payload = TypeReactivated, &ReactivatedData{}
	case 6:
		ev.Type, ev.Payload = TypeErased, &ErasedData{}
	default:
		ev.Type, ev.Payload = TypeRenamed, &RenamedData{Name: ""}
	}
	return ev
}

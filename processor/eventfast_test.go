package processor

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fastPathSeeds are data objects and times around the edges of the fast
// paths: exact names, case changes, escapes, duplicates, nulls, numbers,
// nested objects, unknown members, unicode, bad JSON.
var fastPathSeeds = []struct {
	data string
	time string
}{
	{`{"name":"A","email":"a@example.com"}`, "2026-01-01T00:00:00Z"},
	{`{"name":"A","email":"a@example.com","address":{"line1":"1 Main St","line2":"","city":"c","postal_code":"p","country":"US"}}`, "2026-01-01t00:00:00z"},
	{` { "name" : "A" , "email" : "e" , "address" : { } } `, "2026-01-01T00:00:00.123456789Z"},
	{`{"Name":"A"}`, "2026-01-01T00:00:00.1234567891234Z"},
	{`{"NAME":"A","email":"x"}`, "2026-01-01T00:00:00.Z"},
	{`{"name":"A","name":"B"}`, "2026-01-01T00:00:00,5Z"},
	{`{"address":{"city":"a"},"address":{"country":"b"}}`, "2026-02-29T00:00:00Z"},
	{`{"address":{"city":"a","city":"b"}}`, "2024-02-29T23:59:59Z"},
	{`{"name":null}`, "2026-04-31T00:00:00Z"},
	{`{"address":null}`, "2026-12-31T24:00:00Z"},
	{`{"name":1}`, "2026-12-31T23:60:00Z"},
	{`{"name":true}`, "2026-12-31T23:59:60Z"},
	{`{"address":"x"}`, "2026-12-31T23:59:59+01:00"},
	{`{"address":{"line1":["x"]}}`, "2026-12-31T23:59:59-00:00"},
	{`{"name":"\u00e9"}`, "0000-01-01T00:00:00Z"},
	{`{"n\u0061me":"A"}`, "9999-12-31T23:59:59.999999999Z"},
	{`{"name":"A\"B"}`, "2026-1-01T00:00:00Z"},
	{`{"name":"Zoë 😀 ſ"}`, "2026-01-01 00:00:00Z"},
	{`{"naſe":"A"}`, "2026-01-01T00:00:00"},
	{`{"extra":{"deep":[1,2,{"x":null}]},"name":"A"}`, "2026-01-01T00:00:00.5"},
	{`{"reason":"r"}`, "2026-13-01T00:00:00Z"},
	{`{}`, "2026-00-01T00:00:00Z"},
	{`{"name":"A",}`, "+2026-01-01T00:00:00Z"},
	{`{"name":"A"} x`, "2026-01-01T00:00:00ZZ"},
	{`{"name":"A"`, "２026-01-01T00:00:00Z"},
	{`{"name":"tab	in"}`, "1900-02-29T00:00:00Z"},
	{"{\"name\":\"\xff\"}", "2000-02-29T00:00:00Z"},
	{`{"email":"e","name":"n","address":{"country":"DE","postal_code":"1","city":"B","line2":"2","line1":"1"}}`, "2026-06-30T12:34:56.7Z"},
}

// TestFastPathsMatchReference: on every seed, for every event type, the
// data fast path fills the payload exactly as encoding/json does whenever
// it takes the input, and the time fast path returns exactly what
// time.Parse returns.
func TestFastPathsMatchReference(t *testing.T) {
	fastData, fastTimes := 0, 0
	for i, seed := range fastPathSeeds {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			for _, typ := range EventTypes {
				if checkDataFastPath(t, typ, []byte(seed.data)) {
					fastData++
				}
			}
			if checkTimeFastPath(t, seed.time) {
				fastTimes++
			}
		})
	}
	// The seeds must exercise the fast paths, not only the fallbacks.
	if fastData < 10 || fastTimes < 5 {
		t.Fatalf("fast paths taken %d times for data and %d for times", fastData, fastTimes)
	}
}

// FuzzEventFastPaths: the fast paths of the event decode agree with
// encoding/json and time.Parse, and Decode gives the reference payload
// and time.
func FuzzEventFastPaths(f *testing.F) {
	for i, seed := range fastPathSeeds {
		f.Add(uint8(i), []byte(seed.data), seed.time)
	}
	f.Fuzz(func(t *testing.T, typeIndex uint8, data []byte, when string) {
		typ := EventTypes[int(typeIndex)%len(EventTypes)]
		checkDataFastPath(t, typ, data)
		checkTimeFastPath(t, when)
		value, err := json.Marshal(map[string]any{"specversion": "1.0", "id": "e", "source": "/s", "type": typ,
			"time": when, "data": json.RawMessage(data)})
		if err != nil {
			return // data is not JSON: no event to build
		}
		ev, err := Decode("k", value)
		if err != nil {
			return // every error comes from the reference paths
		}
		want, _ := newPayload(typ)
		if err := json.Unmarshal(data, want); err != nil || !reflect.DeepEqual(ev.Payload, want) {
			t.Fatalf("Decode's payload %+v, encoding/json's %+v (%v)", ev.Payload, want, err)
		}
		ref, err := time.Parse(time.RFC3339Nano, strings.ToUpper(when))
		if err != nil || !reflect.DeepEqual(ev.Time, ref.UTC()) {
			t.Fatalf("Decode's time %v, time.Parse's %v (%v)", ev.Time, ref, err)
		}
	})
}

// checkDataFastPath fails t when fillPayload takes data and fills the
// payload otherwise than encoding/json; it reports whether it took it.
func checkDataFastPath(t *testing.T, typ string, data []byte) bool {
	t.Helper()
	fast, _ := newPayload(typ)
	if !fillPayload(data, fast) {
		return false
	}
	want, _ := newPayload(typ)
	if err := json.Unmarshal(data, want); err != nil {
		t.Fatalf("fast path took %s data %q that encoding/json rejects: %v", typ, data, err)
	}
	if !reflect.DeepEqual(fast, want) {
		t.Fatalf("%s data %q: fast path %+v, encoding/json %+v", typ, data, fast, want)
	}
	return true
}

// checkTimeFastPath fails t when parseTimeZ reads s otherwise than
// time.Parse; it reports whether it read it.
func checkTimeFastPath(t *testing.T, s string) bool {
	t.Helper()
	fast, ok := parseTimeZ(s)
	if fromBytes, okBytes := parseTimeZ([]byte(s)); okBytes != ok || fromBytes != fast {
		t.Fatalf("time %q: from a string %v (%v), from bytes %v (%v)", s, fast, ok, fromBytes, okBytes)
	}
	if !ok {
		return false
	}
	want, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
	if err != nil {
		t.Fatalf("fast path took time %q that time.Parse rejects: %v", s, err)
	}
	if want = want.UTC(); !reflect.DeepEqual(fast, want) || fast != want {
		t.Fatalf("time %q: fast path %#v, time.Parse %#v", s, fast, want)
	}
	return true
}

// TestDecodeChecksSealingOnEveryPath: the decode skips the sealing check
// only when nothing can be sealed; a sealed-looking value, plain or
// escaped, or the attribute without sealed values is still rejected.
func TestDecodeChecksSealingOnEveryPath(t *testing.T) {
	for _, test := range []struct {
		name, attrs, data, want string
	}{
		{"plain sealed-looking name", ``, `{"name":"ef1:x"}`, `name starts with "ef1:", which marks sealed data`},
		{"escaped sealed-looking name", ``, `{"name":"\u0065f1:x"}`, `name starts with "ef1:", which marks sealed data`},
		{"sealed-looking name with unknown member", ``, ` { "x" : 1 , "name" : "ef1:z" } `, `name starts with "ef1:", which marks sealed data`},
		{"attribute with plaintext", `"personaldata":"aes256gcm",`, `{"name":"A"}`, `personaldata is set but name is not sealed`},
		{"invalid without attribute", `"personaldatainvalid":"x",`, `{"name":"A"}`, `personaldatainvalid needs personaldata`},
	} {
		t.Run(test.name, func(t *testing.T) {
			value := `{"specversion":"1.0","id":"e","source":"/s","type":"customer.renamed",` + test.attrs + `"data":` + test.data + `}`
			_, err := Decode("k", []byte(value))
			if err == nil || !strings.Contains(err.Error(), test.want) {
				t.Fatalf("Decode(%s) = %v, want an error with %q", value, err, test.want)
			}
		})
	}
}

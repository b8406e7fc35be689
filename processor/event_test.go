package processor

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// eventJSON returns a valid customer.registered event for key cust-1 as
// JSON, after edit changed its attributes: a nil value deletes one.
func eventJSON(t *testing.T, edit map[string]any) []byte {
	t.Helper()
	m := map[string]any{
		"specversion":     "1.0",
		"id":              "evt-1",
		"source":          "/crm",
		"type":            TypeRegistered,
		"subject":         "cust-1",
		"time":            "2026-03-01T12:00:00Z",
		"datacontenttype": "application/json",
		"data": map[string]any{
			"name":  "Ada Lovelace",
			"email": "ada@example.com",
			"address": map[string]any{
				"line1": "1 Main Street", "city": "London", "postal_code": "N1 9GU", "country": "GB",
			},
		},
	}
	for k, v := range edit {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("failed to marshal test event: %v", err)
	}
	return b
}

// padTo pads a JSON value with trailing spaces to n bytes.
func padTo(t *testing.T, b []byte, n int) []byte {
	t.Helper()
	if len(b) > n {
		t.Fatalf("value of %d bytes is already longer than %d", len(b), n)
	}
	return append(bytes.Clone(b), bytes.Repeat([]byte(" "), n-len(b))...)
}

func TestDecodeValidEvents(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	base := Event{ID: "evt-1", Source: "/crm", Subject: "cust-1", Time: at, Key: "cust-1", Offset: -1}
	with := func(typ string, payload any, edit func(*Event)) Event {
		ev := base
		ev.Type, ev.Payload = typ, payload
		if edit != nil {
			edit(&ev)
		}
		return ev
	}
	three := int64(3)
	zero := int64(0)

	tests := []struct {
		name  string
		key   string
		value []byte
		want  Event
	}{
		{"registered", "cust-1", eventJSON(t, nil), with(TypeRegistered,
			&RegisteredData{Name: "Ada Lovelace", Email: "ada@example.com",
				Address: &Address{Line1: "1 Main Street", City: "London", PostalCode: "N1 9GU", Country: "GB"}}, nil)},
		{"renamed", "cust-1", eventJSON(t, map[string]any{"type": TypeRenamed, "data": map[string]any{"name": "Ada King"}}),
			with(TypeRenamed, &RenamedData{Name: "Ada King"}, nil)},
		{"email changed", "cust-1", eventJSON(t, map[string]any{"type": TypeEmailChanged, "data": map[string]any{"email": "a@b.co"}}),
			with(TypeEmailChanged, &EmailChangedData{Email: "a@b.co"}, nil)},
		{"address changed", "cust-1", eventJSON(t, map[string]any{"type": TypeAddressChanged, "data": map[string]any{"address": map[string]any{
			"line1": "x", "line2": "y", "city": "Paris", "postal_code": "75001", "country": "fr"}}}),
			with(TypeAddressChanged, &AddressChangedData{Address: &Address{Line1: "x", Line2: "y", City: "Paris", PostalCode: "75001", Country: "fr"}}, nil)},
		{"suspended", "cust-1", eventJSON(t, map[string]any{"type": TypeSuspended, "data": map[string]any{"reason": "fraud"}}),
			with(TypeSuspended, &SuspendedData{Reason: "fraud"}, nil)},
		{"reactivated", "cust-1", eventJSON(t, map[string]any{"type": TypeReactivated, "data": map[string]any{}}),
			with(TypeReactivated, &ReactivatedData{}, nil)},
		{"reactivated without data", "cust-1", eventJSON(t, map[string]any{"type": TypeReactivated, "data": nil}),
			with(TypeReactivated, &ReactivatedData{}, nil)},
		{"erased", "cust-1", eventJSON(t, map[string]any{"type": TypeErased, "data": map[string]any{}}),
			with(TypeErased, &ErasedData{}, nil)},
		{"without subject, time and datacontenttype", "cust-1",
			eventJSON(t, map[string]any{"subject": nil, "time": nil, "datacontenttype": nil, "type": TypeErased, "data": nil}),
			with(TypeErased, &ErasedData{}, func(ev *Event) { ev.Subject, ev.Time = "", time.Time{} })},
		{"time with offset and nanoseconds becomes UTC", "cust-1",
			eventJSON(t, map[string]any{"time": "2026-03-01T13:00:00.123456789+01:00", "type": TypeErased, "data": nil}),
			with(TypeErased, &ErasedData{}, func(ev *Event) { ev.Time = at.Add(123456789) })},
		{"expectedversion as number", "cust-1", eventJSON(t, map[string]any{"expectedversion": 3, "type": TypeErased, "data": nil}),
			with(TypeErased, &ErasedData{}, func(ev *Event) { ev.ExpectedVersion = &three })},
		{"expectedversion as string", "cust-1", eventJSON(t, map[string]any{"expectedversion": "3", "type": TypeErased, "data": nil}),
			with(TypeErased, &ErasedData{}, func(ev *Event) { ev.ExpectedVersion = &three })},
		{"expectedversion zero", "cust-1", eventJSON(t, map[string]any{"expectedversion": 0, "type": TypeErased, "data": nil}),
			with(TypeErased, &ErasedData{}, func(ev *Event) { ev.ExpectedVersion = &zero })},
		{"unknown extension and data fields are ignored", "cust-1",
			eventJSON(t, map[string]any{"traceparent": "00-abc", "type": TypeRenamed, "data": map[string]any{"name": "A", "nickname": "B"}}),
			with(TypeRenamed, &RenamedData{Name: "A"}, nil)},
		{"128-character key", strings.Repeat("k", 128), eventJSON(t, map[string]any{"subject": nil, "type": TypeErased, "data": nil}),
			with(TypeErased, &ErasedData{}, func(ev *Event) { ev.Subject, ev.Key = "", strings.Repeat("k", 128) })},
		{"key with . _ - :", "tenant:a.b_c-D9", eventJSON(t, map[string]any{"subject": "tenant:a.b_c-D9", "type": TypeErased, "data": nil}),
			with(TypeErased, &ErasedData{}, func(ev *Event) { ev.Subject, ev.Key = "tenant:a.b_c-D9", "tenant:a.b_c-D9" })},
		{"value of exactly MaxEventBytes", "cust-1",
			padTo(t, eventJSON(t, map[string]any{"type": TypeErased, "data": nil}), MaxEventBytes),
			with(TypeErased, &ErasedData{}, nil)},
		{"unicode data", "cust-1", eventJSON(t, map[string]any{"type": TypeRenamed, "data": map[string]any{"name": "Ælfgifu 🐝"}}),
			with(TypeRenamed, &RenamedData{Name: "Ælfgifu 🐝"}, nil)},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			got, err := Decode(test.key, test.value)
			if err != nil {
				t.Fatalf("Decode(%q, %s): %v", test.key, test.value, err)
			}
			if !reflect.DeepEqual(got, test.want) {
				t.Errorf("Decode =\n%#v\nwant\n%#v", got, test.want)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	valid := string(eventJSON(t, nil))
	tests := []struct {
		name  string
		key   string
		value []byte
	}{
		{"empty value", "cust-1", nil},
		{"empty non-nil value", "cust-1", []byte{}},
		{"not JSON", "cust-1", []byte("not json")},
		{"truncated JSON", "cust-1", []byte(valid[:len(valid)/2])},
		{"JSON array", "cust-1", []byte(`[` + valid + `]`)},
		{"JSON null", "cust-1", []byte(`null`)},
		{"JSON string", "cust-1", []byte(`"event"`)},
		{"trailing garbage", "cust-1", []byte(valid + `x`)},
		{"missing specversion", "cust-1", eventJSON(t, map[string]any{"specversion": nil})},
		{"empty specversion", "cust-1", eventJSON(t, map[string]any{"specversion": ""})},
		{"specversion 0.3", "cust-1", eventJSON(t, map[string]any{"specversion": "0.3"})},
		{"specversion as number", "cust-1", eventJSON(t, map[string]any{"specversion": 1.0})},
		{"missing id", "cust-1", eventJSON(t, map[string]any{"id": nil})},
		{"empty id", "cust-1", eventJSON(t, map[string]any{"id": ""})},
		{"id as number", "cust-1", eventJSON(t, map[string]any{"id": 42})},
		{"missing source", "cust-1", eventJSON(t, map[string]any{"source": nil})},
		{"empty source", "cust-1", eventJSON(t, map[string]any{"source": ""})},
		{"missing type", "cust-1", eventJSON(t, map[string]any{"type": nil})},
		{"empty type", "cust-1", eventJSON(t, map[string]any{"type": ""})},
		{"unknown type", "cust-1", eventJSON(t, map[string]any{"type": "customer.deleted"})},
		{"type of another entity", "cust-1", eventJSON(t, map[string]any{"type": "order.registered"})},
		{"bad time", "cust-1", eventJSON(t, map[string]any{"time": "yesterday"})},
		{"time without zone", "cust-1", eventJSON(t, map[string]any{"time": "2026-03-01T12:00:00"})},
		{"time as number", "cust-1", eventJSON(t, map[string]any{"time": 1767225600})},
		{"subject differs from key", "cust-1", eventJSON(t, map[string]any{"subject": "cust-2"})},
		{"datacontenttype not JSON", "cust-1", eventJSON(t, map[string]any{"datacontenttype": "application/xml"})},
		{"data null", "cust-1", eventJSON(t, map[string]any{"data": json.RawMessage(`null`)})},
		{"data array", "cust-1", eventJSON(t, map[string]any{"data": []any{"Ada"}})},
		{"data string", "cust-1", eventJSON(t, map[string]any{"data": "Ada"})},
		{"data number", "cust-1", eventJSON(t, map[string]any{"data": 1})},
		{"data.name as number", "cust-1", eventJSON(t, map[string]any{"data": map[string]any{"name": 7, "email": "a@b.co"}})},
		{"data.address as string", "cust-1", eventJSON(t, map[string]any{"data": map[string]any{"name": "A", "email": "a@b.co", "address": "London"}})},
		{"expectedversion negative", "cust-1", eventJSON(t, map[string]any{"expectedversion": -1})},
		{"expectedversion float", "cust-1", eventJSON(t, map[string]any{"expectedversion": 1.5})},
		{"expectedversion 3.0", "cust-1", eventJSON(t, map[string]any{"expectedversion": json.RawMessage(`3.0`)})},
		{"expectedversion abc", "cust-1", eventJSON(t, map[string]any{"expectedversion": "abc"})},
		{"expectedversion empty string", "cust-1", eventJSON(t, map[string]any{"expectedversion": ""})},
		{"expectedversion negative string", "cust-1", eventJSON(t, map[string]any{"expectedversion": "-2"})},
		{"expectedversion null", "cust-1", eventJSON(t, map[string]any{"expectedversion": json.RawMessage(`null`)})},
		{"expectedversion true", "cust-1", eventJSON(t, map[string]any{"expectedversion": true})},
		{"expectedversion beyond int64", "cust-1", eventJSON(t, map[string]any{"expectedversion": json.RawMessage(`9223372036854775808`)})},
		{"oversize value", "cust-1", padTo(t, eventJSON(t, nil), MaxEventBytes+1)},
		{"invalid UTF-8", "cust-1", []byte(strings.Replace(valid, "Ada Lovelace", "Ada \xff\xfe", 1))},
		{"empty key", "", eventJSON(t, map[string]any{"subject": nil})},
		{"129-character key", strings.Repeat("k", 129), eventJSON(t, map[string]any{"subject": nil})},
		{"key with space", "cust 1", eventJSON(t, map[string]any{"subject": nil})},
		{"key with slash", "cust/1", eventJSON(t, map[string]any{"subject": nil})},
		{"key with unicode", "kundé-1", eventJSON(t, map[string]any{"subject": nil})},
		{"key with NUL", "cust\x001", eventJSON(t, map[string]any{"subject": nil})},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			ev, err := Decode(test.key, test.value)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode(%q, %.80q) = %+v, %v; want an error wrapping ErrMalformed", test.key, test.value, ev, err)
			}
			if !reflect.DeepEqual(ev, Event{}) {
				t.Errorf("Decode returned %+v with its error, want the zero Event", ev)
			}
			if err.Error() == ErrMalformed.Error() {
				t.Errorf("error %q does not say what is wrong", err)
			}
		})
	}
}

func TestDecodeValue(t *testing.T) {
	tests := []struct {
		name    string
		value   []byte
		wantKey string // "" when the value is malformed
	}{
		{"subject is the key", eventJSON(t, nil), "cust-1"},
		{"subject with allowed punctuation", eventJSON(t, map[string]any{"subject": "a:b.c_d-e"}), "a:b.c_d-e"},
		{"missing subject", eventJSON(t, map[string]any{"subject": nil}), ""},
		{"empty subject", eventJSON(t, map[string]any{"subject": ""}), ""},
		{"subject with space", eventJSON(t, map[string]any{"subject": "cust 1"}), ""},
		{"subject too long", eventJSON(t, map[string]any{"subject": strings.Repeat("s", 129)}), ""},
		{"malformed value", []byte("{"), ""},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			ev, err := DecodeValue(test.value)
			if test.wantKey == "" {
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("DecodeValue = %+v, %v; want an error wrapping ErrMalformed", ev, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeValue: %v", err)
			}
			if ev.Key != test.wantKey || ev.Subject != test.wantKey || ev.Offset != -1 {
				t.Errorf("DecodeValue = key %q, subject %q, offset %d; want key and subject %q, offset -1", ev.Key, ev.Subject, ev.Offset, test.wantKey)
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	three := int64(3)
	at := time.Date(2026, 3, 1, 12, 30, 15, 987654321, time.UTC)
	base := Event{ID: "evt-9", Source: "urn:crm", Subject: "cust-9", Time: at, Key: "cust-9", Offset: -1}
	tests := []struct {
		name   string
		mutate func(*Event)
	}{
		{"registered", func(ev *Event) {
			ev.Type, ev.Payload = TypeRegistered, &RegisteredData{Name: "Ada", Email: "ada@example.com",
				Address: &Address{Line1: "1", Line2: "2", City: "c", PostalCode: "p", Country: "GB"}}
		}},
		{"registered without address", func(ev *Event) {
			ev.Type, ev.Payload = TypeRegistered, &RegisteredData{Name: "Ada", Email: "ada@example.com"}
		}},
		{"renamed with expected version", func(ev *Event) {
			ev.Type, ev.Payload, ev.ExpectedVersion = TypeRenamed, &RenamedData{Name: "Ada \"King\" <&>"}, &three
		}},
		{"email changed", func(ev *Event) { ev.Type, ev.Payload = TypeEmailChanged, &EmailChangedData{Email: "a@b.co"} }},
		{"address changed", func(ev *Event) {
			ev.Type, ev.Payload = TypeAddressChanged, &AddressChangedData{Address: &Address{Line1: "1", City: "c", PostalCode: "p", Country: "de"}}
		}},
		{"suspended", func(ev *Event) { ev.Type, ev.Payload = TypeSuspended, &SuspendedData{Reason: "ünïcode"} }},
		{"suspended without reason", func(ev *Event) { ev.Type, ev.Payload = TypeSuspended, &SuspendedData{} }},
		{"reactivated", func(ev *Event) { ev.Type, ev.Payload = TypeReactivated, &ReactivatedData{} }},
		{"erased without time and subject", func(ev *Event) {
			ev.Type, ev.Payload, ev.Time, ev.Subject = TypeErased, &ErasedData{}, time.Time{}, ""
		}},
		{"time in another zone", func(ev *Event) {
			ev.Type, ev.Payload = TypeErased, &ErasedData{}
			ev.Time = at.In(time.FixedZone("CET", 3600))
		}},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			ev := base
			test.mutate(&ev)
			b, err := Encode(ev)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := Decode(ev.Key, b)
			if err != nil {
				t.Fatalf("Decode(Encode(ev)) = %v for %s", err, b)
			}
			want := ev
			if !want.Time.IsZero() {
				want.Time = want.Time.UTC()
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip =\n%#v\nwant\n%#v\nwire %s", got, want, b)
			}
		})
	}
}

func TestValidateKey(t *testing.T) {
	tests := []struct {
		key   string
		valid bool
	}{
		{"c", true},
		{"cust-1", true},
		{"ABC_xyz.09:-", true},
		{"urn:customer:42", true},
		{strings.Repeat("a", MaxKeyLength), true},
		{"", false},
		{strings.Repeat("a", MaxKeyLength+1), false},
		{"cust 1", false},
		{"cust/1", false},
		{`cust\1`, false},
		{"cust+1", false},
		{"cust@1", false},
		{"cust#1", false},
		{"cust%201", false},
		{"kundé", false},
		{"キー", false},
		{"cust\n", false},
		{"cust\x00", false},
		{" cust", false},
	}
	for _, test := range tests {
		t.Run(test.key, func(t *testing.T) {
			err := ValidateKey(test.key)
			if test.valid && err != nil {
				t.Errorf("ValidateKey(%q) = %v, want nil", test.key, err)
			}
			if !test.valid && !errors.Is(err, ErrMalformed) {
				t.Errorf("ValidateKey(%q) = %v, want an error wrapping ErrMalformed", test.key, err)
			}
		})
	}
}

func TestCountryCodes(t *testing.T) {
	if len(countryCodes) != 249 {
		t.Errorf("%d country codes, want the 249 ISO 3166-1 alpha-2 codes", len(countryCodes))
	}
	tests := []struct {
		code  string
		valid bool
	}{
		{"GB", true}, {"DE", true}, {"US", true}, {"FR", true}, {"JP", true},
		{"AQ", true}, {"SS", true}, {"BQ", true}, {"CW", true}, {"SX", true}, {"AX", true}, {"ZW", true}, {"AD", true},
		{"UK", false}, {"EU", false}, {"XK", false}, {"AN", false}, {"YU", false}, {"CS", false},
		{"gb", false}, {"", false}, {"G", false}, {"GBR", false}, {"G B", false},
	}
	for _, test := range tests {
		t.Run(test.code, func(t *testing.T) {
			if got := isCountryCode(test.code); got != test.valid {
				t.Errorf("isCountryCode(%q) = %v, want %v", test.code, got, test.valid)
			}
		})
	}
}

// TestDecodeAttributeNamesAreCaseSensitive: CloudEvents attribute names
// are lower-case and compared exactly, so "ID" is not the id attribute.
// encoding/json matches struct fields case-insensitively and lets the last
// of several spellings win, so the same bytes could name a different event
// id for the fold than for any other CloudEvents reader.
func TestDecodeAttributeNamesAreCaseSensitive(t *testing.T) {
	tests := []struct {
		name   string
		value  string
		wantID string // "" when the event must be malformed
	}{
		{"upper-case required attributes", `{"SPECVERSION":"1.0","ID":"x","Source":"/s","TYPE":"customer.erased"}`, ""},
		{"upper-case id only", `{"specversion":"1.0","ID":"x","source":"/s","type":"customer.erased"}`, ""},
		{"id and Id", `{"specversion":"1.0","id":"a","Id":"b","source":"/s","type":"customer.erased"}`, "a"},
		{"Type after type", `{"specversion":"1.0","id":"a","source":"/s","type":"customer.erased","Type":"customer.reactivated"}`, "a"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			ev, err := Decode("cust-1", []byte(test.value))
			if test.wantID == "" {
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("Decode = %+v, %v; want malformed: the lower-case attributes are missing", ev, err)
				}
				return
			}
			if err == nil && (ev.ID != test.wantID || ev.Type != TypeErased) {
				t.Errorf("Decode took a differently cased attribute: id %q, type %q; want id %q, type %q",
					ev.ID, ev.Type, test.wantID, TypeErased)
			}
		})
	}
}

// encoding/json folds the Kelvin sign to k and the long s to s when it
// matches names; such spellings must not slip past the case check.
func TestDecodeRejectsUnicodeFoldedNames(t *testing.T) {
	for _, value := range []string{
		`{"specversion":"1.0","id":"a","ſource":"/s","source":"/t","type":"customer.erased"}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"customer.erased","\u0069d":"b"}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"customer.renamed","data":{"name":"x","\u004Eame":"y"}}`,
	} {
		if _, err := Decode("k", []byte(value)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%s) = %v, want malformed", value, err)
		}
	}
}

package processor

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
)

// binaryHeaders are the headers of a binary-mode record, as kcat -H or an
// SDK writes them: "name=value" pairs.
func binaryHeaders(pairs ...string) goka.Headers {
	h := goka.Headers{}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		h[k] = []byte(v)
	}
	return h
}

// The record of issue 14: kcat -H ce_specversion=1.0 ... in binary mode.
var kcatBinary = binaryHeaders("ce_specversion=1.0", "ce_id=b-1", "ce_source=/sdk",
	"ce_type=customer.registered", "content-type=application/json")

func TestDecodeRecordBinaryMode(t *testing.T) {
	ev, err := DecodeRecord("cust-b", []byte(`{"name":"Bin Ary","email":"b@example.com"}`), kcatBinary)
	if err != nil {
		t.Fatalf("DecodeRecord: %v", err)
	}
	want := Event{ID: "b-1", Source: "/sdk", Type: TypeRegistered, Key: "cust-b", Offset: -1,
		Payload: &RegisteredData{Name: "Bin Ary", Email: "b@example.com"}}
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("DecodeRecord = %+v, want %+v", ev, want)
	}
}

func TestContentModeOf(t *testing.T) {
	tests := []struct {
		name    string
		headers goka.Headers
		want    ContentMode
		errHas  string
	}{
		{"no headers", nil, ContentModeStructured, ""},
		{"plain JSON content type", binaryHeaders("content-type=application/json"), ContentModeStructured, ""},
		{"ce_ headers without specversion", binaryHeaders("ce_id=1", "ce_type=x"), ContentModeStructured, ""},
		{"ce_specversion", binaryHeaders("ce_specversion=1.0"), ContentModeBinary, ""},
		{"ce_specversion beside a foreign content type", binaryHeaders("ce_specversion=1.0", "content-type=application/avro"), ContentModeBinary, ""},
		{"structured wins over ce_ headers", binaryHeaders("ce_specversion=1.0", "content-type=application/cloudevents+json; charset=UTF-8"), ContentModeStructured, ""},
		{"media type in another case", binaryHeaders("content-type=Application/CloudEvents+JSON"), ContentModeStructured, ""},
		{"header name in another case", binaryHeaders("ce_specversion=1.0", "Content-Type=application/cloudevents+json"), ContentModeStructured, ""},
		{"Avro event format", binaryHeaders("content-type=application/cloudevents+avro"), "", "not the JSON event format"},
		{"batch format", binaryHeaders("content-type=application/cloudevents-batch+json"), "", "not the JSON event format"},
		{"bare CloudEvents media type", binaryHeaders("content-type=application/cloudevents"), "", "not the JSON event format"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			got, err := ContentModeOf(test.headers)
			if test.errHas != "" {
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), test.errHas) {
					t.Fatalf("ContentModeOf = %q, %v; want an error with %q", got, err, test.errHas)
				}
				return
			}
			if err != nil || got != test.want {
				t.Errorf("ContentModeOf = %q, %v; want %q", got, err, test.want)
			}
		})
	}
}

// corpus are events for key "c-1", valid and malformed, as their
// attributes (a JSON object) and their data (JSON text, "" for none), so
// that a test can render each in both modes, malformed data included.
var corpus = []struct{ attrs, data string }{
	{`{"specversion":"1.0","id":"e1","source":"/s","type":"customer.registered"}`, `{"name":"A","email":"a@example.com"}`},
	{`{"specversion":"1.0","id":"e1","source":"/s","type":"customer.registered","subject":"c-1","time":"2026-02-03t04:05:06.789z","expectedversion":0,"datacontenttype":"application/json; charset=utf-8","traceparent":"00-abc-def-01"}`,
		`{"name":"\u00c5sa \"Q\"","email":"a@example.com","address":{"line1":"1 Main St","city":"X","postal_code":"1","country":"DE"}}`},
	{`{"specversion":"1.0","id":"e2","source":"/s","type":"customer.reactivated"}`, ""},
	{`{"specversion":"1.0","id":"e3","source":"/s","type":"customer.suspended","expectedversion":"7"}`, `{}`},
	{`{"specversion":"1.0","id":"e4","source":"/s","type":"customer.erased","partitionkey":"c-1"}`, ""},
	// Malformed: each must fail alike in both modes.
	{`{"specversion":"0.3","id":"e1","source":"/s","type":"customer.registered"}`, ""},
	{`{"specversion":"1.0","id":"","source":"/s","type":"customer.registered"}`, ""},
	{`{"specversion":"1.0","id":"e1","type":"customer.registered"}`, ""},
	{`{"specversion":"1.0","id":"e1","source":"/s","type":"customer.unknown"}`, ""},
	{`{"specversion":"1.0","id":"e1","source":"/s","type":"customer.registered","subject":"someone-else"}`, ""},
	{`{"specversion":"1.0","id":"e1","source":"/s","type":"customer.registered","subject":""}`, ""},
	{`{"specversion":"1.0","id":"e1","source":"/s","type":"customer.registered","time":"yesterday"}`, ""},
	{`{"specversion":"1.0","id":"e1","source":"/s","type":"customer.registered","datacontenttype":"text/plain"}`, ""},
	{`{"specversion":"1.0","id":"e1","source":"/s","type":"customer.registered","expectedversion":-1}`, ""},
	{`{"specversion":"1.0","id":"e1","source":"/s","type":"customer.registered","expectedversion":"0x1"}`, ""},
	{`{"specversion":"1.0","id":"e1","source":"/s","type":"customer.registered"}`, `[1]`},
	{`{"specversion":"1.0","id":"e1","source":"/s","type":"customer.registered"}`, `{"name":1}`},
	{`{"specversion":"1.0","id":"e1","source":"/s","type":"customer.registered"}`, `{"Name":"A"}`},
	{`{"specversion":"1.0","id":"e1","source":"/s","type":"customer.registered"}`, `{"name":"A","name":"B"}`},
	{`{"specversion":"1.0","id":"e1","source":"/s","type":"customer.registered"}`, `{"x":` + strings.Repeat("[", 20) + strings.Repeat("]", 20) + `}`},
}

// TestBinaryModeDecodesAsStructured renders each event in both modes and
// checks that DecodeRecord of the binary record gives the same event, or
// the same error, as Decode of the structured one: the contract is one,
// whatever the content mode.
func TestBinaryModeDecodesAsStructured(t *testing.T) {
	for i, c := range corpus {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			structured := c.attrs
			if c.data != "" {
				structured = strings.TrimSuffix(c.attrs, "}") + `,"data":` + c.data + "}"
			}
			want, wantErr := Decode("c-1", []byte(structured))
			_, headers, err := EncodeBinary([]byte(c.attrs))
			if err != nil {
				t.Fatalf("EncodeBinary: %v", err)
			}
			got, gotErr := DecodeRecord("c-1", []byte(c.data), headers)
			if wantErr != nil {
				if gotErr == nil {
					t.Fatalf("binary mode decodes to %+v; structured mode: %v", got, wantErr)
				}
				// A number attribute travels as a string: -1 becomes "-1".
				unquoted := strings.ReplaceAll(gotErr.Error(), `"`, "")
				if !errors.Is(gotErr, ErrMalformed) || unquoted != "binary mode: "+strings.ReplaceAll(wantErr.Error(), `"`, "") {
					t.Fatalf("binary mode: %v\nstructured mode: %v", gotErr, wantErr)
				}
				return
			}
			if gotErr != nil {
				t.Fatalf("binary mode: %v; structured mode decodes", gotErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("binary mode = %+v\nstructured mode = %+v", got, want)
			}
			// EncodeBinary of the whole event gives the same record.
			value, _, err := EncodeBinary([]byte(structured))
			if err != nil || string(value) != c.data {
				t.Errorf("EncodeBinary value = %q, %v; want %q", value, err, c.data)
			}
		})
	}
}

func TestDecodeRecordBinaryModeMalformed(t *testing.T) {
	with := func(pairs ...string) goka.Headers {
		h := goka.Headers{}
		for k, v := range kcatBinary {
			h[k] = v
		}
		for k, v := range binaryHeaders(pairs...) {
			h[k] = v
		}
		return h
	}
	person := []byte(`{"name":"Bin Ary","email":"b@example.com"}`)
	tests := []struct {
		name    string
		key     string
		value   []byte
		headers goka.Headers
		errHas  string
	}{
		{"attribute smuggled after data", "c-1", []byte(`{"name":"x"}, "expectedversion": "9"`), kcatBinary, "not one JSON value"},
		{"value not JSON", "c-1", []byte(`{not json`), kcatBinary, "not one JSON value"},
		{"data as an array", "c-1", []byte(`[1]`), kcatBinary, "must be a JSON object"},
		{"data as a string", "c-1", []byte(`"x"`), kcatBinary, "must be a JSON object"},
		{"specversion missing", "c-1", person, binaryHeaders("ce_specversion=", "ce_id=1", "ce_source=/s", "ce_type=customer.registered"), "specversion must not be empty"},
		{"id missing", "c-1", person, binaryHeaders("ce_specversion=1.0", "ce_source=/s", "ce_type=customer.registered"), "id is required"},
		{"a foreign data content type", "c-1", person, with("content-type=application/avro"), "is not application/json"},
		{"ce_datacontenttype contradicts content-type", "c-1", person, with("ce_datacontenttype=text/plain"), "contradicts content-type"},
		{"data as a header", "c-1", person, with("ce_data=x"), "data is the record value"},
		{"empty attribute name", "c-1", person, with("ce_=x"), "data is the record value"},
		{"attribute name with a dash", "c-1", person, with("ce_trace-parent=x"), "does not name an attribute"},
		{"attribute name in upper case", "c-1", person, with("ce_ID=x"), "case-sensitive"},
		{"header value not UTF-8", "c-1", person, with("ce_source=/\xff"), "not valid UTF-8"},
		{"subject differs from key", "c-1", person, with("ce_subject=c-2"), "differs from key"},
		{"key too long", strings.Repeat("k", MaxKeyLength+1), person, kcatBinary, "exceeds 128"},
		{"value over the limit", "c-1", []byte(`{"name":"` + strings.Repeat("n", MaxEventBytes) + `"}`), kcatBinary, "exceed the 65536-byte limit"},
		{"rendering over the limit", "c-1", []byte(`{"name":"` + strings.Repeat("n", MaxEventBytes-120) + `"}`), kcatBinary, "exceeds the 65536-byte limit"},
		{"huge ce_ header", "c-1", person, with("ce_pad=" + strings.Repeat("p", MaxEventBytes)), "exceed the 65536-byte limit"},
		{"tombstone of a type that needs data", "c-1", nil, kcatBinary, "name is required"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			ev, err := DecodeRecord(test.key, test.value, test.headers)
			if err == nil && test.errHas == "name is required" {
				// The decoder accepts a registration without data; the
				// fold rejects it. Either way it must not fold.
				if next, d := Apply(Customer{}, ev); d.Outcome != Rejected {
					t.Fatalf("registration without data folded to %+v", next)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), test.errHas) {
				t.Fatalf("DecodeRecord = %+v, %v; want malformed with %q", ev, err, test.errHas)
			}
			if !strings.HasPrefix(err.Error(), "binary mode: ") {
				t.Errorf("error %q does not say binary mode", err)
			}
		})
	}
}

func TestDecodeRecordBinaryModeValues(t *testing.T) {
	// The Kafka binding carries header values as UTF-8 text, without the
	// HTTP binding's percent-encoding: a '%' is a '%'.
	ev, err := DecodeRecord("c-1", []byte(`{"name":"A","email":"a@example.com"}`), binaryHeaders(
		"ce_specversion=1.0", "ce_id=id%201", "ce_source=/a%2Fb ü", "ce_type=customer.registered",
		"ce_time=2026-01-02T03:04:05Z", "ce_expectedversion=0", "ce_partitionkey=other", "ce_traceparent=00-1"))
	if err != nil {
		t.Fatalf("DecodeRecord: %v", err)
	}
	if ev.ID != "id%201" || ev.Source != "/a%2Fb ü" || ev.ExpectedVersion == nil || *ev.ExpectedVersion != 0 ||
		ev.Time.Format("2006-01-02T15:04:05Z07:00") != "2026-01-02T03:04:05Z" {
		t.Errorf("DecodeRecord = %+v (expected version %v)", ev, ev.ExpectedVersion)
	}
	// The record key is the customer id: a partitionkey extension is
	// carried, never read, in both modes.
	if ev.Key != "c-1" {
		t.Errorf("key = %q, want the record key c-1", ev.Key)
	}
	// An event without data is a record without value.
	ev, err = DecodeRecord("c-1", nil, binaryHeaders("ce_specversion=1.0", "ce_id=r", "ce_source=/s", "ce_type=customer.reactivated"))
	if err != nil || ev.Type != TypeReactivated {
		t.Errorf("binary-mode event without data = %+v, %v", ev, err)
	}
}

// TestProcessorFoldsBinaryMode runs the kcat record through the
// processor: before binary mode it was dead-lettered as "malformed:
// specversion is required".
func TestProcessorFoldsBinaryMode(t *testing.T) {
	h := startProcessor(t, 1)
	h.consume(t, "cust-b", []byte(`{"name":"Bin Ary","email":"b@example.com"}`), tester.WithHeaders(kcatBinary))
	h.consume(t, "cust-b", nil, tester.WithHeaders(binaryHeaders(
		"ce_specversion=1.0", "ce_id=b-2", "ce_source=/sdk", "ce_type=customer.suspended", "ce_expectedversion=1")))
	h.wantNoDeadLetters(t)
	c := h.customer(t, "cust-b")
	if c == nil || c.Name != "Bin Ary" || c.Version != 2 || c.Status != StatusSuspended {
		t.Fatalf("customer = %+v, want Bin Ary suspended at version 2", c)
	}
	// A bad binary record is dead-lettered with its headers.
	bad := binaryHeaders("ce_specversion=1.0", "ce_id=b-3", "ce_source=/sdk", "ce_type=customer.renamed", "ce_expectedversion=-1")
	h.consume(t, "cust-b", []byte(`{"name":"X"}`), tester.WithHeaders(bad))
	headers, _, value, ok := h.dlq.NextRawWithHeaders()
	if !ok {
		t.Fatal("no dead letter")
	}
	if string(value) != `{"name":"X"}` || string(headers["ce_id"]) != "b-3" || string(headers[HeaderReason]) != ReasonMalformed ||
		!strings.Contains(string(headers[HeaderError]), "binary mode") {
		t.Errorf("dead letter %s with headers %q", value, headers)
	}
}

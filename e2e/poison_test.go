package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
)

// poiBase is a valid customer.renamed event. Each kind of bad record
// changes one thing in it, or replaces it: that one thing is what the
// processor must catch. {K} becomes the record key, {ID} an id unique to
// the kind.
const poiBase = `{"specversion":"1.0","id":"{ID}","source":"/poison","type":"customer.renamed","subject":"{K}","time":"2026-02-01T00:00:00Z","data":{"name":"Poison {ID}"}}`

// poiKind is one kind of bad record.
type poiKind struct {
	name string
	// key is the record key when ownKey is set (nil is a null key);
	// otherwise the key is a sample customer's id, so that the test also
	// shows the bad record leaves that customer alone.
	key    []byte
	ownKey bool
	value  func(key, id string) []byte
	// headers are the record's own headers.
	headers        []kgo.RecordHeader
	wrongPartition bool
	// reason is the eventfold.reason expected, malformed by default;
	// errHas is a part of eventfold.error that says the right thing is wrong.
	reason string
	errHas string
	// What the dead letter had to give up to fit one record.
	truncated, keyTruncated, headersDropped bool
}

// poiTemplate is a value with {K} and {ID} filled in.
func poiTemplate(s string) func(key, id string) []byte {
	return func(key, id string) []byte {
		return []byte(strings.NewReplacer("{K}", key, "{ID}", id).Replace(s))
	}
}

// poiChange is poiBase with one substring replaced.
func poiChange(old, new string) func(key, id string) []byte { return poiChanges(old, new) }

// poiChanges is poiBase with substrings replaced: old, new, old, new...
func poiChanges(pairs ...string) func(key, id string) []byte {
	s := poiBase
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			panic("poiChanges: " + pairs[i] + " is not in the base event") // a typo in the table of kinds
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return poiTemplate(s)
}

// poiBytes is a fixed value.
func poiBytes(b []byte) func(key, id string) []byte { return func(string, string) []byte { return b } }

// poiUTF16 encodes a valid event as UTF-16, the way a Windows or Java
// producer that forgot its charset sends it.
func poiUTF16(order binary.AppendByteOrder, bom bool) func(key, id string) []byte {
	return func(key, id string) []byte {
		units := utf16.Encode([]rune(string(poiTemplate(poiBase)(key, id))))
		var out []byte
		if bom {
			out = order.AppendUint16(out, 0xfeff)
		}
		for _, u := range units {
			out = order.AppendUint16(out, u)
		}
		return out
	}
}

// poiPadded is a valid event grown to n bytes by an unknown attribute, so
// that its size alone is wrong.
func poiPadded(n int) func(key, id string) []byte {
	return func(key, id string) []byte {
		v := poiTemplate(poiBase)(key, id)
		pad := n - len(v) - len(`,"pad":""`)
		return append(v[:len(v)-1], []byte(`,"pad":"`+strings.Repeat("p", max(pad, 0))+`"}`)...)
	}
}

func poiRandom(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func poiGzip(key, id string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(poiTemplate(poiBase)(key, id)) // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	return buf.Bytes()
}

func poiHeaders(n int, value func(i int) []byte) []kgo.RecordHeader {
	out := make([]kgo.RecordHeader, n)
	for i := range out {
		out[i] = kgo.RecordHeader{Key: fmt.Sprintf("garbage-%04d", i), Value: value(i)}
	}
	return out
}

// Garbage headers. Functions, not variables: each record gets its own.
func poiBinaryHeaders() []kgo.RecordHeader {
	return []kgo.RecordHeader{
		{Key: "bin", Value: []byte{0x00, 0xff, 0xfe, 0x80, 0x01}},
		{Key: "\xff\xfekey", Value: []byte("\xc3\x28")},
		{Key: "empty", Value: []byte{}},
		{Key: "null", Value: nil},
		{Key: "", Value: []byte("empty key")},
	}
}

func poiThousandHeaders() []kgo.RecordHeader {
	return poiHeaders(1000, func(i int) []byte { return []byte(strconv.Itoa(i)) })
}

func poiHugeHeader() []kgo.RecordHeader {
	return []kgo.RecordHeader{{Key: "huge", Value: bytes.Repeat([]byte("h"), 512<<10)}}
}

func poiSpoofedHeaders() []kgo.RecordHeader {
	return []kgo.RecordHeader{
		{Key: processor.HeaderReason, Value: []byte("wrong_partition")},
		{Key: processor.HeaderError, Value: []byte("")},
		{Key: processor.HeaderOffset, Value: []byte("-1")},
	}
}

// poiKinds are the bad records. Kafka's limits bound what can be tried:
// the broker refuses a record batch over max.message.bytes (1,048,588
// bytes on kfake, measured after compression), so the largest records
// here are just under it, or compress below it.
func poiKinds() []poiKind {
	deep := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	malformedOnWrongPartition := poiChange(`"id":"{ID}"`, `"id":7`)
	return []poiKind{
		// Encodings.
		{name: "UTF-16LE with BOM", value: poiUTF16(binary.LittleEndian, true), errHas: "UTF-8"},
		{name: "UTF-16BE without BOM", value: poiUTF16(binary.BigEndian, false), errHas: "JSON"},
		{name: "UTF-8 BOM prefix", value: func(k, id string) []byte { return append([]byte("\xef\xbb\xbf"), poiTemplate(poiBase)(k, id)...) }, errHas: "JSON"},
		{name: "latin-1 name", value: poiChange(`"Poison {ID}"`, "\"M\xfcller {ID}\""), errHas: "UTF-8"},
		{name: "invalid UTF-8 sequence in a string", value: poiChange(`"Poison {ID}"`, "\"bad \xc3\x28 {ID}\""), errHas: "UTF-8"},
		{name: "overlong UTF-8 encoding", value: poiChange(`"/poison"`, "\"\xc0\xafpoison\""), errHas: "UTF-8"},
		{name: "UTF-8 encoded surrogate half", value: poiChange(`"Poison {ID}"`, "\"\xed\xa0\x80 {ID}\""), errHas: "UTF-8"},
		{name: "raw NUL byte in a string", value: poiChange(`"Poison {ID}"`, "\"Poi\x00son {ID}\""), errHas: "JSON"},
		{name: "NUL bytes only", value: poiBytes([]byte{0, 0, 0, 0}), errHas: "JSON"},
		{name: "gzip-compressed event", value: poiGzip, errHas: "UTF-8"},
		{name: "schema-registry framing before the JSON", value: func(k, id string) []byte { return append([]byte{0, 0, 0, 0, 1}, poiTemplate(poiBase)(k, id)...) }, errHas: "JSON"},
		{name: "binary garbage", value: poiBytes(poiRandom(256, 1)), errHas: "UTF-8"},

		// Not one JSON object.
		{name: "empty value", ownKey: true, key: []byte("poison-empty-value"), value: poiBytes([]byte{}), errHas: "empty value"},
		{name: "whitespace only", value: poiBytes([]byte(" \n\t\r ")), errHas: "JSON"},
		{name: "top-level array", value: poiTemplate("[" + poiBase + "]"), errHas: "JSON"},
		{name: "top-level string", value: poiBytes([]byte(`"customer.renamed"`)), errHas: "JSON"},
		{name: "top-level number", value: poiBytes([]byte(`42`)), errHas: "JSON"},
		{name: "top-level true", value: poiBytes([]byte(`true`)), errHas: "JSON"},
		{name: "top-level null", value: poiBytes([]byte(`null`)), errHas: "not a JSON object"},
		{name: "truncated JSON", value: func(k, id string) []byte { v := poiTemplate(poiBase)(k, id); return v[:len(v)/2] }, errHas: "JSON"},
		{name: "trailing garbage after the object", value: func(k, id string) []byte { return append(poiTemplate(poiBase)(k, id), "garbage"...) }, errHas: "trailing"},
		{name: "two concatenated objects", value: poiTemplate(poiBase + poiBase), errHas: "trailing"},
		{name: "JSON with comments", value: poiChange(`{"specversion"`, `{/* c */"specversion"`), errHas: "JSON"},
		{name: "single-quoted strings", value: poiChange(`"source":"/poison"`, `'source':'/poison'`), errHas: "JSON"},

		// Sizes.
		{name: "one byte over 64 KiB", value: poiPadded(processor.MaxEventBytes + 1), errHas: "exceeds"},
		{name: "70 KiB value", value: poiPadded(70 << 10), errHas: "exceeds"},
		{name: "1 MiB value", value: poiPadded(1<<20 - 8<<10), errHas: "exceeds"},
		{name: "900 KiB of random bytes", value: poiBytes(poiRandom(900<<10, 2)), errHas: "exceeds"},
		// Incompressible and at the broker's limit: the dead letter cannot
		// hold it beside its headers, so its value is cut.
		{name: "random value at the broker's limit", value: poiBytes(poiRandom(1<<20-200, 3)), errHas: "exceeds", truncated: true},

		// Wrong JSON types.
		{name: "id as number", value: poiChange(`"id":"{ID}"`, `"id":12345`), errHas: "id must be a string"},
		{name: "type as object", value: poiChange(`"type":"customer.renamed"`, `"type":{"name":"customer.renamed"}`), errHas: "type must be a string"},
		{name: "source as array", value: poiChange(`"source":"/poison"`, `"source":["/poison"]`), errHas: "source must be a string"},
		{name: "subject as boolean", value: poiChange(`"subject":"{K}"`, `"subject":true`), errHas: "subject must be a string"},
		{name: "time as number", value: poiChange(`"time":"2026-02-01T00:00:00Z"`, `"time":1769904000`), errHas: "time must be a string"},
		{name: "data as array", value: poiChange(`"data":{"name":"Poison {ID}"}`, `"data":[{"name":"Poison {ID}"}]`), errHas: "JSON object"},
		{name: "data null", value: poiChange(`"data":{"name":"Poison {ID}"}`, `"data":null`), errHas: "JSON object"},
		{name: "data as string", value: poiChange(`"data":{"name":"Poison {ID}"}`, `"data":"{\"name\":\"x\"}"`), errHas: "JSON object"},
		{name: "name as number", value: poiChange(`"name":"Poison {ID}"`, `"name":42`), errHas: "data of customer.renamed"},
		{name: "email as object", value: poiChanges(`"type":"customer.renamed"`, `"type":"customer.email_changed"`, `"data":{"name":"Poison {ID}"}`, `"data":{"email":{"address":"a@example.com"}}`), errHas: "data of customer.email_changed"},
		{name: "address as string", value: poiChanges(`"type":"customer.renamed"`, `"type":"customer.address_changed"`, `"data":{"name":"Poison {ID}"}`, `"data":{"address":"1 Main St"}`), errHas: "data of customer.address_changed"},
		{name: "country as number", value: poiChanges(`"type":"customer.renamed"`, `"type":"customer.address_changed"`, `"data":{"name":"Poison {ID}"}`, `"data":{"address":{"line1":"1 Main St","city":"X","postal_code":"1","country":49}}`), errHas: "data of customer.address_changed"},

		// Numbers.
		{name: "expectedversion negative", value: poiChange(`"time"`, `"expectedversion":-1,"time"`), errHas: "expectedversion"},
		{name: "expectedversion float", value: poiChange(`"time"`, `"expectedversion":1.5,"time"`), errHas: "expectedversion"},
		{name: "expectedversion 1e400", value: poiChange(`"time"`, `"expectedversion":1e400,"time"`), errHas: "expectedversion"},
		{name: "expectedversion 99999999999999999999", value: poiChange(`"time"`, `"expectedversion":99999999999999999999,"time"`), errHas: "expectedversion"},
		{name: "expectedversion string with plus sign", value: poiChange(`"time"`, `"expectedversion":"+1","time"`), errHas: "expectedversion"},
		{name: "expectedversion hex string", value: poiChange(`"time"`, `"expectedversion":"0x1","time"`), errHas: "expectedversion"},
		// "a string of digits", says the contract; "-0" is not one.
		{name: "expectedversion string minus zero", value: poiChange(`"time"`, `"expectedversion":"-0","time"`), errHas: "expectedversion"},
		{name: "expectedversion boolean", value: poiChange(`"time"`, `"expectedversion":true,"time"`), errHas: "expectedversion"},
		{name: "expectedversion null", value: poiChange(`"time"`, `"expectedversion":null,"time"`), errHas: "expectedversion"},

		// Attributes.
		{name: "time not RFC 3339", value: poiChange(`"2026-02-01T00:00:00Z"`, `"yesterday"`), errHas: "RFC 3339"},
		{name: "time in RFC 1123", value: poiChange(`"2026-02-01T00:00:00Z"`, `"Sun, 01 Feb 2026 00:00:00 GMT"`), errHas: "RFC 3339"},
		{name: "time on February 30", value: poiChange(`"2026-02-01T00:00:00Z"`, `"2026-02-30T00:00:00Z"`), errHas: "RFC 3339"},
		{name: "specversion 0.3", value: poiChange(`"specversion":"1.0"`, `"specversion":"0.3"`), errHas: "specversion"},
		{name: "specversion missing", value: poiChange(`"specversion":"1.0",`, ``), errHas: "specversion"},
		{name: "specversion 1.0 as number", value: poiChange(`"specversion":"1.0"`, `"specversion":1.0`), errHas: "specversion must be a string"},
		{name: "id empty", value: poiChange(`"id":"{ID}"`, `"id":"","x":"{ID}"`), errHas: "id must not be empty"},
		{name: "source missing", value: poiChange(`"source":"/poison",`, `"x":"{ID}",`), errHas: "source is required"},
		{name: "id over 256 bytes", value: poiChange(`"id":"{ID}"`, `"id":"{ID}`+strings.Repeat("i", processor.MaxIDBytes+1)+`"`), errHas: "exceeds the 256-byte limit"},
		{name: "source over 1024 bytes", value: poiChange(`"source":"/poison"`, `"source":"/`+strings.Repeat("s", processor.MaxSourceBytes)+`"`), errHas: "exceeds the 1024-byte limit"},
		{name: "type missing", value: poiChange(`"type":"customer.renamed",`, ``), errHas: "type is required"},
		{name: "unknown type", value: poiChange(`"customer.renamed"`, `"customer.promoted"`), errHas: "unknown event type"},
		{name: "type in another case", value: poiChange(`"customer.renamed"`, `"Customer.Renamed"`), errHas: "unknown event type"},
		{name: "datacontenttype text/plain", value: poiChange(`"time"`, `"datacontenttype":"text/plain","time"`), errHas: "datacontenttype"},
		{name: "subject empty", value: poiChange(`"subject":"{K}"`, `"subject":""`), errHas: "subject"},

		// Keys.
		{name: "key/subject mismatch", value: poiChange(`"subject":"{K}"`, `"subject":"cust-someone-else"`), errHas: "differs from key"},
		{name: "null key", ownKey: true, key: nil, value: poiChange(`"subject":"{K}",`, ``), errHas: "empty key"},
		{name: "empty key", ownKey: true, key: []byte{}, value: poiChange(`"subject":"{K}",`, `"x":1,`), errHas: "empty key"},
		{name: "129-byte key", ownKey: true, key: []byte(strings.Repeat("k", 129)), value: poiTemplate(poiBase), errHas: "exceeds 128"},
		{name: "key with a slash", ownKey: true, key: []byte("cust/0001"), value: poiTemplate(poiBase), errHas: "invalid character"},
		{name: "key with a space", ownKey: true, key: []byte("cust 0001"), value: poiTemplate(poiBase), errHas: "invalid character"},
		{name: "key with unicode", ownKey: true, key: []byte("cüst-0001"), value: poiChange(`"subject":"{K}",`, ``), errHas: "invalid character"},
		{name: "key of invalid UTF-8", ownKey: true, key: []byte("cust-\xff\xfe"), value: poiChange(`"subject":"{K}",`, ``), errHas: "invalid character"},
		{name: "key with a NUL byte", ownKey: true, key: []byte("cust-0001\x00"), value: poiChange(`"subject":"{K}",`, ``), errHas: "invalid character"},
		{name: "100 KiB key", ownKey: true, key: bytes.Repeat([]byte("k"), 100<<10), value: poiChange(`"subject":"{K}",`, ``), errHas: "exceeds 128"},
		// A huge key beside a huge value: the dead letter keeps 1 KiB of
		// the key and cuts the value.
		{name: "100 KiB key and a value at the broker's limit", ownKey: true, key: bytes.Repeat([]byte("q"), 100<<10),
			value: poiBytes(bytes.Repeat([]byte("v"), 1<<20-600)), errHas: "exceeds 128", keyTruncated: true, truncated: true},

		// Structure.
		{name: "1000 levels of nesting in data", value: poiChange(`"data":{"name":"Poison {ID}"}`, `"data":{"name":"Poison {ID}","x":`+deep(1000)+`}`), errHas: "nested deeper"},
		{name: "17 levels of nesting", value: poiChange(`"data":{"name":"Poison {ID}"}`, `"data":{"name":"Poison {ID}","x":`+deep(15)+`}`), errHas: "nested deeper"},
		{name: "30,000 nested arrays", value: poiChange(`"time"`, `"x":`+strings.Repeat("[", 30000)+strings.Repeat("]", 30000)+`,"time"`), errHas: "nested deeper"},
		{name: "duplicate id", value: poiChange(`"source"`, `"id":"{ID}-2","source"`), errHas: "duplicate key"},
		{name: "duplicate type with different values", value: poiChange(`"subject"`, `"type":"customer.erased","subject"`), errHas: "duplicate key"},
		{name: "duplicate name in data", value: poiChange(`"name":"Poison {ID}"`, `"name":"Poison {ID}","name":"Other"`), errHas: "duplicate key"},
		{name: "duplicate id through an escape", value: poiChange(`"source"`, `"\u0069d":"{ID}-2","source"`), errHas: "duplicate key"},
		{name: "duplicate country in address", value: poiChanges(`"type":"customer.renamed"`, `"type":"customer.address_changed"`, `"data":{"name":"Poison {ID}"}`, `"data":{"address":{"line1":"1 Main St","city":"X","postal_code":"1","country":"DE","country":"FR"}}`), errHas: "duplicate key"},
		{name: "attribute ID in upper case", value: poiChange(`"id":"{ID}"`, `"ID":"{ID}"`), errHas: "case-sensitive"},
		{name: "attribute Type capitalized", value: poiChange(`"type":"customer.renamed"`, `"Type":"customer.renamed"`), errHas: "case-sensitive"},
		{name: "data field Name capitalized", value: poiChange(`"name":"Poison {ID}"`, `"Name":"Poison {ID}"`), errHas: "case-sensitive"},
		{name: "upper-case attribute through an escape", value: poiChange(`"id":"{ID}"`, `"I\u0044":"{ID}"`), errHas: "case-sensitive"},

		// Headers with garbage on a bad value: the dead letter keeps them.
		{name: "binary headers on a bad value", headers: poiBinaryHeaders(), value: poiBytes([]byte("{not json")), errHas: "JSON"},
		{name: "1000 headers on a bad value", headers: poiThousandHeaders(), value: poiBytes([]byte("{not json either")), errHas: "JSON"},
		{name: "512 KiB header on a bad value", headers: poiHugeHeader(), value: poiChange(`"customer.renamed"`, `"customer.huge_header"`), errHas: "unknown event type"},
		{name: "repeated header keys on a bad value", headers: []kgo.RecordHeader{{Key: "dup", Value: []byte("1")}, {Key: "dup", Value: []byte("2")}, {Key: "dup", Value: []byte("3")}},
			value: poiBytes([]byte("{still not json")), errHas: "JSON"},
		{name: "spoofed eventfold headers on a bad value", headers: poiSpoofedHeaders(), value: poiChange(`"customer.renamed"`, `"customer.spoofed"`), errHas: "unknown event type"},
		// Too much to keep: the original headers go, their count stays.
		{name: "900 KiB header beside a 200 KiB bad value", headers: []kgo.RecordHeader{{Key: "huge", Value: bytes.Repeat([]byte("H"), 900<<10)}},
			value: poiBytes(bytes.Repeat([]byte("w"), 200<<10)), errHas: "exceeds", headersDropped: true},

		// The same ce_* headers beside any other content type make a
		// binary-mode record (the binding's rule), whose specversion 0.3
		// is not 1.0: the structured value does not rescue it.
		{name: "binary-mode headers that contradict a structured value", headers: poiContradictingCEHeaders("application/avro"),
			value: poiTemplate(poiBase), errHas: "binary mode: malformed event: specversion"},

		// Tombstones.
		{name: "tombstone", ownKey: true, key: []byte("poison-tombstone"), value: poiBytes(nil), errHas: "empty value"},
		{name: "tombstone with binary headers", ownKey: true, key: []byte("poison-tombstone-headers"), headers: poiBinaryHeaders(), value: poiBytes(nil), errHas: "empty value"},

		// Partitions.
		{name: "valid event on the wrong partition", value: poiTemplate(poiBase), wrongPartition: true, reason: processor.ReasonWrongPartition, errHas: "belongs to partition"},
		{name: "malformed event on the wrong partition", value: malformedOnWrongPartition, wrongPartition: true, errHas: "id must be a string"},
	}
}

// poiGoodHeaders are garbage headers on good events: headers are not part
// of the event contract, so these events fold as if they had none.
func poiGoodHeaders() [][]kgo.RecordHeader {
	return [][]kgo.RecordHeader{
		poiBinaryHeaders(),
		poiThousandHeaders(),
		poiHugeHeader(),
		{{Key: processor.HeaderReason, Value: []byte("malformed")}, {Key: processor.HeaderError, Value: []byte("spoofed")}},
		// CloudEvents ce_* headers that contradict a structured-mode value:
		// the application/cloudevents+json content type makes the record
		// structured, and the binding lets such a record repeat attributes
		// as headers, which are not read.
		poiContradictingCEHeaders("application/cloudevents+json; charset=UTF-8"),
		{{Key: "dup", Value: []byte("1")}, {Key: "dup", Value: []byte("2")}, {Key: "dup", Value: []byte("3")}},
	}
}

func poiContradictingCEHeaders(contentType string) []kgo.RecordHeader {
	return []kgo.RecordHeader{{Key: "ce_type", Value: []byte("customer.erased")}, {Key: "ce_subject", Value: []byte("someone-else")},
		{Key: "ce_specversion", Value: []byte("0.3")}, {Key: "content-type", Value: []byte(contentType)}}
}

// poiNearMisses are unusual but valid events: the contract accepts them,
// so the poison checks must not. Each registers a customer of its own.
func poiNearMisses() []testkit.Line {
	reg := func(key, extra, data string) testkit.Line {
		return testkit.Line{Key: key, Value: []byte(fmt.Sprintf(
			`{"specversion":"1.0","id":"near-%s","source":"/poison","type":"customer.registered","time":"2026-02-02T00:00:00Z"%s,"data":%s}`, key, extra, data))}
	}
	const person = `{"name":"Near Miss","email":"near@example.com"}`
	exact := reg("near-64k", `,"pad":""`, person)
	exact.Value = bytes.Replace(exact.Value, []byte(`"pad":""`), []byte(`"pad":"`+strings.Repeat("p", processor.MaxEventBytes-len(exact.Value))+`"`), 1)
	nested := `{"name":"Near Miss","email":"near@example.com","x":` + strings.Repeat(`{"a":`, 13) + "1e400" + strings.Repeat("}", 13) + `}`
	long := strings.Repeat("l", processor.MaxKeyLength)
	return []testkit.Line{
		reg("near-lowercase-time", "", person),
		{Key: "near-lowercase-time", Value: []byte(`{"specversion":"1.0","id":"near-lower-2","source":"/poison","type":"customer.suspended","time":"2026-02-03t04:05:06.789z"}`)},
		reg("near-string-version", `,"expectedversion":"0"`, person),
		reg("near-charset", `,"datacontenttype":"application/json; charset=utf-8"`, person),
		reg("near-extensions", `,"traceparent":"00-abc-def-01","partitionkey":{"any":[1,2,3]}`, nested),
		reg("near-escapes", ``, `{"name":"\u00c5sa \ud83d\ude00 \"Q\" \\ \/","email":"near@example.com"}`),
		{Key: "near-pretty", Value: []byte("\n  {\n\t\"specversion\" : \"1.0\",\r\n  \"id\" : \"near-pretty\", \"source\":\"/poison\",\n  \"type\":\"customer.registered\", \"time\":\"2026-02-02T00:00:00Z\",\n  \"data\" : { \"name\" : \"Near Miss\" , \"email\":\"near@example.com\" }\n}\n  ")},
		exact,
		reg(long, `,"subject":"`+long+`"`, person),
		reg("Near.Miss_0-9:all", ``, person),
	}
}

// poiItem is one record of the mixed stream: a bad kind or a good line.
type poiItem struct {
	record *kgo.Record
	kind   *poiKind
}

func TestPoisonCorpus(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	bad, good, stream := poiStream(t, p.topics.Partitions)
	poiProduce(t, p, stream)

	// Read the dead letters first, without failing on a missing one, so
	// that a bad record the fold took shows up below under its name.
	dlq := p.readDeadLetters(t, len(bad), 30*time.Second)
	if len(dlq) != len(bad) {
		t.Errorf("%d dead letters for %d bad records", len(dlq), len(bad))
	}
	byOffset := map[string]*kgo.Record{}
	for _, r := range dlq {
		h := headers(r)
		byOffset[h[processor.HeaderPartition]+"/"+h[processor.HeaderOffset]] = r
	}
	want := map[string]int{}
	for i, b := range bad {
		k := b.kind
		reason := k.reason
		if reason == "" {
			reason = processor.ReasonMalformed
		}
		want[reason]++
		t.Run(k.name, func(t *testing.T) {
			dl := byOffset[fmt.Sprintf("%d/%d", b.record.Partition, b.record.Offset)]
			if dl == nil {
				t.Fatalf("no dead letter for partition %d offset %d; %s", b.record.Partition, b.record.Offset,
					poiFoldedAs(t, p, string(b.record.Key), fmt.Sprintf("poison-%03d", i)))
			}
			poiCheckDeadLetter(t, p, b.record, dl, k, reason)
		})
	}
	t.Logf("%d kinds of bad record, %d good events (%d with garbage headers, %d near misses)",
		len(bad), len(good), len(poiGoodHeaders()), len(poiNearMisses()))

	for reason, n := range want {
		if got := counterValue(t, p.reg, "eventfold_events_rejected_total", "reason", reason); got != float64(n) {
			t.Errorf("eventfold_events_rejected_total{reason=%q} = %v, want %d", reason, got, n)
		}
		if got := counterValue(t, p.reg, "eventfold_dlq_records_total", "reason", reason); got != float64(n) {
			t.Errorf("eventfold_dlq_records_total{reason=%q} = %v, want %d", reason, got, n)
		}
	}
	for _, name := range []string{"eventfold_processor_restarts_total", "eventfold_view_restarts_total"} {
		if got := sumCounter(t, p.reg, name); got != 0 {
			t.Errorf("%s = %v, want 0: bad input must not stop anything", name, got)
		}
	}

	p.client.AwaitFold(t, testkit.ReferenceFold(t, good), 60*time.Second)
	for _, nm := range poiNearMisses() {
		if status, _ := p.client.Customer(t, nm.Key, ""); status != http.StatusOK {
			t.Errorf("near miss %s: status %d, want 200", nm.Key, status)
		}
	}
}

// poiStream builds the records to produce: the good lines (the sample,
// some with garbage headers, and the near misses among them) with the
// bad records spread through them, mid-stream.
func poiStream(t *testing.T, partitions int32) (bad []*poiItem, good []testkit.Line, stream []*poiItem) {
	t.Helper()
	sample := testkit.ReadLines(t, testkit.SampleFile(t))
	var sampleKeys []string
	for id := range testkit.ReferenceFold(t, sample) {
		sampleKeys = append(sampleKeys, id)
	}
	sort.Strings(sampleKeys)

	kinds := poiKinds()
	bad = make([]*poiItem, len(kinds))
	for i := range kinds {
		k := &kinds[i]
		key := k.key
		if !k.ownKey {
			key = []byte(sampleKeys[i%len(sampleKeys)])
		}
		r := &kgo.Record{Key: key, Value: k.value(string(key), fmt.Sprintf("poison-%03d", i)), Headers: k.headers}
		r.Partition = processor.PartitionFor(string(key), partitions)
		if k.wrongPartition {
			r.Partition = (r.Partition + 1) % partitions
		}
		bad[i] = &poiItem{record: r, kind: k}
	}

	// The good stream: the sample, some of it with garbage headers, then
	// the near misses spread through it.
	good = append([]testkit.Line(nil), sample...)
	for i, nm := range poiNearMisses() {
		at := (i + 1) * len(good) / 12
		good = append(good[:at], append([]testkit.Line{nm}, good[at:]...)...)
	}
	goodItems := make([]*poiItem, len(good))
	for i, l := range good {
		r := &kgo.Record{Key: []byte(l.Key), Value: l.Value, Partition: processor.PartitionFor(l.Key, partitions)}
		goodItems[i] = &poiItem{record: r}
	}
	goodHeaders := poiGoodHeaders()
	for i, h := range goodHeaders {
		goodItems[(i+1)*len(goodItems)/(len(goodHeaders)+1)].record.Headers = h
	}

	// Every bad record lands mid-stream, between good ones: bad record j
	// goes before good record (j+1)·n/(len(bad)+1).
	next := 0
	for i, g := range goodItems {
		for ; next < len(bad) && (next+1)*len(goodItems)/(len(bad)+1) == i; next++ {
			stream = append(stream, bad[next])
		}
		stream = append(stream, g)
	}
	return bad, good, stream
}

// poiFoldedAs says what the fold made of a bad record that has no dead
// letter: its decision in the customer's state, if there is one.
func poiFoldedAs(t *testing.T, p *pipeline, key, eventID string) string {
	t.Helper()
	if processor.ValidateKey(key) != nil {
		return "and its key is not a customer id"
	}
	status, body := p.client.Get(t, p.client.Base+"/customers/"+key)
	if status != http.StatusOK {
		return fmt.Sprintf("GET /customers/%s answers %d", key, status)
	}
	var c processor.Customer
	if err := json.Unmarshal(body, &c); err != nil {
		return fmt.Sprintf("GET /customers/%s: %v", key, err)
	}
	for _, d := range c.Decisions {
		if d.EventID == eventID {
			return fmt.Sprintf("the fold decided it instead: %s %s (%s)", d.Outcome, d.Reason, d.Message)
		}
	}
	return "and the fold has no decision on it"
}

// poiCheckDeadLetter checks the dead letter of one bad record.
func poiCheckDeadLetter(t *testing.T, p *pipeline, original, dl *kgo.Record, k *poiKind, reason string) {
	t.Helper()
	if dl == nil {
		t.Fatalf("no dead letter for partition %d offset %d", original.Partition, original.Offset)
	}
	h := headers(dl)
	if h[processor.HeaderReason] != reason {
		t.Errorf("reason %q, want %q (error: %s)", h[processor.HeaderReason], reason, h[processor.HeaderError])
	}
	switch e := h[processor.HeaderError]; {
	case e == "":
		t.Error("no error header")
	case !strings.Contains(e, k.errHas):
		t.Errorf("error %q does not mention %q", e, k.errHas)
	}
	if h[processor.HeaderTopic] != p.topics.Events {
		t.Errorf("topic header %q, want %q", h[processor.HeaderTopic], p.topics.Events)
	}

	poiCheckCopy(t, "key", original.Key, dl.Key, k.keyTruncated, processor.HeaderKeyTruncated, h)
	poiCheckCopy(t, "value", original.Value, dl.Value, k.truncated, processor.HeaderTruncated, h)
	if k.headersDropped {
		if h[processor.HeaderHeadersDropped] != strconv.Itoa(len(original.Headers)) {
			t.Errorf("%s = %q, want %d", processor.HeaderHeadersDropped, h[processor.HeaderHeadersDropped], len(original.Headers))
		}
		return
	}
	// Every original header is kept; ours replace spoofed eventfold.*
	// ones. goka hands headers over as a map, so of a repeated key only
	// the last value survives (documented in the README).
	count := func(hs []kgo.RecordHeader) map[string]int {
		last := map[string]string{}
		for _, h := range hs {
			if !strings.HasPrefix(h.Key, "eventfold.") {
				last[h.Key] = string(h.Value)
			}
		}
		out := map[string]int{}
		for k, v := range last {
			out[k+"="+v]++
		}
		return out
	}
	want, got := count(original.Headers), count(dl.Headers)
	for kv, n := range want {
		if got[kv] != n {
			t.Errorf("original header %q appears %d times in the dead letter, want %d (%d headers kept of %d)",
				poiShort([]byte(kv)), got[kv], n, len(dl.Headers)-len(poiOurHeaders(dl)), len(original.Headers))
			break
		}
	}
}

// poiOurHeaders are the eventfold.* headers of a dead letter.
func poiOurHeaders(r *kgo.Record) []kgo.RecordHeader {
	var out []kgo.RecordHeader
	for _, h := range r.Headers {
		if strings.HasPrefix(h.Key, "eventfold.") {
			out = append(out, h)
		}
	}
	return out
}

// poiCheckCopy checks the key or value (what) of a dead letter: the
// original bytes, or, if truncated, a prefix of them with the truncation
// header h[header] giving the original length.
func poiCheckCopy(t *testing.T, what string, original, got []byte, truncated bool, header string, h map[string]string) {
	t.Helper()
	switch {
	case truncated:
		if h[header] != strconv.Itoa(len(original)) || !bytes.HasPrefix(original, got) {
			t.Errorf("%s of %d bytes, %s %q; want a prefix of the %d-byte %s", what, len(got), header, h[header], len(original), what)
		}
	case !bytes.Equal(got, original):
		t.Errorf("%s %q, want the original %q", what, poiShort(got), poiShort(original))
	}
}

func poiShort(b []byte) string {
	if len(b) > 80 {
		return fmt.Sprintf("%s... (%d bytes)", b[:80], len(b))
	}
	return string(b)
}

// poiProduce produces the stream one record at a time, in order, each to
// the partition it names, and records the offset of each.
func poiProduce(t *testing.T, p *pipeline, stream []*poiItem) {
	t.Helper()
	// A record may be far over kgo's default batch limit before
	// compression; the broker judges it after.
	cl := newProducer(t, p.broker, p.topics.Events, kgo.ProducerBatchMaxBytes(8<<20), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, it := range stream {
		if err := cl.ProduceSync(ctx, it.record).FirstErr(); err != nil {
			name := "a good record"
			if it.kind != nil {
				name = it.kind.name
			}
			t.Fatalf("failed to produce %s (%d-byte value): %v", name, len(it.record.Value), err)
		}
	}
}

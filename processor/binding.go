package processor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/lovoo/goka"
)

// The CloudEvents Kafka protocol binding (cloudevents/spec,
// kafka-protocol-binding.md) carries an event in one of two content modes:
//
//   - structured: the whole event, as the JSON event format, is the record
//     value; a content-type header, if present, is application/cloudevents+json;
//   - binary: the record value is the bare data, and every other attribute
//     travels in a header named ce_<attribute>, with datacontenttype in the
//     content-type header. The SDKs (Go, Java, Python) produce binary by
//     default.
//
// DecodeRecord tells them apart and decodes a binary-mode record by
// rendering it as the equivalent structured JSON and handing that to
// Decode: every check and bound of the contract then applies to both modes
// by construction, and a rule added to Decode needs no second copy here.
const (
	// HeaderContentType is the record header holding the media type: the
	// event format's in structured mode, datacontenttype in binary mode.
	HeaderContentType = "content-type"
	// HeaderAttributePrefix prefixes the attribute headers of binary mode.
	HeaderAttributePrefix = "ce_"
	// MediaTypeCloudEvents is the media type prefix (matched without regard
	// to case) that marks a structured-mode record.
	MediaTypeCloudEvents = "application/cloudevents"
	// MediaTypeCloudEventsJSON is the JSON event format, the only format of
	// structured mode this service reads.
	MediaTypeCloudEventsJSON = "application/cloudevents+json"
	// MediaTypeJSON is the datacontenttype of every event's data.
	MediaTypeJSON = "application/json"
)

// ContentMode is how a record carries its event.
type ContentMode string

// The content modes of the Kafka protocol binding.
const (
	ContentModeStructured ContentMode = "structured"
	ContentModeBinary     ContentMode = "binary"
)

// ParseContentMode reads a content mode's name, as the produce command's
// flag takes it.
func ParseContentMode(s string) (ContentMode, error) {
	switch m := ContentMode(s); m {
	case ContentModeStructured, ContentModeBinary:
		return m, nil
	}
	return "", fmt.Errorf("content mode %q is neither %q nor %q", s, ContentModeStructured, ContentModeBinary)
}

// ContentModeOf says how a record with these headers carries its event.
// As the binding says, a content-type starting with application/cloudevents
// means structured mode, whatever ce_ headers are also present (3.3.3 lets
// a structured record repeat its attributes as headers; they are not
// read). Otherwise the binding defaults to binary mode, but a record
// without a ce_specversion header holds no binary-mode event at all (the
// specversion attribute is required), so such a record is read as
// structured: that keeps every producer that sends plain JSON values, as
// kcat and this service's own writers always have, working. A content-type
// of another CloudEvents format (application/cloudevents+avro, the batch
// format) is malformed: this service reads only the JSON event format.
func ContentModeOf(headers goka.Headers) (ContentMode, error) {
	if ct, ok := contentType(headers); ok && hasPrefixFold(ct, MediaTypeCloudEvents) {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != MediaTypeCloudEventsJSON {
			return "", malformed("content-type %q is not the JSON event format %s", ct, MediaTypeCloudEventsJSON)
		}
		return ContentModeStructured, nil
	}
	if _, ok := headers[HeaderAttributePrefix+"specversion"]; ok {
		return ContentModeBinary, nil
	}
	return ContentModeStructured, nil
}

// DecodeRecord parses one record of the events topic in either content
// mode. Any error it returns wraps ErrMalformed; in binary mode it says so.
func DecodeRecord(key string, value []byte, headers goka.Headers) (Event, error) {
	mode, err := ContentModeOf(headers)
	if err != nil {
		return Event{}, err
	}
	if mode == ContentModeStructured {
		return Decode(key, value)
	}
	structured, err := binaryAsStructured(value, headers)
	if err == nil {
		var ev Event
		if ev, err = Decode(key, structured); err == nil {
			return ev, nil
		}
	}
	return Event{}, fmt.Errorf("binary mode: %w", err)
}

// StructuredValue returns a record of the events topic as a
// structured-mode value: the value itself in structured mode, the event a
// binary-mode record stands for otherwise. History reads use it, so that
// an event reads back as the processor read it, in either mode.
func StructuredValue(value []byte, headers goka.Headers) ([]byte, error) {
	mode, err := ContentModeOf(headers)
	if err != nil || mode == ContentModeStructured {
		return value, err
	}
	return binaryAsStructured(value, headers)
}

// binaryAsStructured renders a binary-mode record as the JSON event format:
// each ce_ header becomes a string attribute (the binding carries every
// attribute as a string; Decode reads expectedversion from a string of
// digits), content-type becomes datacontenttype and the value becomes data.
// The rendering is at least as long as the headers and value together, so
// a record over MaxEventBytes is refused before anything is built.
func binaryAsStructured(value []byte, headers goka.Headers) ([]byte, error) {
	names := make([]string, 0, 8)
	size := len(value)
	for k, v := range headers {
		if strings.HasPrefix(k, HeaderAttributePrefix) {
			names = append(names, k)
			size += len(k) + len(v)
		}
	}
	if size > MaxEventBytes {
		return nil, malformed("value and ce_ headers of %d bytes exceed the %d-byte limit", size, MaxEventBytes)
	}
	if len(value) > 0 && !json.Valid(value) {
		// Checked before splicing: a value such as `{}, "expectedversion": 9`
		// must not add attributes to the rendered event.
		return nil, malformed("value is not one JSON value: the data of binary mode must be a JSON object")
	}
	sort.Strings(names) // a deterministic rendering, so one record always fails alike
	out := make([]byte, 0, size+16*len(names)+32)
	out = append(out, '{')
	for _, k := range names {
		name, v := k[len(HeaderAttributePrefix):], headers[k]
		if err := checkAttributeHeader(k, name, v); err != nil {
			return nil, err
		}
		out = appendMember(out, name, v)
	}
	if ct, ok := contentType(headers); ok {
		if dct, ok := headers[HeaderAttributePrefix+"datacontenttype"]; ok && string(dct) != ct {
			return nil, malformed("header ce_datacontenttype %q contradicts content-type %q", dct, ct)
		}
		if !utf8.ValidString(ct) {
			return nil, malformed("header content-type is not valid UTF-8")
		}
		if _, dup := headers[HeaderAttributePrefix+"datacontenttype"]; !dup {
			out = appendMember(out, "datacontenttype", []byte(ct))
		}
	}
	// The binding writes an event without data as a record without value.
	if len(value) > 0 {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, `"data":`...)
		out = append(out, value...)
	}
	out = append(out, '}')
	return out, nil
}

// checkAttributeHeader refuses a ce_ header that cannot be an attribute:
// CloudEvents names are lower-case letters and digits (upper case passes
// here so that Decode names the case error as in structured mode), data is
// the value, and the binding encodes header values as UTF-8.
func checkAttributeHeader(header, name string, value []byte) error {
	if name == "" || name == "data" {
		return malformed("header %q is not an attribute: data is the record value", header)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || 'A' <= c && c <= 'Z') {
			return malformed("header %q does not name an attribute: names are letters and digits", header)
		}
	}
	if !utf8.Valid(value) {
		return malformed("header %q is not valid UTF-8", header)
	}
	return nil
}

func appendMember(out []byte, name string, value []byte) []byte {
	if len(out) > 1 {
		out = append(out, ',')
	}
	n, _ := json.Marshal(name)          // a string always marshals
	v, _ := json.Marshal(string(value)) // valid UTF-8, checked by the caller
	out = append(out, n...)
	out = append(out, ':')
	return append(out, v...)
}

// contentType finds the content-type header. Kafka header names are
// case-sensitive, but the SDKs' readers lower-case them before matching,
// so any spelling of Content-Type is taken, the exact one first.
func contentType(headers goka.Headers) (string, bool) {
	if v, ok := headers[HeaderContentType]; ok {
		return string(v), true
	}
	for k, v := range headers {
		if strings.EqualFold(k, HeaderContentType) {
			return string(v), true
		}
	}
	return "", false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// EncodeBinary renders a structured-mode event (one JSON event format
// value, as Decode reads) in binary mode: the data as the value, nil when
// the event has none, and every other attribute as a ce_ header, with
// datacontenttype as content-type (application/json when absent, as the
// SDKs write it). String attributes go as they are; others (a numeric
// expectedversion, say) as their JSON text, the binding's string form of
// integers and booleans. The value must be valid: check it with Decode.
func EncodeBinary(structured []byte) ([]byte, goka.Headers, error) {
	members, err := scanEvent(structured)
	if err != nil {
		return nil, nil, malformed("%v", err)
	}
	headers := goka.Headers{HeaderContentType: []byte(MediaTypeJSON)}
	var data []byte
	for _, m := range members {
		switch {
		case m.key == "data":
			data = bytes.TrimSpace(m.value)
			continue
		case string(m.value) == "null":
			continue // an absent attribute
		}
		text := m.value
		if text[0] == '"' {
			var s string
			if err := json.Unmarshal(m.value, &s); err != nil {
				return nil, nil, malformed("%s: %v", m.key, err)
			}
			text = []byte(s)
		}
		if m.key == "datacontenttype" {
			headers[HeaderContentType] = text
			continue
		}
		headers[HeaderAttributePrefix+m.key] = text
	}
	return data, headers, nil
}

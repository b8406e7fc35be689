package processor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Event types of the customer entity.
const (
	TypeRegistered     = "customer.registered"
	TypeRenamed        = "customer.renamed"
	TypeEmailChanged   = "customer.email_changed"
	TypeAddressChanged = "customer.address_changed"
	TypeSuspended      = "customer.suspended"
	TypeReactivated    = "customer.reactivated"
	TypeErased         = "customer.erased"
)

// EventTypes lists every event type the fold knows, in documentation order.
var EventTypes = []string{
	TypeRegistered, TypeRenamed, TypeEmailChanged, TypeAddressChanged,
	TypeSuspended, TypeReactivated, TypeErased,
}

// Limits of the event contract.
const (
	// MaxKeyLength is the longest customer id accepted.
	MaxKeyLength = 128
	// MaxEventBytes bounds one event's JSON: customer events are small, and
	// the bound keeps one record from costing the processor real memory.
	MaxEventBytes = 64 << 10
)

// ErrMalformed marks a record that is not a valid event of the contract.
// Such records go to the dead-letter topic and never reach the fold.
var ErrMalformed = errors.New("malformed event")

// Event is one decoded CloudEvent of the customer entity, plus where it was
// read from. Payload holds the typed data: one of the *Data types below.
type Event struct {
	ID              string
	Source          string
	Type            string
	Subject         string
	Time            time.Time // zero when the producer gave none
	ExpectedVersion *int64    // the "expectedversion" extension, if present
	Payload         any

	// Sealed is set when the personaldata attribute says the personal
	// fields of Payload are sealed (see personal.go); KeyIDs are the data
	// keys they are sealed with, and SealedInvalid the writer's message
	// when their plaintext failed validation.
	Sealed        bool
	KeyIDs        []string
	SealedInvalid string

	// Key is the record key, the customer id.
	Key string
	// Offset is the record's offset in its partition, -1 when unknown. The
	// fold uses it to ignore redelivered records.
	Offset int64
}

// Address is a postal address. Country is an ISO 3166-1 alpha-2 code.
type Address struct {
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

// RegisteredData is the data of customer.registered.
type RegisteredData struct {
	Name    string   `json:"name"`
	Email   string   `json:"email"`
	Address *Address `json:"address,omitempty"`
}

// RenamedData is the data of customer.renamed.
type RenamedData struct {
	Name string `json:"name"`
}

// EmailChangedData is the data of customer.email_changed.
type EmailChangedData struct {
	Email string `json:"email"`
}

// AddressChangedData is the data of customer.address_changed.
type AddressChangedData struct {
	Address *Address `json:"address"`
}

// SuspendedData is the data of customer.suspended.
type SuspendedData struct {
	Reason string `json:"reason,omitempty"`
}

// ReactivatedData is the data of customer.reactivated.
type ReactivatedData struct{}

// ErasedData is the data of customer.erased.
type ErasedData struct{}

func newPayload(eventType string) (any, bool) {
	switch eventType {
	case TypeRegistered:
		return &RegisteredData{}, true
	case TypeRenamed:
		return &RenamedData{}, true
	case TypeEmailChanged:
		return &EmailChangedData{}, true
	case TypeAddressChanged:
		return &AddressChangedData{}, true
	case TypeSuspended:
		return &SuspendedData{}, true
	case TypeReactivated:
		return &ReactivatedData{}, true
	case TypeErased:
		return &ErasedData{}, true
	}
	return nil, false
}

// envelope is the CloudEvents JSON structured-mode wire form.
type envelope struct {
	SpecVersion     attribute
	ID              attribute
	Source          attribute
	Type            attribute
	Subject         attribute
	Time            attribute
	DataContentType attribute
	ExpectedVersion json.RawMessage
	Data            json.RawMessage
	PersonalData    attribute
	PersonalInvalid attribute

	// parsedTime is Time when Time was read without a string.
	parsedTime   time.Time
	isParsedTime bool
}

// attribute is a string attribute of an envelope, set unless absent or
// null. A value, not a *string: a pointer for each attribute of each
// event was an allocation each.
type attribute struct {
	value string
	set   bool
}

// ptr returns the attribute as a pointer into a, nil when it is not set.
func (a *attribute) ptr() *string {
	if !a.set {
		return nil
	}
	return &a.value
}

// ValidateKey reports whether key is a valid customer id: 1 to 128
// characters of letters, digits, '.', '_', '-' and ':'.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrMalformed)
	}
	if len(key) > MaxKeyLength {
		return fmt.Errorf("%w: key of %d bytes exceeds %d", ErrMalformed, len(key), MaxKeyLength)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; !isKeyByte(c) {
			return fmt.Errorf("%w: key has invalid character %q at byte %d", ErrMalformed, c, i)
		}
	}
	return nil
}

// Decode parses one record of the events topic. Any error it returns wraps
// ErrMalformed and says what is wrong.
func Decode(key string, value []byte) (Event, error) {
	if err := ValidateKey(key); err != nil {
		return Event{}, err
	}
	ev, err := decodeValue(value, key)
	if err != nil {
		return Event{}, err
	}
	if ev.Subject != "" && ev.Subject != key {
		return Event{}, malformed("subject %s differs from key %q", quote(ev.Subject), key)
	}
	ev.Key = key
	return ev, nil
}

// DecodeValue parses an event without a record key: the customer id is the
// event's subject, which must then be present and valid. Loaders use it.
func DecodeValue(value []byte) (Event, error) {
	ev, err := decodeValue(value, "")
	if err != nil {
		return Event{}, err
	}
	if ev.Subject == "" {
		return Event{}, malformed("subject is required to know the customer id")
	}
	if err := ValidateKey(ev.Subject); err != nil {
		return Event{}, fmt.Errorf("subject: %w", err)
	}
	ev.Key = ev.Subject
	return ev, nil
}

// malformed builds an ErrMalformed error. Its text goes into a dead
// letter's header and an HTTP answer, so it is cut to maxErrorBytes
// whatever it quotes (encoding/json's errors quote numbers whole).
func malformed(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if len(msg) > maxErrorBytes {
		msg = truncateUTF8(msg, maxErrorBytes) + "…"
	}
	return fmt.Errorf("%w: %s", ErrMalformed, msg)
}

// decodeValue decodes an event; key is the record's key, if any, which
// the subject usually repeats.
func decodeValue(value []byte, key string) (Event, error) {
	switch {
	case len(value) == 0:
		return Event{}, malformed("empty value")
	case len(value) > MaxEventBytes:
		return Event{}, malformed("value of %d bytes exceeds the %d-byte limit", len(value), MaxEventBytes)
	case !utf8.Valid(value):
		return Event{}, malformed("value is not valid UTF-8")
	}
	var scan scanner
	members, err := scan.event(value)
	if err != nil {
		return Event{}, malformed("%v", err)
	}
	env, err := envelopeOf(members, key)
	if err != nil {
		return Event{}, err
	}
	if err := requireString("specversion", env.SpecVersion); err != nil {
		return Event{}, err
	}
	if env.SpecVersion.value != "1.0" {
		return Event{}, malformed("specversion %s is not 1.0", quote(env.SpecVersion.value))
	}
	for _, f := range []struct {
		name  string
		value attribute
		limit int
	}{{"id", env.ID, MaxIDBytes}, {"source", env.Source, MaxSourceBytes}, {"type", env.Type, 0}} {
		if err := requireString(f.name, f.value); err != nil {
			return Event{}, err
		}
		if f.limit > 0 && len(f.value.value) > f.limit {
			return Event{}, malformed("%s of %d bytes exceeds the %d-byte limit", f.name, len(f.value.value), f.limit)
		}
	}
	ev := Event{ID: env.ID.value, Source: env.Source.value, Type: env.Type.value, Offset: -1}
	if env.Subject.set {
		if env.Subject.value == "" {
			return Event{}, malformed("subject must not be empty when present")
		}
		ev.Subject = env.Subject.value
	}
	if ev.Time = env.parsedTime; env.Time.set && !env.isParsedTime {
		t, err := parseEventTime(env.Time.value)
		if err != nil {
			return Event{}, malformed("time %s is not RFC 3339", quote(env.Time.value))
		}
		ev.Time = t
	}
	if ct := env.DataContentType; ct.set && ct.value != "application/json" { // the common value, parsed or not
		if mt, _, err := mime.ParseMediaType(ct.value); err != nil || mt != "application/json" {
			return Event{}, malformed("datacontenttype %s is not application/json", quote(ct.value))
		}
	}
	if len(env.ExpectedVersion) > 0 {
		v, err := parseExpectedVersion(env.ExpectedVersion)
		if err != nil {
			return Event{}, err
		}
		ev.ExpectedVersion = &v
	}
	payload, ok := newPayload(ev.Type)
	if !ok {
		return Event{}, malformed("unknown event type %s", quote(ev.Type))
	}
	plain := true // the payload's strings are bytes of env.Data as they are
	if len(env.Data) > 0 {
		data := bytes.TrimSpace(env.Data)
		if len(data) == 0 || data[0] != '{' {
			return Event{}, malformed("data of %s must be a JSON object", ev.Type)
		}
		if plain = fillPayload(data, payload); !plain {
			payload, _ = newPayload(ev.Type) // fillPayload may have set fields
			if err := json.Unmarshal(data, payload); err != nil {
				return Event{}, malformed("data of %s: %s", ev.Type, describeDataError(err))
			}
		}
	}
	ev.Payload = payload
	// Without the attributes and without the sealed prefix in plain data,
	// no field is or should be sealed: checkSealing would find nothing,
	// after listing the personal fields in a slice of their own.
	if env.PersonalData.set || env.PersonalInvalid.set || !plain || bytes.Contains(env.Data, []byte(SealedPrefix)) {
		if err := checkSealing(&ev, env.PersonalData.ptr(), env.PersonalInvalid.ptr()); err != nil {
			return Event{}, err
		}
	}
	return ev, nil
}

// envelopeOf reads the attributes from the scanned top-level members.
// Strings without escapes are taken as they are (the value is known to be
// valid UTF-8); the rest goes through encoding/json, as does data later.
func envelopeOf(members []member, key string) (envelope, error) {
	var env envelope
	for _, m := range members {
		var target *attribute
		switch m.key {
		case "specversion":
			target = &env.SpecVersion
		case "id":
			target = &env.ID
		case "source":
			target = &env.Source
		case "type":
			target = &env.Type
		case "subject":
			// Mostly the key, spelled without escapes: the key's string
			// then, not a copy.
			if raw := m.value; key != "" && len(raw) == len(key)+2 && raw[0] == '"' && string(raw[1:len(raw)-1]) == key {
				env.Subject = attribute{value: key, set: true}
				continue
			}
			target = &env.Subject
		case "time":
			// The common form is read from the bytes (a string's, which
			// the scanner checked), the rest from the string.
			if raw := m.value; raw[0] == '"' {
				if t, ok := parseTimeZ(raw[1 : len(raw)-1]); ok {
					env.Time, env.parsedTime, env.isParsedTime = attribute{set: true}, t, true
					continue
				}
			}
			target = &env.Time
		case "datacontenttype":
			target = &env.DataContentType
		case PersonalDataAttribute:
			target = &env.PersonalData
		case PersonalDataInvalidAttribute:
			target = &env.PersonalInvalid
		case "expectedversion":
			env.ExpectedVersion = m.value // null too: not a version, so malformed
			continue
		case "data":
			env.Data = m.value
			continue
		default:
			continue // extension attributes are carried, not read
		}
		v, set, err := memberString(m)
		if err != nil {
			return envelope{}, err
		}
		*target = attribute{value: v, set: set}
	}
	return env, nil
}

// sharedValues are attribute values most events carry (the spec version,
// the types, the content type), each shared by every event that holds it
// instead of allocated for each event.
var sharedValues = newNameTable(append([]string{"1.0", "application/json"}, EventTypes...))

// memberString reads a string attribute; set is false for null.
func memberString(m member) (value string, set bool, err error) {
	raw := m.value
	switch {
	case string(raw) == "null":
		return "", false, nil
	case len(raw) < 2 || raw[0] != '"':
		return "", false, malformed("%s must be a string", m.key)
	}
	inner := raw[1 : len(raw)-1]
	if w, ok := sharedValues.find(inner); ok {
		return w, true, nil
	}
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), true, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, malformed("%s: %v", m.key, err)
	}
	return s, true, nil
}

func requireString(name string, v attribute) error {
	if !v.set {
		return malformed("%s is required", name)
	}
	if v.value == "" {
		return malformed("%s must not be empty", name)
	}
	return nil
}

// parseExpectedVersion accepts a JSON integer, or a string of digits since
// CloudEvents' JSON format may carry extension values as strings.
func parseExpectedVersion(raw json.RawMessage) (int64, error) {
	text := string(bytes.TrimSpace(raw))
	if len(text) > 0 && text[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, malformed("expectedversion: %v", err)
		}
		text = s
	}
	v, err := strconv.ParseInt(text, 10, 64)
	if err != nil || v < 0 || strings.HasPrefix(text, "+") || strings.HasPrefix(text, "-") {
		return 0, malformed("expectedversion %s is not a non-negative integer", truncateUTF8(string(raw), maxQuotedBytes))
	}
	return v, nil
}

// Encode renders ev as a CloudEvents JSON structured-mode value, the
// inverse of Decode. Producers of the service use it.
func Encode(ev Event) ([]byte, error) {
	type wire struct {
		SpecVersion     string `json:"specversion"`
		ID              string `json:"id"`
		Source          string `json:"source"`
		Type            string `json:"type"`
		Subject         string `json:"subject,omitempty"`
		Time            string `json:"time,omitempty"`
		ExpectedVersion *int64 `json:"expectedversion,omitempty"`
		Data            any    `json:"data,omitempty"`
	}
	w := wire{SpecVersion: "1.0", ID: ev.ID, Source: ev.Source, Type: ev.Type,
		Subject: ev.Subject, ExpectedVersion: ev.ExpectedVersion, Data: ev.Payload}
	if !ev.Time.IsZero() {
		w.Time = ev.Time.UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("failed to encode event %s: %w", ev.ID, err)
	}
	return b, nil
}

// describeDataError says what is wrong with an event's data in the terms
// of the contract: encoding/json names Go's types and struct fields.
func describeDataError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		want := "a string"
		switch typeErr.Type.Kind() {
		case reflect.Struct, reflect.Map, reflect.Pointer:
			want = "an object"
		case reflect.Slice, reflect.Array:
			want = "an array"
		case reflect.Bool:
			want = "true or false"
		case reflect.Int, reflect.Int64, reflect.Float64:
			want = "a number"
		}
		return fmt.Sprintf("%s must be %s, not %s", typeErr.Field, want, article(typeErr.Value))
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return fmt.Sprintf("not valid JSON at byte %d", syntaxErr.Offset)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// article names a JSON value kind as encoding/json reports it ("number",
// "string", "object"...) with its article.
func article(kind string) string {
	if kind == "" {
		return "this value"
	}
	if strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

package processor

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
)

// The state codec's fast paths (times, integers, strings, stored words)
// are checked here against the implementations they replaced, kept below
// as the reference: any input on which they differ fails.

// referenceAppendTime is appendTime before its fast path.
func referenceAppendTime(b []byte, t time.Time) []byte {
	return t.AppendFormat(b, `"`+time.RFC3339Nano+`"`)
}

// referenceInt is stateParser.int before its fast path.
func referenceInt(p *stateParser) (int64, error) {
	p.ws()
	start := p.pos
	if p.pos < len(p.data) && p.data[p.pos] == '-' {
		p.pos++
	}
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		p.pos++
	}
	v, err := strconv.ParseInt(string(p.data[start:p.pos]), 10, 64)
	if err != nil {
		return 0, errUnexpected
	}
	return v, nil
}

// randomTime returns a time of any year 0001..9999 (and sometimes
// outside), any nanosecond (often with trailing zeros), in UTC or
// another zone.
func randomTime(r *rand.Rand) time.Time {
	var sec int64
	switch r.IntN(4) {
	case 0: // around now, what the fold stores
		sec = 1_700_000_000 + r.Int64N(400_000_000)
	case 1: // 1970..9999
		sec = r.Int64N(maxFastUnix)
	case 2: // 0001..9999
		sec = -62135596800 + r.Int64N(maxFastUnix+62135596800)
	default: // edges: around the epoch, year 10000, year 0 and before
		edges := []int64{0, maxFastUnix, -62135596800, -62167219200, 951782400 /* 2000-02-29 */}
		sec = edges[r.IntN(len(edges))] + r.Int64N(200_000) - 100_000
	}
	ns := r.Int64N(1e9)
	switch r.IntN(4) {
	case 0:
		ns = 0
	case 1:
		ns -= ns % 1_000_000 // milliseconds
	case 2:
		ns -= ns % pow10(r.IntN(10))
	}
	t := time.Unix(sec, ns)
	switch r.IntN(5) {
	case 0, 1:
		return t.UTC()
	case 2:
		return t // Local
	case 3:
		return t.In(time.FixedZone("", (r.IntN(48)-24)*1800+r.IntN(3)*17))
	default:
		return t.In(time.FixedZone("UTC", 0)) // another location that says UTC
	}
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

func TestAppendTimeMatchesAppendFormat(t *testing.T) {
	fixed := []time.Time{
		{}, time.Unix(0, 0).UTC(), time.Unix(0, 1).UTC(), time.Unix(-1, 999_999_999).UTC(),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 1, 500_000_000, time.UTC),
		time.Date(2000, 2, 29, 23, 59, 59, 999_999_999, time.UTC), time.Date(2100, 3, 1, 0, 0, 0, 10, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 100, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 6, 1, 12, 0, 0, 0, time.FixedZone("CEST", 7200)),
	}
	r := rand.New(rand.NewPCG(1, 17))
	for i := range 200_000 {
		tm := randomTime(r)
		if i < len(fixed) {
			tm = fixed[i]
		}
		if got, want := appendTime([]byte("x"), tm), referenceAppendTime([]byte("x"), tm); string(got) != string(want) {
			t.Fatalf("appendTime(%#v) = %s, want %s", tm, got, want)
		}
	}
}

func TestParseStateTimeMatchesTimeParse(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 17))
	fast := 0
	for range 200_000 {
		text := appendTime(nil, randomTime(r))
		text = text[1 : len(text)-1]
		if r.IntN(8) == 0 { // damage a byte: the fast path must refuse or agree
			text[r.IntN(len(text))] = "0123456789-:.TZz+ "[r.IntN(18)]
		}
		if checkParseStateTime(t, text) {
			fast++
		}
	}
	if fast < 50_000 {
		t.Fatalf("the fast path read only %d of 200000 times", fast)
	}
}

// FuzzParseStateTime: parseStateTime reads a time only as time.Parse
// reads it, to the location.
func FuzzParseStateTime(f *testing.F) {
	for _, s := range []string{"2026-01-01T00:00:00Z", "2026-01-01T00:00:01.5Z", "2000-02-29T23:59:59.999999999Z",
		"2001-02-29T00:00:00Z", "1970-01-01T00:00:00.000000000Z", "9999-12-31T23:59:59.1234567891Z",
		"2026-01-01T24:00:00Z", "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00.Z", "2026-13-01T00:00:00Z"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) { checkParseStateTime(t, text) })
}

// checkParseStateTime fails t if parseStateTime reads text other than as
// time.Parse does, and says whether it read it.
func checkParseStateTime(t *testing.T, text []byte) bool {
	t.Helper()
	got, ok := parseStateTime(text)
	if !ok {
		return false
	}
	want, err := time.Parse(time.RFC3339Nano, string(text))
	if err != nil || got != want { // == compares the location too
		t.Fatalf("parseStateTime(%q) = %#v; time.Parse = %#v, %v", text, got, want, err)
	}
	return true
}

func TestStateIntMatchesParseInt(t *testing.T) {
	inputs := []string{"", "-", "--1", "0", "-0", "007", "-007", "1", "12a", "1.5", "1e3", " 42,", "\t-17]",
		"999999999999999999", "-999999999999999999", "9223372036854775807", "9223372036854775808",
		"-9223372036854775808", "-9223372036854775809", "00000000000000000000001", "18446744073709551616"}
	r := rand.New(rand.NewPCG(3, 17))
	for range 50_000 {
		n := r.Int64()
		if r.IntN(2) == 0 {
			n >>= r.IntN(63)
		}
		if r.IntN(2) == 0 {
			n = -n
		}
		inputs = append(inputs, strconv.FormatInt(n, 10)+",")
	}
	for _, in := range inputs {
		checkStateInt(t, []byte(in))
	}
}

// FuzzStateInt: stateParser.int reads what the reference reads, and
// stops at the same byte.
func FuzzStateInt(f *testing.F) {
	f.Add([]byte("-9223372036854775808"))
	f.Add([]byte("0009223372036854775807]"))
	f.Fuzz(checkStateInt)
}

func checkStateInt(t *testing.T, in []byte) {
	fast, ref := stateParser{data: in}, stateParser{data: in}
	got, gotErr := fast.int()
	want, wantErr := referenceInt(&ref)
	if got != want || (gotErr == nil) != (wantErr == nil) || fast.pos != ref.pos {
		t.Fatalf("int(%q) = %d, %v at %d; want %d, %v at %d", in, got, gotErr, fast.pos, want, wantErr, ref.pos)
	}
}

// FuzzAppendString: appendString writes what encoding/json writes.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "<a&b>", "tab\t", "Zoë", "\xff", "\u2028", "~\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Fatalf("appendString(%q) = %s, want x%s", s, got, want)
		}
	})
}

func TestStoredWordIndex(t *testing.T) {
	for i, w := range storedWords {
		if got := storedWordIndex(w); got != i {
			t.Errorf("storedWordIndex(%q) = %d, want %d", w, got, i)
		}
	}
	for _, w := range []string{"", "x", "Accepted", "accepted ", string(StatusActive), string(StatusSuspended), "customer."} {
		if got := storedWordIndex(w); got != -1 {
			t.Errorf("storedWordIndex(%q) = %d, want -1", w, got)
		}
	}
}

// referenceStoredDecisions is the stored decisions member as encoding/json
// writes the layout appendStoredDecisions documents.
func referenceStoredDecisions(t *testing.T, ds []Decision) []byte {
	t.Helper()
	word := func(w string) any {
		if i := slices.Index(storedWords, w); i >= 0 {
			return i
		}
		return w
	}
	rows := make([][]any, 0, len(ds))
	for _, d := range ds {
		row := []any{d.EventID, word(string(d.Outcome)), d.Version, d.Offset, word(d.Type), word(d.Reason), d.Message}
		for len(row) > 4 && row[len(row)-1] == "" {
			row = row[:len(row)-1]
		}
		rows = append(rows, row)
	}
	b, err := json.Marshal(rows)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(`,"`+storedDecisionsKey+`":`), b...)
}

// randomCustomer is a state as the fold could leave it, with strings
// that are sometimes escaped, non-ASCII or one of the stored words.
func randomCustomer(r *rand.Rand) Customer {
	text := func() string {
		pool := []string{"", "a", "Ada King", `say "hi"`, "<b>&", "Zoë", "tab\t", "\x01", "evt-000123",
			string(Accepted), TypeRenamed, ReasonInvalid, "\u2028", `back\slash`}
		return pool[r.IntN(len(pool))] + strconv.Itoa(r.IntN(3))[:r.IntN(2)]
	}
	utc := func() time.Time {
		if r.IntN(10) == 0 {
			return time.Time{}
		}
		return time.Unix(r.Int64N(maxFastUnix), r.Int64N(1e9)>>(r.IntN(2)*30)).UTC()
	}
	word := func(ws []string) string {
		if r.IntN(6) == 0 {
			return text()
		}
		return ws[r.IntN(len(ws))]
	}
	c := Customer{ID: text(), Version: r.Int64N(1 << 40), Status: Status(word([]string{"", string(StatusActive), string(StatusSuspended)})),
		Name: text(), Email: text(), SuspendedReason: text(), CreatedAt: utc(), UpdatedAt: utc(), LastEventID: text(),
		NextOffset: r.Int64N(1<<62) - 1, PersonalData: text()}
	if r.IntN(2) == 0 {
		c.Address = &Address{Line1: text(), Line2: text(), City: text(), PostalCode: text(), Country: text()}
	}
	for range r.IntN(RecentDecisions + 1) {
		d := Decision{EventID: text(), Outcome: Outcome(word([]string{string(Accepted), string(Rejected), string(Duplicate)})),
			Version: r.Int64N(1 << 40), Offset: r.Int64N(1<<62) - 1}
		if r.IntN(2) == 0 {
			d.Type = word(EventTypes)
		}
		if d.Outcome != Accepted {
			d.Reason, d.Message = word(Reasons), text()
		}
		c.Decisions = append(c.Decisions, d)
	}
	for range r.IntN(3) {
		c.DataKeys = append(c.DataKeys, "key-"+strconv.Itoa(r.IntN(100)))
	}
	for v := range int64(r.IntN(40)) {
		c.History = c.History.Append(v+1, v*3+r.Int64N(3))
	}
	return c
}

// TestStateCodecRoundTrip: across random customers, AppendJSON is
// encoding/json's encoding, AppendStored differs from it only in the
// stored decisions, which are as documented, and decoding what
// AppendStored wrote gives the customer back.
func TestStateCodecRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 17))
	for i := range 20_000 {
		c := randomCustomer(r)
		want, err := json.Marshal(customerFallback(c))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("customer %d: AppendJSON = %s\nencoding/json %s", i, got, want)
		}
		stored := c.AppendStored(nil)
		if len(c.Decisions) > 0 {
			// The stored decisions follow next_offset.
			plain := c
			plain.Decisions = nil
			rest := plain.AppendStored(nil)
			marker := strconv.AppendInt([]byte(`,"next_offset":`), c.NextOffset, 10)
			k := bytes.Index(rest, marker) + len(marker)
			want := slices.Concat(rest[:k], referenceStoredDecisions(t, c.Decisions), rest[k:])
			if string(stored) != string(want) {
				t.Fatalf("customer %d: AppendStored = %s\nwant %s", i, stored, want)
			}
		}
		got, err := DecodeCustomer(stored)
		if err != nil {
			t.Fatalf("customer %d: DecodeCustomer(%s): %v", i, stored, err)
		}
		if !reflect.DeepEqual(*got, c) {
			t.Fatalf("customer %d: decode(encode(c)) != c\n got %#v\nwant %#v", i, *got, c)
		}
	}
}

// TestUnmarshalJSONReplacesTheValue: UnmarshalJSON, which reads into the
// customer itself, leaves nothing of an earlier value on success and the
// earlier value untouched on an error, as when it read into one of its
// own.
func TestUnmarshalJSONReplacesTheValue(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 17))
	earlier := randomCustomer(r)
	earlier.Address = &Address{Line1: "old"}
	earlier.DataKeys = []string{"old"}
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"fast path", `{"id":"c","version":1,"next_offset":2}`, true},
		{"escapes (fast path with encoding/json for a string)", `{"id":"c\u0041","version":1}`, true},
		{"encoding/json's path (an unknown member)", `{"id":"c","version":1,"other":true}`, true},
		{"trailing bytes", `{"id":"c","version":1} x`, false},
		{"cut short", `{"id":"c","version":1,"name":"ab`, false},
		{"wrong type", `{"id":"c","version":"1"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := earlier
			c.Address = &Address{Line1: "old"}
			err := c.UnmarshalJSON([]byte(tt.in))
			if !tt.ok {
				if err == nil || !reflect.DeepEqual(c, earlier) {
					t.Fatalf("UnmarshalJSON(%s) = %v, customer %+v; want an error and the earlier value", tt.in, err, c)
				}
				return
			}
			var fresh Customer
			if err != nil || fresh.UnmarshalJSON([]byte(tt.in)) != nil || !reflect.DeepEqual(c, fresh) {
				t.Fatalf("UnmarshalJSON(%s) over a value = %+v, %v; into a zero value %+v", tt.in, c, err, fresh)
			}
		})
	}
}

// TestFastDecoderAgreesOnDataKeys: the fast decoder reads the data keys
// as encoding/json does: an empty array is an empty slice, a repeated
// member replaces the keys, invalid UTF-8 becomes U+FFFD. The first one
// FuzzCustomerJSON found (testdata/fuzz/FuzzCustomerJSON/c070762a06c8aa09).
func TestFastDecoderAgreesOnDataKeys(t *testing.T) {
	for _, in := range []string{
		`{"id":"c","data_keys":[]}`,
		`{"id":"c","data_keys":["a"],"data_keys":["b"]}`,
		"{\"id\":\"c\",\"data_keys\":[\"\xff\"]}",
		`{"id":"c","data_keys":["a\u0062",null]}`,
	} {
		var fast Customer
		p := stateParser{data: []byte(in)}
		if err := p.customer(&fast); err != nil {
			continue // encoding/json's path: nothing to compare
		}
		slow, err := fallbackDecode([]byte(in))
		if err != nil || !reflect.DeepEqual(fast, slow) {
			t.Errorf("%s: fast %#v; encoding/json %#v, %v", in, fast.DataKeys, slow.DataKeys, err)
		}
	}
}

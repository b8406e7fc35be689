package processor

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The table holds JSON, and every fold and every lookup decodes a
// customer's state: with its ring of decisions that is most of their CPU
// time under encoding/json's reflection. UnmarshalJSON below is a decoder
// for exactly the schema Customer is encoded in; anything it does not
// expect (escaped strings, unknown shapes) falls back to encoding/json,
// which also produces the error messages. A fuzz test keeps the two equal.

// customerFallback has Customer's fields and JSON tags without its
// UnmarshalJSON method.
type customerFallback Customer

// UnmarshalJSON implements json.Unmarshaler.
func (c *Customer) UnmarshalJSON(data []byte) error {
	// Read into c itself (the strings are set through pointers into it,
	// which would move a Customer of its own to the heap), from zero as
	// encoding/json would not, and given back its value if the fast path
	// fails.
	saved := *c
	*c = Customer{}
	scratch := stateScratches.Get().(*stateScratch)
	p := stateParser{data: data, text: scratch.text[:0], pending: scratch.pending[:0]}
	err := p.customer(c)
	p.ws()
	clear(p.pending) // no pointers into states kept in the pool
	if cap(p.text) <= maxPooledEncoding && cap(p.pending) <= maxPooledStrings {
		scratch.text, scratch.pending = p.text[:0], p.pending[:0]
		stateScratches.Put(scratch)
	}
	if err == nil && p.pos == len(p.data) {
		return nil
	}
	*c = saved
	var slow storedFallback
	if err := json.Unmarshal(data, &slow); err != nil {
		return err
	}
	*c = Customer(slow.customerFallback)
	if slow.Stored != nil {
		c.Decisions = *slow.Stored
	}
	return nil
}

// storedFallback is what encoding/json reads of a table value: Customer's
// fields, and the recent decisions in their stored form.
type storedFallback struct {
	customerFallback
	Stored *storedDecisionsJSON `json:"decisions"`
}

var errUnexpected = errors.New("unexpected JSON for the fast path")

// stateScratch is stateParser's text and pending, kept between states:
// made for each state they were two allocations of a few KB.
type stateScratch struct {
	text    []byte
	pending []pendingString
}

// maxPooledStrings bounds the pending strings a stateScratch keeps: a
// state with many more (one an older build wrote) is not kept.
const maxPooledStrings = 1024

var stateScratches = sync.Pool{New: func() any {
	return &stateScratch{text: make([]byte, 0, 2<<10), pending: make([]pendingString, 0, 16+2*RecentDecisions)}
}}

type stateParser struct {
	data []byte
	pos  int
	// text gathers the state's strings and pending says where each goes:
	// customer makes them one string when the state is read, one
	// allocation instead of one per string (a dozen per state).
	text    []byte
	pending []pendingString
}

// pendingString is a string of the state read into text[start:end] and
// to be set at dst.
type pendingString struct {
	dst        *string
	start, end int
}

// strInto reads a string as str does, to be set at dst by customer.
// Strings are set in the order read, so that of a key given twice the
// last one wins, as with encoding/json.
func (p *stateParser) strInto(dst *string) error {
	start, end, err := p.textString()
	if err != nil {
		return err
	}
	p.pending = append(p.pending, pendingString{dst: dst, start: start, end: end})
	return nil
}

// textString reads a string as str does into p.text[start:end].
func (p *stateParser) textString() (start, end int, err error) {
	raw, ok := p.plainString()
	if !ok {
		s, err := p.str()
		if err != nil {
			return 0, 0, err
		}
		raw = []byte(s) // rare: escapes or non-ASCII text
	}
	start = len(p.text)
	p.text = append(p.text, raw...)
	return start, len(p.text), nil
}

func (p *stateParser) ws() {
	// The encoder writes no whitespace: one comparison for the usual
	// case before the loop's four.
	if p.pos < len(p.data) && p.data[p.pos] > ' ' {
		return
	}
	for p.pos < len(p.data) && (p.data[p.pos] == ' ' || p.data[p.pos] == '\n' || p.data[p.pos] == '\t' || p.data[p.pos] == '\r') {
		p.pos++
	}
}

func (p *stateParser) peek() byte {
	p.ws()
	if p.pos >= len(p.data) {
		return 0
	}
	return p.data[p.pos]
}

func (p *stateParser) consume(c byte) bool {
	if p.peek() == c {
		p.pos++
		return true
	}
	return false
}

// object calls field for each key of an object; field must consume the
// value.
func (p *stateParser) object(field func(key []byte) error) error {
	if !p.consume('{') {
		return errUnexpected
	}
	if p.consume('}') {
		return nil
	}
	for {
		key, err := p.rawString()
		if err != nil {
			return err
		}
		if !p.consume(':') {
			return errUnexpected
		}
		if err := field(key); err != nil {
			return err
		}
		if p.consume(',') {
			continue
		}
		if p.consume('}') {
			return nil
		}
		return errUnexpected
	}
}

// rawString reads a string without escapes; escapes take the slow path.
func (p *stateParser) rawString() ([]byte, error) {
	if !p.consume('"') {
		return nil, errUnexpected
	}
	start := p.pos
	for p.pos < len(p.data) {
		switch c := p.data[p.pos]; {
		case c == '"':
			s := p.data[start:p.pos]
			p.pos++
			return s, nil
		case c == '\\' || c < 0x20:
			return nil, errUnexpected
		}
		p.pos++
	}
	return nil, errUnexpected
}

func (p *stateParser) str() (string, error) {
	switch p.peek() {
	case 'n':
		return "", p.null()
	case '"':
	default:
		return "", errUnexpected
	}
	start := p.pos
	escaped, nonASCII := false, false
	for p.pos++; p.pos < len(p.data); p.pos++ {
		switch c := p.data[p.pos]; {
		case c == '\\':
			escaped = true
			p.pos++
		case c >= 0x80:
			nonASCII = true
		case c == '"':
			p.pos++
			raw := p.data[start+1 : p.pos-1]
			// encoding/json replaces invalid UTF-8 with U+FFFD: leave
			// that, like escapes, to it.
			if !escaped && (!nonASCII || utf8.Valid(raw)) {
				return string(raw), nil
			}
			// Rare: escapes or non-ASCII text. encoding/json decodes.
			var s string
			if err := json.Unmarshal(p.data[start:p.pos], &s); err != nil {
				return "", errUnexpected
			}
			return s, nil
		case c < 0x20:
			return "", errUnexpected
		}
	}
	return "", errUnexpected
}

// interned returns one of the known words without allocating, so that
// the outcomes, reasons, event types and statuses of every decision share
// one string.
var internedWords = func() map[string]string {
	m := map[string]string{}
	for _, w := range slices.Concat(Reasons, EventTypes, []string{string(Accepted), string(Rejected), string(Duplicate),
		string(StatusActive), string(StatusSuspended), string(StatusErased)}) {
		m[w] = w
	}
	return m
}()

func (p *stateParser) word() (string, error) {
	if p.peek() == '"' {
		end := p.pos + 1
		for end < len(p.data) && p.data[end] != '"' && p.data[end] != '\\' {
			end++
		}
		if end < len(p.data) && p.data[end] == '"' {
			if w, ok := internedWords[string(p.data[p.pos+1:end])]; ok { // no allocation for a map lookup
				p.pos = end + 1
				return w, nil
			}
		}
	}
	return p.str()
}

func (p *stateParser) null() error {
	if p.pos+4 <= len(p.data) && string(p.data[p.pos:p.pos+4]) == "null" {
		p.pos += 4
		return nil
	}
	return errUnexpected
}

// int reads an integer as strconv.ParseInt reads the sign and digits at
// p (leading zeros included), which it calls only for the rare numbers
// long enough to overflow: the state holds a dozen numbers per decision.
func (p *stateParser) int() (int64, error) {
	p.ws()
	start := p.pos
	neg := p.pos < len(p.data) && p.data[p.pos] == '-'
	if neg {
		p.pos++
	}
	first := p.pos
	var u uint64
	for p.pos < len(p.data) {
		d := p.data[p.pos] - '0'
		if d > 9 {
			break
		}
		u = u*10 + uint64(d)
		p.pos++
	}
	switch n := p.pos - first; {
	case n == 0:
		return 0, errUnexpected
	case n > 18: // 18 digits always fit an int64
		v, err := strconv.ParseInt(string(p.data[start:p.pos]), 10, 64)
		if err != nil {
			return 0, errUnexpected
		}
		return v, nil
	case neg:
		return -int64(u), nil
	}
	return int64(u), nil
}

func (p *stateParser) time() (time.Time, error) {
	b, err := p.rawString()
	if err != nil {
		return time.Time{}, err
	}
	if t, ok := parseStateTime(b); ok {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, errUnexpected
	}
	return t, nil
}

func (p *stateParser) customer(c *Customer) error {
	err := p.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "id":
			err = p.strInto(&c.ID)
		case "version":
			c.Version, err = p.int()
		case "status":
			var s string
			s, err = p.word()
			c.Status = Status(s)
		case "name":
			err = p.strInto(&c.Name)
		case "email":
			err = p.strInto(&c.Email)
		case "suspended_reason":
			err = p.strInto(&c.SuspendedReason)
		case "created_at":
			c.CreatedAt, err = p.time()
		case "updated_at":
			c.UpdatedAt, err = p.time()
		case "last_event_id":
			err = p.strInto(&c.LastEventID)
		case "next_offset":
			c.NextOffset, err = p.int()
		case "address":
			if p.peek() == 'n' {
				return p.null()
			}
			c.Address = &Address{}
			err = p.address(c.Address)
		case "recent_decisions":
			err = p.decisions(&c.Decisions)
		case storedDecisionsKey:
			err = p.storedDecisions(&c.Decisions)
		case "data_keys":
			err = p.strings(&c.DataKeys)
		case "personal_data":
			err = p.strInto(&c.PersonalData)
		case "history":
			err = p.history(&c.History)
		default:
			return errUnexpected
		}
		return err
	})
	if err != nil {
		return err
	}
	all := string(p.text)
	for _, s := range p.pending {
		*s.dst = all[s.start:s.end]
	}
	return nil
}

// strings reads an array of strings as encoding/json does: an empty
// array is an empty slice, not nil, a repeated member replaces the
// earlier one, and str reads each string (invalid UTF-8 and escapes
// included).
func (p *stateParser) strings(out *[]string) error {
	if !p.consume('[') {
		return errUnexpected
	}
	ss := []string{}
	if p.consume(']') {
		*out = ss
		return nil
	}
	for {
		s, err := p.str()
		if err != nil {
			return err
		}
		ss = append(ss, s)
		if p.consume(',') {
			continue
		}
		if p.consume(']') {
			*out = ss
			return nil
		}
		return errUnexpected
	}
}

func (p *stateParser) address(a *Address) error {
	return p.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "line1":
			err = p.strInto(&a.Line1)
		case "line2":
			err = p.strInto(&a.Line2)
		case "city":
			err = p.strInto(&a.City)
		case "postal_code":
			err = p.strInto(&a.PostalCode)
		case "country":
			err = p.strInto(&a.Country)
		default:
			return errUnexpected
		}
		return err
	})
}

func (p *stateParser) decisions(out *[]Decision) error {
	if p.peek() == 'n' {
		return p.null()
	}
	if !p.consume('[') {
		return errUnexpected
	}
	ds := make([]Decision, 0, RecentDecisions)
	if !p.consume(']') {
		for {
			d := Decision{Offset: -1} // a decision kept before offsets were
			err := p.object(func(key []byte) error {
				var err error
				switch string(key) {
				case "event_id":
					d.EventID, err = p.str()
				case "outcome":
					var s string
					s, err = p.word()
					d.Outcome = Outcome(s)
				case "reason":
					d.Reason, err = p.word()
				case "message":
					d.Message, err = p.str()
				case "version":
					d.Version, err = p.int()
				case "type":
					d.Type, err = p.word()
				case "offset":
					d.Offset, err = p.int()
				default:
					return errUnexpected
				}
				return err
			})
			if err != nil {
				return err
			}
			ds = append(ds, d)
			if p.consume(',') {
				continue
			}
			if p.consume(']') {
				break
			}
			return errUnexpected
		}
	}
	*out = ds
	return nil
}

func (p *stateParser) history(h *History) error {
	var j historyJSON
	var raw []byte
	err := p.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "first_version":
			j.FirstVersion, err = p.int()
		case "count":
			var n int64
			n, err = p.int()
			j.Count = int(n)
		case "last":
			j.Last, err = p.int()
		case "deltas":
			// Decoded from the input's bytes: read as a string first,
			// they were copied once more.
			var ok bool
			if raw, ok = p.plainString(); !ok {
				var s string
				s, err = p.str()
				raw = []byte(s)
			}
		default:
			return errUnexpected
		}
		return err
	})
	if err != nil {
		return err
	}
	// As base64.StdEncoding.DecodeString does.
	deltas := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
	n, err := base64.StdEncoding.Decode(deltas, raw)
	if err != nil {
		return errUnexpected
	}
	deltas = deltas[:n]
	*h = History{firstVersion: j.FirstVersion, count: j.Count, last: j.Last, deltas: deltas}
	return nil
}

// AppendJSON appends c encoded exactly as encoding/json encodes it (same
// fields, order, omitempty rules and escaping), without reflection: the
// processor encodes a state for every event it folds.
func (c *Customer) AppendJSON(b []byte) []byte { return c.appendJSON(b, false) }

// AppendStored appends c as the group table stores it: AppendJSON's
// layout with the recent decisions in their compact form (see
// storedDecisionsKey), which PublicJSON expands again for lookups.
func (c *Customer) AppendStored(b []byte) []byte { return c.appendJSON(b, true) }

func (c *Customer) appendJSON(b []byte, stored bool) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, c.ID)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, c.Version, 10)
	if c.Status != "" {
		b = append(b, `,"status":`...)
		b = appendString(b, string(c.Status))
	}
	if c.Name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, c.Name)
	}
	if c.Email != "" {
		b = append(b, `,"email":`...)
		b = appendString(b, c.Email)
	}
	if c.Address != nil {
		b = append(b, `,"address":{"line1":`...)
		b = appendString(b, c.Address.Line1)
		if c.Address.Line2 != "" {
			b = append(b, `,"line2":`...)
			b = appendString(b, c.Address.Line2)
		}
		b = append(b, `,"city":`...)
		b = appendString(b, c.Address.City)
		b = append(b, `,"postal_code":`...)
		b = appendString(b, c.Address.PostalCode)
		b = append(b, `,"country":`...)
		b = appendString(b, c.Address.Country)
		b = append(b, '}')
	}
	if c.SuspendedReason != "" {
		b = append(b, `,"suspended_reason":`...)
		b = appendString(b, c.SuspendedReason)
	}
	b = append(b, `,"created_at":`...)
	b = appendTime(b, c.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, c.UpdatedAt)
	if c.LastEventID != "" {
		b = append(b, `,"last_event_id":`...)
		b = appendString(b, c.LastEventID)
	}
	b = append(b, `,"next_offset":`...)
	b = strconv.AppendInt(b, c.NextOffset, 10)
	if len(c.Decisions) > 0 && stored {
		b = appendStoredDecisions(b, c.Decisions)
	} else if len(c.Decisions) > 0 {
		b = append(b, `,"recent_decisions":[`...)
		for i, d := range c.Decisions {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendDecision(b, d)
		}
		b = append(b, ']')
	}
	if len(c.DataKeys) > 0 {
		b = append(b, `,"data_keys":[`...)
		for i, id := range c.DataKeys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, id)
		}
		b = append(b, ']')
	}
	if c.PersonalData != "" {
		b = append(b, `,"personal_data":`...)
		b = appendString(b, c.PersonalData)
	}
	if !c.History.IsZero() {
		h := c.History
		b = append(b, `,"history":{"first_version":`...)
		b = strconv.AppendInt(b, h.firstVersion, 10)
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, int64(h.count), 10)
		b = append(b, `,"last":`...)
		b = strconv.AppendInt(b, h.last, 10)
		b = append(b, `,"deltas":"`...)
		b = base64.StdEncoding.AppendEncode(b, h.deltas)
		b = append(b, `"}`...)
	}
	return append(b, '}')
}

// appendDecision appends d encoded as encoding/json encodes it.
func appendDecision(b []byte, d Decision) []byte {
	b = append(b, `{"event_id":`...)
	b = appendString(b, d.EventID)
	b = append(b, `,"outcome":`...)
	b = appendString(b, string(d.Outcome))
	if d.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, d.Reason)
	}
	if d.Message != "" {
		b = append(b, `,"message":`...)
		b = appendString(b, d.Message)
	}
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, d.Version, 10)
	if d.Type != "" {
		b = append(b, `,"type":`...)
		b = appendString(b, d.Type)
	}
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, d.Offset, 10)
	return append(b, '}')
}

// appendString appends s as a JSON string. Plain ASCII, the common case,
// is copied as is; anything encoding/json would escape (quotes, control
// characters, <, >, &, non-ASCII) takes encoding/json's own path.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plainJSON[s[i]] {
			enc, err := json.Marshal(s)
			if err != nil { // strings always encode
				return append(b, `""`...)
			}
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainJSON holds the bytes encoding/json writes as they are in a string:
// printable ASCII but for quotes, backslashes and the HTML characters.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// UnmarshalJSON implements json.Unmarshaler, so that encoding/json reads
// a decision kept before offsets were, which has none, as the fast
// decoder does: with offset -1, unknown.
func (d *Decision) UnmarshalJSON(b []byte) error {
	type plain Decision
	p := plain{Offset: -1}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*d = Decision(p)
	return nil
}

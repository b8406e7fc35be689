package processor

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"time"
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
	var fast Customer
	p := stateParser{data: data}
	if err := p.customer(&fast); err == nil {
		p.ws()
		if p.pos == len(p.data) {
			*c = fast
			return nil
		}
	}
	var slow customerFallback
	if err := json.Unmarshal(data, &slow); err != nil {
		return err
	}
	*c = Customer(slow)
	return nil
}

var errUnexpected = errors.New("unexpected JSON for the fast path")

type stateParser struct {
	data []byte
	pos  int
}

func (p *stateParser) ws() {
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
	escaped := false
	for p.pos++; p.pos < len(p.data); p.pos++ {
		switch c := p.data[p.pos]; {
		case c == '\\':
			escaped = true
			p.pos++
		case c == '"':
			p.pos++
			if !escaped {
				return string(p.data[start+1 : p.pos-1]), nil
			}
			// Rare: messages quoting input. encoding/json unescapes.
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
// the outcomes, reasons and statuses of every decision share one string.
var internedWords = func() map[string]string {
	m := map[string]string{}
	for _, w := range append(Reasons, string(Accepted), string(Rejected), string(Duplicate),
		string(StatusActive), string(StatusSuspended), string(StatusErased)) {
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

func (p *stateParser) int() (int64, error) {
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

func (p *stateParser) time() (time.Time, error) {
	b, err := p.rawString()
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, errUnexpected
	}
	return t, nil
}

func (p *stateParser) customer(c *Customer) error {
	return p.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "id":
			c.ID, err = p.str()
		case "version":
			c.Version, err = p.int()
		case "status":
			var s string
			s, err = p.word()
			c.Status = Status(s)
		case "name":
			c.Name, err = p.str()
		case "email":
			c.Email, err = p.str()
		case "suspended_reason":
			c.SuspendedReason, err = p.str()
		case "created_at":
			c.CreatedAt, err = p.time()
		case "updated_at":
			c.UpdatedAt, err = p.time()
		case "last_event_id":
			c.LastEventID, err = p.str()
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
		case "history":
			err = p.history(&c.History)
		default:
			return errUnexpected
		}
		return err
	})
}

func (p *stateParser) address(a *Address) error {
	return p.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "line1":
			a.Line1, err = p.str()
		case "line2":
			a.Line2, err = p.str()
		case "city":
			a.City, err = p.str()
		case "postal_code":
			a.PostalCode, err = p.str()
		case "country":
			a.Country, err = p.str()
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
			var d Decision
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
			j.Deltas, err = p.str()
		default:
			return errUnexpected
		}
		return err
	})
	if err != nil {
		return err
	}
	deltas, err := base64.StdEncoding.DecodeString(j.Deltas)
	if err != nil {
		return errUnexpected
	}
	*h = History{firstVersion: j.FirstVersion, count: j.Count, last: j.Last, deltas: deltas}
	return nil
}

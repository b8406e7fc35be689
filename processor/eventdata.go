package processor

import (
	"unicode/utf8"
)

// fillPayload fills payload, one of the *Data types, from an event's data
// object when the object is plain: members spelled exactly as the type's
// fields, each once, strings without escapes, the address an object of
// the same kind. It returns false, having maybe set some fields, for
// anything else: the caller then decodes data with encoding/json into a
// fresh payload, so that case-insensitive names, escapes, nulls, wrong
// types, unknown members and every error stay encoding/json's. On plain
// data both fill the same fields with the same strings; decoding every
// event through reflection was the largest cost of the event decode.
func fillPayload(data []byte, payload any) bool {
	p := dataParser{data: data}
	var ok bool
	switch d := payload.(type) {
	case *RegisteredData:
		ok = p.object(func(key []byte) uint {
			switch string(key) {
			case "name":
				return p.str(&d.Name, 1)
			case "email":
				return p.str(&d.Email, 2)
			case "address":
				return p.address(&d.Address, 4)
			}
			return 0
		})
	case *RenamedData:
		ok = p.only("name", &d.Name)
	case *EmailChangedData:
		ok = p.only("email", &d.Email)
	case *AddressChangedData:
		ok = p.object(func(key []byte) uint {
			if string(key) == "address" {
				return p.address(&d.Address, 1)
			}
			return 0
		})
	case *SuspendedData:
		ok = p.only("reason", &d.Reason)
	case *ReactivatedData, *ErasedData:
		ok = p.object(func([]byte) uint { return 0 })
	}
	p.space()
	return ok && p.pos == len(p.data)
}

// dataParser reads the plain JSON that fillPayload takes; any other input
// makes it fail, never guess.
type dataParser struct {
	data []byte
	pos  int
}

func (p *dataParser) space() { p.pos = skipJSONSpace(p.data, p.pos) }

func (p *dataParser) next(c byte) bool {
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// object reads an object, calling member with each key once the parser
// is at the key's value. member reads the value and returns the field's
// bit, or 0 when the key or the value is not plain; a key seen twice
// fails too (encoding/json would merge a repeated address).
func (p *dataParser) object(member func(key []byte) uint) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return true
	}
	var seen uint
	for {
		p.space()
		key, ok := p.plain()
		if !ok || !p.next(':') {
			return false
		}
		p.space()
		bit := member(key)
		if bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		if p.next(',') {
			continue
		}
		return p.next('}')
	}
}

// plain reads a string at p.pos that encoding/json would take byte for
// byte: valid UTF-8, no escapes, no control characters.
func (p *dataParser) plain() ([]byte, bool) {
	if p.pos >= len(p.data) || p.data[p.pos] != '"' {
		return nil, false
	}
	start := p.pos + 1
	ascii := true
	for i := start; i < len(p.data); i++ {
		switch c := p.data[i]; {
		case c == '"':
			s := p.data[start:i]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			p.pos = i + 1
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// only reads an object whose one member may be name, a string.
func (p *dataParser) only(name string, dst *string) bool {
	return p.object(func(key []byte) uint {
		if string(key) == name {
			return p.str(dst, 1)
		}
		return 0
	})
}

// str reads a plain string value into *dst and returns bit, or 0.
func (p *dataParser) str(dst *string, bit uint) uint {
	s, ok := p.plain()
	if !ok {
		return 0
	}
	*dst = string(s)
	return bit
}

// address reads an address object into a new *dst and returns bit, or 0.
// encoding/json allocates the Address too: *dst is nil in a fresh payload.
func (p *dataParser) address(dst **Address, bit uint) uint {
	a := &Address{}
	ok := p.object(func(key []byte) uint {
		switch string(key) {
		case "line1":
			return p.str(&a.Line1, 1)
		case "line2":
			return p.str(&a.Line2, 2)
		case "city":
			return p.str(&a.City, 4)
		case "postal_code":
			return p.str(&a.PostalCode, 8)
		case "country":
			return p.str(&a.Country, 16)
		}
		return 0
	})
	if !ok {
		return 0
	}
	*dst = a
	return bit
}

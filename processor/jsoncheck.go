package processor

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// maxJSONDepth bounds the nesting of an event; ours needs 3 levels.
const maxJSONDepth = 16

// strictNames are the attribute and data field names of the contract.
// encoding/json matches struct fields case-insensitively and lets the last
// of duplicate keys win; CloudEvents names are case-sensitive, and another
// reader may take the first duplicate. So an event whose keys repeat, or
// differ from these names only by case, is malformed: every reader must
// see the same id, type and data.
var strictNames = []string{
	"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "expectedversion", "data",
	"name", "email", "address", "reason", "line1", "line2", "city", "postal_code", "country",
}

// strictNameSet holds strictNames.
var strictNameSet = newNameTable(strictNames)

// nameTable finds a byte string among a few fixed strings and returns
// the fixed one, without allocating or hashing: candidates are grouped by
// length and most are told apart by their first bytes. Every event looks
// up each of its keys, and a map's hashing was a fifth of its decode.
type nameTable struct {
	byLength [][]string
}

func newNameTable(values []string) nameTable {
	var t nameTable
	for _, v := range values {
		for len(t.byLength) <= len(v) {
			t.byLength = append(t.byLength, nil)
		}
		t.byLength[len(v)] = append(t.byLength[len(v)], v)
	}
	return t
}

// find returns the fixed string equal to b, if any.
func (t *nameTable) find(b []byte) (string, bool) {
	if len(b) >= len(t.byLength) {
		return "", false
	}
	for _, v := range t.byLength[len(b)] {
		if string(b) == v {
			return v, true
		}
	}
	return "", false
}

// checkJSON scans a JSON document once, without decoding it, and rejects
// duplicate keys, keys that differ from a contract name only by case, and
// nesting beyond maxJSONDepth. Full validity and types are left to
// encoding/json, which runs after it; the scanner only has to find
// strings and nesting correctly. It runs on every record, so it avoids
// allocating.
func checkJSON(value []byte) error {
	_, err := scanEvent(value)
	return err
}

// member is one top-level attribute of an event: its key and raw value.
type member struct {
	key   string
	value []byte
}

// scanEvent checks value like checkJSON and returns the members of the
// top-level object, so that decoding needs no second pass over it.
func scanEvent(value []byte) ([]member, error) {
	var s scanner
	return s.event(value)
}

// event is scanEvent with a scanner of the caller's: the members it
// returns are in the scanner, on the stack of a caller that declares it.
func (s *scanner) event(value []byte) ([]member, error) {
	s.data = value
	s.space()
	if s.pos >= len(s.data) || s.data[s.pos] != '{' {
		if err := s.value(0); err != nil {
			return nil, err
		}
		return nil, errors.New("not a JSON object")
	}
	if err := s.value(0); err != nil {
		return nil, err
	}
	s.space()
	if s.pos != len(s.data) {
		return nil, errors.New("not a JSON object: trailing data after the JSON value")
	}
	if s.more != nil {
		return append(s.top[:s.ntop:s.ntop], s.more...), nil
	}
	return s.top[:s.ntop], nil
}

type scanner struct {
	data []byte
	pos  int
	// The members of the top-level object: the first in top, in the
	// scanner itself, as a slice the scanner appended to through its
	// pointer would be moved to the heap, the rest in more.
	top  [12]member
	ntop int
	more []member
}

var errSyntax = errors.New("not a JSON object: invalid JSON")

func (s *scanner) space() { s.pos = skipJSONSpace(s.data, s.pos) }

// skipJSONSpace returns the position of the first byte at or after pos in
// data that is not JSON whitespace.
func skipJSONSpace(data []byte, pos int) int {
	for pos < len(data) {
		switch data[pos] {
		case ' ', '\t', '\n', '\r':
			pos++
		default:
			return pos
		}
	}
	return pos
}

func (s *scanner) value(depth int) error {
	s.space()
	if s.pos >= len(s.data) {
		return errSyntax
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		if depth >= maxJSONDepth {
			return fmt.Errorf("JSON nested deeper than %d levels", maxJSONDepth)
		}
		return s.object(depth)
	case c == '[':
		if depth >= maxJSONDepth {
			return fmt.Errorf("JSON nested deeper than %d levels", maxJSONDepth)
		}
		return s.array(depth)
	case c == '"':
		_, _, err := s.str()
		return err
	default:
		return s.scalar()
	}
}

// scalar checks a number or a literal against JSON's grammar.
func (s *scanner) scalar() error {
	for _, lit := range []string{"true", "false", "null"} {
		if len(s.data)-s.pos >= len(lit) && string(s.data[s.pos:s.pos+len(lit)]) == lit {
			s.pos += len(lit)
			return nil
		}
	}
	// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
	digits := func() int {
		n := 0
		for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
			s.pos++
			n++
		}
		return n
	}
	if s.pos < len(s.data) && s.data[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(s.data) && s.data[s.pos] == '0':
		s.pos++
	case digits() == 0:
		return errSyntax
	}
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		s.pos++
		if digits() == 0 {
			return errSyntax
		}
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if digits() == 0 {
			return errSyntax
		}
	}
	return nil
}

// jsonStringStop marks the bytes that end or escape a JSON string's plain
// run, or are not allowed in it.
var jsonStringStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// str reads a string at s.pos and returns its raw contents and whether it
// holds escapes.
func (s *scanner) str() ([]byte, bool, error) {
	s.pos++ // opening quote
	start, escaped := s.pos, false
	for s.pos < len(s.data) {
		// Most bytes are plain: skip them in locals, a load and a branch each.
		data, i := s.data, s.pos
		for i < len(data) && !jsonStringStop[data[i]] {
			i++
		}
		if s.pos = i; i == len(data) {
			break
		}
		switch c := data[i]; {
		case c == '\\':
			escaped = true
			if s.pos+1 >= len(s.data) {
				return nil, false, errSyntax
			}
			switch s.data[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				if s.pos+6 > len(s.data) {
					return nil, false, errSyntax
				}
				for _, h := range s.data[s.pos+2 : s.pos+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return nil, false, errSyntax
					}
				}
				s.pos += 6
			default:
				return nil, false, errSyntax
			}
			continue
		case c == '"':
			raw := s.data[start:s.pos]
			s.pos++
			return raw, escaped, nil
		case c < 0x20:
			return nil, false, errSyntax
		}
		s.pos++
	}
	return nil, false, errSyntax
}

func (s *scanner) array(depth int) error {
	s.pos++ // [
	s.space()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		if err := s.value(depth + 1); err != nil {
			return err
		}
		if done, err := s.separator(']'); done || err != nil {
			return err
		}
	}
}

func (s *scanner) object(depth int) error {
	s.pos++ // {
	var small [16]string
	keys := small[:0]
	var many map[string]struct{}
	s.space()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		s.space()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return errSyntax
		}
		raw, escaped, err := s.str()
		if err != nil {
			return err
		}
		// A contract name is the common key: taken from strictNameSet
		// without allocating, and exactly a name, it needs no case check.
		key, known := strictNameSet.find(raw)
		if !known {
			key = string(raw)
		}
		if escaped {
			// "\u0069d" is the key "id": compare keys by their value.
			// Into a variable of its own: the one whose address is taken
			// is moved to the heap, and key is there for every key.
			var unescaped string
			if err := json.Unmarshal(s.data[s.pos-len(raw)-2:s.pos], &unescaped); err != nil {
				return errSyntax
			}
			key = unescaped
			_, known = strictNameSet.find([]byte(key))
		}
		if depth < 3 && !known {
			if err := checkCase(key); err != nil {
				return err
			}
		}
		if many == nil && len(keys) < len(small) {
			for _, k := range keys {
				if k == key {
					return fmt.Errorf("duplicate key %s", quote(key))
				}
			}
			keys = append(keys, key)
		} else {
			if many == nil {
				many = make(map[string]struct{}, 2*len(keys))
				for _, k := range keys {
					many[k] = struct{}{}
				}
			}
			if _, dup := many[key]; dup {
				return fmt.Errorf("duplicate key %s", quote(key))
			}
			many[key] = struct{}{}
		}
		s.space()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return errSyntax
		}
		s.pos++
		s.space()
		start := s.pos
		if err := s.value(depth + 1); err != nil {
			return err
		}
		if depth == 0 {
			if m := (member{key: key, value: s.data[start:s.pos]}); s.ntop < len(s.top) {
				s.top[s.ntop] = m
				s.ntop++
			} else {
				s.more = append(s.more, m)
			}
		}
		if done, err := s.separator('}'); done || err != nil {
			return err
		}
	}
}

// separator reads what follows a value in an array or an object: a comma,
// or the closing bracket, which ends it (done).
func (s *scanner) separator(closing byte) (done bool, err error) {
	s.space()
	if s.pos >= len(s.data) {
		return false, errSyntax
	}
	switch s.data[s.pos] {
	case ',':
		s.pos++
		return false, nil
	case closing:
		s.pos++
		return true, nil
	}
	return false, errSyntax
}

func checkCase(key string) error {
	for _, name := range strictNames {
		if key != name && strings.EqualFold(key, name) {
			return fmt.Errorf("key %s must be spelled %q: names are case-sensitive", quote(key), name)
		}
	}
	return nil
}

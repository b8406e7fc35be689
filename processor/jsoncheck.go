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

// checkJSON scans a JSON document once, without decoding it, and rejects
// duplicate keys, keys that differ from a contract name only by case, and
// nesting beyond maxJSONDepth. Full validity and types are left to
// encoding/json, which runs after it; the scanner only has to find
// strings and nesting correctly. It runs on every record, so it avoids
// allocating.
func checkJSON(value []byte) error {
	s := scanner{data: value}
	if err := s.value(0); err != nil {
		return err
	}
	s.space()
	if s.pos != len(s.data) {
		return errors.New("not a JSON object: trailing data after the JSON value")
	}
	return nil
}

type scanner struct {
	data []byte
	pos  int
}

var errSyntax = errors.New("not a JSON object: invalid JSON")

func (s *scanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
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
		// A number or literal: skip to the next delimiter; encoding/json
		// checks it properly.
		start := s.pos
		for s.pos < len(s.data) {
			switch s.data[s.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if s.pos == start {
					return errSyntax
				}
				return nil
			}
			s.pos++
		}
		if s.pos == start {
			return errSyntax
		}
		return nil
	}
}

// str reads a string at s.pos and returns its raw contents and whether it
// holds escapes.
func (s *scanner) str() ([]byte, bool, error) {
	s.pos++ // opening quote
	start, escaped := s.pos, false
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case '\\':
			escaped = true
			s.pos += 2
			continue
		case '"':
			raw := s.data[start:s.pos]
			s.pos++
			return raw, escaped, nil
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
		s.space()
		if s.pos >= len(s.data) {
			return errSyntax
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return errSyntax
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
		key := string(raw)
		if escaped {
			// "\u0069d" is the key "id": compare keys by their value.
			if err := json.Unmarshal(s.data[s.pos-len(raw)-2:s.pos], &key); err != nil {
				return errSyntax
			}
		}
		if depth < 3 {
			if err := checkCase(key); err != nil {
				return err
			}
		}
		if many == nil && len(keys) < len(small) {
			for _, k := range keys {
				if k == key {
					return fmt.Errorf("duplicate key %q", key)
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
				return fmt.Errorf("duplicate key %q", key)
			}
			many[key] = struct{}{}
		}
		s.space()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return errSyntax
		}
		s.pos++
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.space()
		if s.pos >= len(s.data) {
			return errSyntax
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return errSyntax
		}
	}
}

func checkCase(key string) error {
	for _, name := range strictNames {
		if key != name && strings.EqualFold(key, name) {
			return fmt.Errorf("key %q must be spelled %q: names are case-sensitive", key, name)
		}
	}
	return nil
}

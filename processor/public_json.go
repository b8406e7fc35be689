package processor

import "bytes"

// Markers of the layout AppendJSON writes: the id and the version first,
// the history last. Quotes inside JSON strings are escaped, so these
// cannot occur inside a value.
var (
	idPrefix      = []byte(`{"id":"`)
	versionField  = []byte(`","version":`)
	historyMarker = []byte(`,"history":{"first_version":`)
	// storedDecisionsMarker is followed by the stored decisions' array.
	storedDecisionsMarker = []byte(`,"` + storedDecisionsKey + `":`)
)

// PublicJSON returns a table value as lookups show it, the state without
// its history offsets, with the customer's version. It reads the value as
// AppendStored lays it out instead of decoding it, so that a lookup costs a
// read, a copy and the expansion of the stored decisions. A value in another layout is decoded and encoded
// again: the result is always AppendJSON of the state without history.
// The body is a new slice; stored is not modified.
func PublicJSON(stored []byte) (body []byte, version int64, err error) {
	if v, ok := leadingVersion(stored); ok {
		if body, ok := publicLayout(stored); ok {
			return body, v, nil
		}
	}
	c, err := DecodeCustomer(stored)
	if err != nil {
		return nil, 0, err
	}
	c.History = History{}
	return c.AppendJSON(make([]byte, 0, len(stored)+1)), c.Version, nil
}

// publicLayout copies a value laid out by AppendStored (or AppendJSON)
// without its history, expanding its stored decisions.
func publicLayout(stored []byte) ([]byte, bool) {
	end := len(stored)
	if i := bytes.LastIndex(stored, historyMarker); i >= 0 {
		end = i
	}
	i := bytes.Index(stored[:end], storedDecisionsMarker)
	if i < 0 {
		body := make([]byte, 0, end+2) // room for the closing brace and a newline
		body = append(body, stored[:end]...)
		if end < len(stored) {
			body = append(body, '}')
		}
		return body, true
	}
	// An expanded decision is about 80 bytes longer than its stored form.
	body := make([]byte, 0, end+2+RecentDecisions*80)
	body = append(body, stored[:i]...)
	p := stateParser{data: stored[:end], pos: i + len(storedDecisionsMarker)}
	body, err := p.appendPublicDecisions(body)
	if err != nil {
		return nil, false
	}
	body = append(body, stored[p.pos:end]...)
	if end < len(stored) {
		body = append(body, '}')
	}
	return body, true
}

// leadingVersion reads the version from a value that starts the way
// AppendJSON starts one: {"id":"<key>","version":<digits>,
func leadingVersion(b []byte) (int64, bool) {
	if !bytes.HasPrefix(b, idPrefix) || !bytes.HasSuffix(b, []byte("}")) {
		return 0, false
	}
	i := len(idPrefix)
	for i < len(b) && isKeyByte(b[i]) {
		i++
	}
	if !bytes.HasPrefix(b[i:], versionField) {
		return 0, false
	}
	i += len(versionField)
	start := i
	var v int64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' && i-start < 18 {
		v = v*10 + int64(b[i]-'0')
		i++
	}
	if i == start || i >= len(b) || b[i] != ',' || (b[start] == '0' && i-start > 1) {
		return 0, false
	}
	return v, true
}

// isKeyByte reports whether c may occur in a customer id (ValidateKey).
func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == ':'
}

// StoredVersion returns the version of a stored table value, reading only
// its start when it was written by AppendJSON.
func StoredVersion(stored []byte) (int64, error) {
	if v, ok := leadingVersion(stored); ok {
		return v, nil
	}
	c, err := DecodeCustomer(stored)
	if err != nil {
		return 0, err
	}
	return c.Version, nil
}

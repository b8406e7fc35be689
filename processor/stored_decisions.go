package processor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// The recent decisions were 70% of a stored state: at 10 events per
// customer, 1,095 of 1,572 bytes, most of them member names and the same
// few words again (BENCHMARKS.md). The processor reads, decodes, encodes
// and writes every byte of a state for each event it folds, and leveldb
// copies them again in its compactions, so the table keeps them in a
// compact form instead, under storedDecisionsKey in place of
// "recent_decisions": one array per decision,
//
//	[event_id, outcome, version, offset, type, reason, message]
//
// where the last three are left out from the end while empty, and
// outcome, type and reason are written as their index in storedWords when
// they are one of them (a string otherwise). A decision of an accepted
// event goes from about 110 bytes to 30. Lookups answer with the
// decisions as AppendJSON writes them: PublicJSON expands them without
// decoding the rest of the state. Values written in the earlier layout,
// with "recent_decisions", are read as before.

// storedDecisionsKey is the member of the stored decisions.
const storedDecisionsKey = "decisions"

// storedWords are the words stored decisions write as a number: the index
// in this list. The table keeps these numbers, so the list may only grow
// at its end; TestStoredWordsOnlyGrow pins it.
var storedWords = []string{
	string(Accepted), string(Rejected), string(Duplicate),
	TypeRegistered, TypeRenamed, TypeEmailChanged, TypeAddressChanged, TypeSuspended, TypeReactivated, TypeErased,
	ReasonMalformed, ReasonWrongPartition, ReasonStateTooLarge, ReasonKeyMissing, ReasonBadSeal, ReasonInvalid,
	ReasonNotRegistered, ReasonAlreadyRegistered, ReasonErased, ReasonVersionConflict,
}

// storedWordIndex is the index of w in storedWords, or -1. Every decision
// the processor encodes looks up two or three words: a switch on the
// constants compares a length and a few bytes where a map hashed the
// word; TestStoredWordIndex keeps it equal to the list.
func storedWordIndex(w string) int {
	switch w {
	case string(Accepted):
		return 0
	case string(Rejected):
		return 1
	case string(Duplicate):
		return 2
	case TypeRegistered:
		return 3
	case TypeRenamed:
		return 4
	case TypeEmailChanged:
		return 5
	case TypeAddressChanged:
		return 6
	case TypeSuspended:
		return 7
	case TypeReactivated:
		return 8
	case TypeErased:
		return 9
	case ReasonMalformed:
		return 10
	case ReasonWrongPartition:
		return 11
	case ReasonStateTooLarge:
		return 12
	case ReasonKeyMissing:
		return 13
	case ReasonBadSeal:
		return 14
	case ReasonInvalid:
		return 15
	case ReasonNotRegistered:
		return 16
	case ReasonAlreadyRegistered:
		return 17
	case ReasonErased:
		return 18
	case ReasonVersionConflict:
		return 19
	}
	return -1
}

// appendStoredDecisions appends the member of ds in the stored form.
func appendStoredDecisions(b []byte, ds []Decision) []byte {
	b = append(b, `,"`+storedDecisionsKey+`":[`...)
	for i, d := range ds {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = appendString(b, d.EventID)
		b = append(b, ',')
		b = appendWord(b, string(d.Outcome))
		b = append(b, ',')
		b = strconv.AppendInt(b, d.Version, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, d.Offset, 10)
		if d.Type != "" || d.Reason != "" || d.Message != "" {
			b = append(b, ',')
			b = appendWord(b, d.Type)
		}
		if d.Reason != "" || d.Message != "" {
			b = append(b, ',')
			b = appendWord(b, d.Reason)
		}
		if d.Message != "" {
			b = append(b, ',')
			b = appendString(b, d.Message)
		}
		b = append(b, ']')
	}
	return append(b, ']')
}

// appendWord appends w as its index in storedWords, or as a string.
func appendWord(b []byte, w string) []byte {
	switch i := storedWordIndex(w); {
	case i < 0:
		return appendString(b, w)
	case i < 10:
		return append(b, byte('0'+i))
	default:
		return strconv.AppendInt(b, int64(i), 10)
	}
}

// storedWord reads what appendWord wrote.
func (p *stateParser) storedWord() (string, error) {
	if c := p.peek(); c >= '0' && c <= '9' {
		i, err := p.int()
		if err != nil || i >= int64(len(storedWords)) {
			return "", errUnexpected
		}
		return storedWords[i], nil
	}
	return p.word()
}

// storedDecisions reads the decisions appendStoredDecisions wrote.
func (p *stateParser) storedDecisions(out *[]Decision) error {
	if !p.consume('[') {
		return errUnexpected
	}
	if p.consume(']') {
		*out = []Decision{}
		return nil
	}
	// Parsed in place into a slice made at their count, or a little
	// more: each decision opens a bracket, and the brackets left in the
	// state are counted at memory speed (the data keys open one more).
	// A ring made with room for RecentDecisions was 3 KB to clear and
	// collect for every state read, most of it unused at ten events per
	// customer, and parsing on the stack and copying out cost the
	// clearing and a copy.
	guess := bytes.Count(p.data[p.pos:], []byte("["))
	ds := make([]Decision, 0, min(guess, RecentDecisions))
	// The event ids and messages go to p.text (see strInto), pending
	// here by index until ds stops growing.
	var refBuf [2 * RecentDecisions]decisionString
	refs := refBuf[:0]
	for {
		if len(ds) < cap(ds) {
			ds = ds[:len(ds)+1] // zero from make: cheaper than appending a zero Decision
		} else {
			ds = append(ds, Decision{})
		}
		d := &ds[len(ds)-1]
		if !p.consume('[') {
			return errUnexpected
		}
		start, end, err := p.textString()
		if err != nil {
			return err
		}
		refs = append(refs, decisionString{i: len(ds) - 1, start: start, end: end})
		if err := p.storedDecision(d); err != nil {
			return err
		}
		if len(p.text) > end { // a message, read into p.text by storedDecision
			refs = append(refs, decisionString{i: len(ds) - 1, message: true, start: end, end: len(p.text)})
		}
		if p.consume(',') {
			continue
		}
		if p.consume(']') {
			break
		}
		return errUnexpected
	}
	for _, r := range refs {
		dst := &ds[r.i].EventID
		if r.message {
			dst = &ds[r.i].Message
		}
		p.pending = append(p.pending, pendingString{dst: dst, start: r.start, end: r.end})
	}
	// At their count, as the fold expects to append to a copy.
	*out = ds[:len(ds):len(ds)]
	return nil
}

// decisionString is a string of ds[i] read into p.text[start:end].
type decisionString struct {
	i          int
	message    bool
	start, end int
}

// plainString reads a string of printable ASCII without escapes, which
// stands for itself, and returns its contents; anything else is left
// unread (ok false).
func (p *stateParser) plainString() (raw []byte, ok bool) {
	if p.peek() != '"' {
		return nil, false
	}
	for end := p.pos + 1; end < len(p.data); end++ {
		switch c := p.data[end]; {
		case c == '"':
			raw, p.pos = p.data[p.pos+1:end], end+1
			return raw, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return nil, false
		}
	}
	return nil, false
}

// storedDecision reads a stored decision past its event id.
func (p *stateParser) storedDecision(d *Decision) error {
	var err error
	var outcome string
	if !p.consume(',') {
		return errUnexpected
	}
	if outcome, err = p.storedWord(); err != nil {
		return err
	}
	d.Outcome = Outcome(outcome)
	if !p.consume(',') {
		return errUnexpected
	}
	if d.Version, err = p.int(); err != nil {
		return err
	}
	if !p.consume(',') {
		return errUnexpected
	}
	if d.Offset, err = p.int(); err != nil {
		return err
	}
	for _, field := range []*string{&d.Type, &d.Reason} {
		if !p.consume(',') {
			break
		}
		if *field, err = p.storedWord(); err != nil {
			return err
		}
	}
	if p.consume(',') {
		// Into p.text, where storedDecisions finds it.
		if _, _, err = p.textString(); err != nil {
			return err
		}
	}
	if !p.consume(']') {
		return errUnexpected
	}
	return nil
}

// appendPublicDecisions reads the stored decisions at p and appends them
// as AppendJSON writes them, copying their strings and numbers as stored:
// appendString and strconv wrote both sides the same way.
func (p *stateParser) appendPublicDecisions(b []byte) ([]byte, error) {
	if !p.consume('[') {
		return b, errUnexpected
	}
	b = append(b, `,"recent_decisions":[`...)
	for first := true; ; first = false {
		if p.consume(']') && first {
			return append(b, ']'), nil
		}
		if !first {
			b = append(b, ',')
		}
		var err error
		if b, err = p.appendPublicDecision(b); err != nil {
			return b, err
		}
		if p.consume(',') {
			continue
		}
		if p.consume(']') {
			return append(b, ']'), nil
		}
		return b, errUnexpected
	}
}

func (p *stateParser) appendPublicDecision(b []byte) ([]byte, error) {
	if !p.consume('[') {
		return b, errUnexpected
	}
	id, err := p.token(false)
	if err != nil || !p.consume(',') {
		return b, errUnexpected
	}
	outcome, err := p.token(true)
	if err != nil || !p.consume(',') {
		return b, errUnexpected
	}
	version, err := p.token(false)
	if err != nil || !p.consume(',') {
		return b, errUnexpected
	}
	offset, err := p.token(false)
	if err != nil {
		return b, errUnexpected
	}
	var typ, reason, message []byte
	for _, field := range []*[]byte{&typ, &reason, &message} {
		if !p.consume(',') {
			break
		}
		if *field, err = p.token(field != &message); err != nil {
			return b, err
		}
	}
	if !p.consume(']') || version[0] == '"' || offset[0] == '"' || id[0] != '"' || (message != nil && message[0] != '"') {
		return b, errUnexpected
	}
	b = append(b, `{"event_id":`...)
	b = append(b, id...)
	b = append(b, `,"outcome":`...)
	b = append(b, outcome...)
	if !isEmptyString(reason) {
		b = append(b, `,"reason":`...)
		b = append(b, reason...)
	}
	if !isEmptyString(message) {
		b = append(b, `,"message":`...)
		b = append(b, message...)
	}
	b = append(b, `,"version":`...)
	b = append(b, version...)
	if !isEmptyString(typ) {
		b = append(b, `,"type":`...)
		b = append(b, typ...)
	}
	b = append(b, `,"offset":`...)
	b = append(b, offset...)
	return append(b, '}'), nil
}

func isEmptyString(tok []byte) bool { return len(tok) == 0 || string(tok) == `""` }

// token returns the next string or integer token as it is stored; with
// word, an integer is an index in storedWords and is returned as the
// quoted word.
func (p *stateParser) token(word bool) ([]byte, error) {
	switch c := p.peek(); {
	case c == '"':
		start := p.pos
		for p.pos++; p.pos < len(p.data); p.pos++ {
			switch p.data[p.pos] {
			case '\\':
				p.pos++
			case '"':
				p.pos++
				return p.data[start:p.pos], nil
			}
		}
		return nil, errUnexpected
	case c == '-' || c >= '0' && c <= '9':
		// Scanned, not parsed: lookups copy the digits as they are.
		start := p.pos
		if c == '-' {
			p.pos++
		}
		i := 0
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' && p.pos-start < 20 {
			i = i*10 + int(p.data[p.pos]-'0')
			p.pos++
		}
		digits := p.data[start:p.pos]
		if len(digits) == 0 || digits[len(digits)-1] == '-' || p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			return nil, errUnexpected
		}
		if !word {
			return digits, nil
		}
		if c == '-' || len(digits) > 2 || i >= len(storedWords) {
			return nil, errUnexpected
		}
		return quotedWords[i], nil
	}
	return nil, errUnexpected
}

// quotedWords are storedWords as JSON strings.
var quotedWords = func() [][]byte {
	q := make([][]byte, len(storedWords))
	for i, w := range storedWords {
		q[i] = appendString(nil, w)
	}
	return q
}()

// storedDecisionsJSON reads stored decisions with encoding/json, for
// UnmarshalJSON's fallback.
type storedDecisionsJSON []Decision

var errStoredDecision = errors.New("a stored decision is [event_id, outcome, version, offset, type, reason, message], the last three optional")

// UnmarshalJSON implements json.Unmarshaler.
func (s *storedDecisionsJSON) UnmarshalJSON(data []byte) error {
	var raw [][]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	ds := make([]Decision, 0, len(raw))
	for _, fields := range raw {
		if len(fields) < 4 || len(fields) > 7 {
			return errStoredDecision
		}
		var d Decision
		var outcome string
		targets := []any{&d.EventID, &outcome, &d.Version, &d.Offset, &d.Type, &d.Reason, &d.Message}
		for i, f := range fields {
			if i == 1 || i == 4 || i == 5 {
				w, err := unmarshalWord(f)
				if err != nil {
					return err
				}
				*(targets[i].(*string)) = w
				continue
			}
			if err := json.Unmarshal(f, targets[i]); err != nil {
				return fmt.Errorf("%w: %w", errStoredDecision, err)
			}
		}
		d.Outcome = Outcome(outcome)
		ds = append(ds, d)
	}
	*s = ds
	return nil
}

// unmarshalWord reads what appendWord wrote with encoding/json.
func unmarshalWord(f json.RawMessage) (string, error) {
	var i int
	if err := json.Unmarshal(f, &i); err == nil {
		if i < 0 || i >= len(storedWords) {
			return "", fmt.Errorf("%w: word %d is not known", errStoredDecision, i)
		}
		return storedWords[i], nil
	}
	var w string
	if err := json.Unmarshal(f, &w); err != nil {
		return "", fmt.Errorf("%w: %w", errStoredDecision, err)
	}
	return w, nil
}

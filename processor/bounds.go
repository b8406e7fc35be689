package processor

import (
	"strconv"
	"unicode/utf8"
)

// Every string a record can put into a customer's state has a bound, so
// that no sequence of records can grow the state past what the table
// accepts: a table write over the producer's limit fails, and with
// ordered commits a failed write stops the processor, which is rebuilt,
// reads the same record and fails again, stalling its partition for ever.
// TestWorstCaseStateFitsTable builds the largest state these bounds allow
// and checks it against MaxStateBytes.
const (
	// MaxIDBytes bounds the CloudEvents id. The id is kept in the state
	// (last_event_id and each of the recent decisions); a longer one is
	// malformed.
	MaxIDBytes = 256
	// MaxSourceBytes bounds the CloudEvents source, a URI reference. It is
	// not kept in the state, but no attribute is unbounded; a longer one
	// is malformed.
	MaxSourceBytes = 1024
	// MaxDecisionMessageBytes bounds a decision's message. Messages quote
	// at most maxQuotedBytes of the input they are about.
	MaxDecisionMessageBytes = 256
	// MaxStateBytes bounds a customer's encoded state, well under the
	// 1 MiB that the table's producer and Kafka's brokers accept by
	// default (sarama's Producer.MaxMessageBytes, the broker's
	// message.max.bytes). The
	// bounds above keep every state the fold makes under it; Apply drops
	// the oldest recent decisions of a state that is over it anyway (one
	// written by an older build that had no such bounds), and the
	// processor dead-letters an event rather than write a state over it.
	MaxStateBytes = 512 << 10

	// maxQuotedBytes is how much of an input value a message quotes.
	maxQuotedBytes = 64
	// maxErrorBytes bounds a malformed event's error, which goes into the
	// dead letter's eventfold.error header and into HTTP 400 answers.
	maxErrorBytes = 512
)

// quote renders s for a message, cut to maxQuotedBytes: a message that
// quoted its whole input would carry the input's size into the state.
func quote(s string) string {
	if len(s) <= maxQuotedBytes {
		return strconv.Quote(s)
	}
	return strconv.Quote(truncateUTF8(s, maxQuotedBytes)) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// truncateUTF8 cuts s to at most n bytes, at a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// jsonExpansion is the most bytes the state's JSON encoding writes for
// one byte of a string: "<" becomes "\u003c", and so do control
// characters, U+2028 and invalid UTF-8 (as "\ufffd").
const jsonExpansion = 6

// stateSizeBound is an upper bound of len(c.AppendJSON(nil)), computed
// without encoding: the fold checks every state it makes, and the
// table's codec encodes it once more anyway.
func stateSizeBound(c *Customer) int {
	// Member names, punctuation, five integers and two times.
	n := 1024
	strs := len(c.ID) + len(c.Status) + len(c.Name) + len(c.Email) + len(c.SuspendedReason) + len(c.LastEventID)
	if a := c.Address; a != nil {
		strs += len(a.Line1) + len(a.Line2) + len(a.City) + len(a.PostalCode) + len(a.Country)
	}
	for _, d := range c.Decisions {
		n += decisionOverhead
		strs += len(d.EventID) + len(d.Outcome) + len(d.Reason) + len(d.Message) + len(d.Type)
	}
	n += strs * jsonExpansion
	return n + (len(c.History.deltas)+2)/3*4
}

// decisionOverhead bounds a decision's member names, punctuation,
// version and offset.
const decisionOverhead = 160

// stateSize returns the size of c's table encoding, or a bound of it when
// that is under MaxStateBytes (the common case, which costs no encoding).
func stateSize(c *Customer) int {
	if n := stateSizeBound(c); n <= MaxStateBytes {
		return n
	}
	return len(c.AppendJSON(nil))
}

// fitState drops the oldest recent decisions of c until its encoding
// fits MaxStateBytes, keeping at least the newest. The bounds keep every
// state the fold makes under the limit, so this only trims states that
// an older build wrote (with ids of up to 64 KiB); if the rest of the
// state is still too large, the processor dead-letters the event.
func fitState(c Customer) Customer {
	if stateSizeBound(&c) <= MaxStateBytes {
		return c
	}
	size := len(c.AppendJSON(nil))
	drop := 0
	for size > MaxStateBytes && drop < len(c.Decisions)-1 {
		size -= len(appendDecision(nil, c.Decisions[drop])) + 1 // and its comma
		drop++
	}
	if drop > 0 {
		c.Decisions = append([]Decision(nil), c.Decisions[drop:]...)
	}
	return c
}

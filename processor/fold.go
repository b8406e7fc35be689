package processor

import (
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"unicode/utf8"
)

// Outcome says what the fold did with an event.
type Outcome string

// Outcomes of a decision.
const (
	Accepted  Outcome = "accepted"
	Rejected  Outcome = "rejected"
	Duplicate Outcome = "duplicate"
)

// Reasons for rejecting an event. ReasonMalformed and ReasonWrongPartition
// are decided before the fold, ReasonStateTooLarge after it, and they send
// the record to the dead-letter topic; the others are decided by the fold
// and recorded in the customer's state.
const (
	ReasonMalformed      = "malformed"
	ReasonWrongPartition = "wrong_partition"
	// ReasonStateTooLarge: the state the event would leave is over
	// MaxStateBytes even without its older decisions. The bounds of the
	// event contract keep every state the fold makes under it, so only a
	// state written by an older build, without those bounds, can get it.
	ReasonStateTooLarge = "state_too_large"
	// ReasonKeyMissing: a sealed value names a data key that the keys
	// topic does not hold, for a customer that was not erased.
	ReasonKeyMissing = "key_missing"
	// ReasonBadSeal: a sealed value fails authentication with its key:
	// it was altered, or moved from another customer or field.
	ReasonBadSeal           = "bad_seal"
	ReasonInvalid           = "invalid"
	ReasonNotRegistered     = "not_registered"
	ReasonAlreadyRegistered = "already_registered"
	ReasonErased            = "erased"
	ReasonVersionConflict   = "version_conflict"
)

// Reasons lists every rejection reason.
var Reasons = []string{
	ReasonMalformed, ReasonWrongPartition, ReasonStateTooLarge, ReasonKeyMissing, ReasonBadSeal, ReasonInvalid, ReasonNotRegistered,
	ReasonAlreadyRegistered, ReasonErased, ReasonVersionConflict,
}

// DeadLetterReasons lists the reasons whose records go to the dead-letter
// topic.
var DeadLetterReasons = []string{ReasonMalformed, ReasonWrongPartition, ReasonStateTooLarge, ReasonKeyMissing, ReasonBadSeal}

// Decision is the fold's verdict on one event.
type Decision struct {
	EventID string  `json:"event_id"`
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason,omitempty"`
	Message string  `json:"message,omitempty"`
	// Version is the customer's version after the decision: the new
	// version when accepted, the unchanged one otherwise.
	Version int64 `json:"version"`
	// Type is the decided event's type, one of EventTypes (a record of
	// any other type is malformed, never decided), so that a rejection
	// says what was attempted without keeping the event's data, which
	// may be personal.
	Type string `json:"type,omitempty"`
	// Offset is the decided record's offset in the customer's partition,
	// -1 when unknown (and in decisions kept before offsets were): the
	// attempted event can be read back from the log by it.
	Offset int64 `json:"offset"`
}

// Apply folds one event into a customer's state. It is pure: the result
// depends only on its arguments, and state is not modified. A duplicate
// (an event id among the recent decisions, or a record offset already
// decided) returns state unchanged and must not be written back.
//
// The state it returns encodes to at most MaxStateBytes whenever the
// state it was given came from Apply: the event contract bounds every
// string that reaches the state. A larger state, written by an older
// build, loses its oldest recent decisions until it fits, if it can.
func Apply(state Customer, ev Event) (Customer, Decision) {
	next, d := apply(state, ev)
	if d.Outcome == Duplicate {
		return next, d
	}
	return fitState(next), d
}

func apply(state Customer, ev Event) (Customer, Decision) {
	if ev.Offset >= 0 && ev.Offset < state.NextOffset {
		return state, Decision{EventID: ev.ID, Outcome: Duplicate, Version: state.Version,
			Message: fmt.Sprintf("offset %d was already decided", ev.Offset)}
	}
	if prior, seen := state.Decision(ev.ID); seen {
		return state, Decision{EventID: ev.ID, Outcome: Duplicate, Version: state.Version,
			Reason: prior.Reason, Message: "event id already decided as " + string(prior.Outcome)}
	}
	next := state
	next.ID = ev.Key
	if ev.Offset >= 0 {
		next.NextOffset = ev.Offset + 1
	}
	reason, msg := check(state, ev)
	if keys := mergeKeys(state.DataKeys, ev.KeyIDs); len(keys) <= MaxDataKeys {
		// The keys of a rejected event sealed data in the log too: an
		// erasure must delete them as well.
		next.DataKeys = keys
	}
	if reason != "" {
		d := Decision{EventID: ev.ID, Outcome: Rejected, Reason: reason, Message: truncateUTF8(msg, MaxDecisionMessageBytes),
			Version: state.Version, Type: decidedType(ev), Offset: max(ev.Offset, -1)}
		next.Decisions = remember(state.Decisions, d)
		return next, d
	}
	applyData(&next, ev)
	next.Version = state.Version + 1
	if ev.Offset >= 0 {
		next.History = state.History.Append(next.Version, ev.Offset)
	} else {
		// An event whose offset is unknown cannot be read back: the kept
		// history restarts after it rather than misnumber versions.
		next.History = History{}
	}
	next.LastEventID = ev.ID
	if !ev.Time.IsZero() {
		if state.Version == 0 {
			next.CreatedAt = ev.Time
		}
		next.UpdatedAt = ev.Time
	}
	d := Decision{EventID: ev.ID, Outcome: Accepted, Version: next.Version, Type: decidedType(ev), Offset: max(ev.Offset, -1)}
	next.Decisions = remember(state.Decisions, d)
	return next, d
}

// decidedType is ev's type as a decision keeps it: one of EventTypes,
// else empty. Decoding refuses any other type, but Apply bounds what it
// keeps by itself.
func decidedType(ev Event) string {
	if slices.Contains(EventTypes, ev.Type) {
		return ev.Type
	}
	return ""
}

// remember appends d to a copy of the ring, dropping the oldest entries.
func remember(ring []Decision, d Decision) []Decision {
	keep := ring
	if len(keep) >= RecentDecisions {
		keep = keep[len(keep)-RecentDecisions+1:]
	}
	out := make([]Decision, 0, len(keep)+1)
	out = append(out, keep...)
	return append(out, d)
}

// check returns the rejection reason for ev on state, or "" to accept.
// The order is part of the contract: invalid data first, then the
// lifecycle (erased, registration), then the optimistic concurrency check.
func check(state Customer, ev Event) (reason, message string) {
	if msg := validate(ev, quote); msg != "" {
		return ReasonInvalid, msg
	}
	if n := len(mergeKeys(state.DataKeys, ev.KeyIDs)); n > MaxDataKeys {
		return ReasonInvalid, fmt.Sprintf("the event would give the customer %d data keys, over %d", n, MaxDataKeys)
	}
	switch {
	case state.Status == StatusErased:
		return ReasonErased, "customer was erased"
	case ev.Type == TypeRegistered && state.Version > 0:
		return ReasonAlreadyRegistered, "customer is already registered"
	case ev.Type != TypeRegistered && state.Version == 0:
		return ReasonNotRegistered, "customer is not registered"
	}
	if ev.ExpectedVersion != nil && *ev.ExpectedVersion != state.Version {
		return ReasonVersionConflict, fmt.Sprintf("expected version %d, current version is %d", *ev.ExpectedVersion, state.Version)
	}
	return "", ""
}

func applyData(c *Customer, ev Event) {
	switch p := ev.Payload.(type) {
	case *RegisteredData:
		c.Status = StatusActive
		c.Name, c.Email = trim(p.Name), trim(p.Email)
		c.Address = normalizeAddress(p.Address)
	case *RenamedData:
		c.Name = trim(p.Name)
	case *EmailChangedData:
		c.Email = trim(p.Email)
	case *AddressChangedData:
		c.Address = normalizeAddress(p.Address)
	case *SuspendedData:
		c.Status = StatusSuspended
		c.SuspendedReason = p.Reason
	case *ReactivatedData:
		c.Status = StatusActive
		c.SuspendedReason = ""
	case *ErasedData:
		c.Status = StatusErased
		c.Name, c.Email, c.Address, c.SuspendedReason = "", "", nil, ""
	}
}

// trim normalizes a plaintext field; a sealed one was normalized by the
// writer before it was sealed, and is kept byte for byte.
func trim(s string) string {
	if IsSealed(s) {
		return s
	}
	return strings.TrimSpace(s)
}

// NormalizeAddress is the address as the fold keeps it: trimmed, the
// country in upper case. Writers apply it before they seal.
func NormalizeAddress(a *Address) *Address { return normalizeAddress(a) }

func normalizeAddress(a *Address) *Address {
	if a == nil {
		return nil
	}
	n := Address{Line1: trim(a.Line1), Line2: trim(a.Line2), City: trim(a.City), PostalCode: trim(a.PostalCode), Country: trim(a.Country)}
	if !IsSealed(n.Country) {
		n.Country = strings.ToUpper(n.Country)
	}
	return &n
}

// Field limits checked by validate.
const (
	maxNameLength   = 200
	maxEmailLength  = 254
	maxFieldLength  = 200
	maxReasonLength = 500
)

// validate checks an event's data; it returns a message when it is
// invalid, quoting input with q. A sealed value passes: its writer
// validated the plaintext, and said so in SealedInvalid if it failed.
func validate(ev Event, q func(string) string) string {
	if ev.SealedInvalid != "" {
		return ev.SealedInvalid
	}
	switch p := ev.Payload.(type) {
	case *RegisteredData:
		if msg := validateName(p.Name); msg != "" {
			return msg
		}
		if msg := validateEmail(p.Email, q); msg != "" {
			return msg
		}
		if p.Address != nil {
			return validateAddress(*p.Address, q)
		}
	case *RenamedData:
		return validateName(p.Name)
	case *EmailChangedData:
		return validateEmail(p.Email, q)
	case *AddressChangedData:
		if p.Address == nil {
			return "address is required"
		}
		return validateAddress(*p.Address, q)
	case *SuspendedData:
		if !IsSealed(p.Reason) && utf8.RuneCountInString(p.Reason) > maxReasonLength {
			return fmt.Sprintf("reason is longer than %d characters", maxReasonLength)
		}
	case *ReactivatedData, *ErasedData:
	default:
		return fmt.Sprintf("no data for event type %s", q(ev.Type))
	}
	return ""
}

func validateName(name string) string {
	n := strings.TrimSpace(name)
	switch {
	case IsSealed(n):
		return ""
	case n == "":
		return "name must not be empty"
	case utf8.RuneCountInString(n) > maxNameLength:
		return fmt.Sprintf("name is longer than %d characters", maxNameLength)
	}
	return ""
}

func validateEmail(email string, q func(string) string) string {
	e := strings.TrimSpace(email)
	if IsSealed(e) {
		return ""
	}
	if e == "" {
		return "email must not be empty"
	}
	if len(e) > maxEmailLength {
		return fmt.Sprintf("email is longer than %d bytes", maxEmailLength)
	}
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" {
		return fmt.Sprintf("email %s is not a valid address", q(e))
	}
	return ""
}

func validateAddress(a Address, q func(string) string) string {
	for _, f := range []struct{ name, value string }{
		{"address.line1", a.Line1}, {"address.city", a.City}, {"address.postal_code", a.PostalCode},
	} {
		v := strings.TrimSpace(f.value)
		if IsSealed(v) {
			continue
		}
		if v == "" {
			return f.name + " must not be empty"
		}
		if utf8.RuneCountInString(v) > maxFieldLength {
			return fmt.Sprintf("%s is longer than %d characters", f.name, maxFieldLength)
		}
	}
	if !IsSealed(a.Line2) && utf8.RuneCountInString(a.Line2) > maxFieldLength {
		return fmt.Sprintf("address.line2 is longer than %d characters", maxFieldLength)
	}
	if !IsSealed(a.Country) && !isCountryCode(strings.ToUpper(strings.TrimSpace(a.Country))) {
		return fmt.Sprintf("address.country %s is not an ISO 3166-1 alpha-2 code", q(a.Country))
	}
	return ""
}

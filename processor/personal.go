package processor

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Personal data in events and states. eventfold's writers seal the
// personal fields of an event (name, email, every address field and the
// reason of a suspension) with a data key of that customer alone, so that
// deleting the customer's keys makes every copy unreadable: see the
// internal/keys package. This file is the contract part: how a sealed
// value looks, which event attribute marks a sealed event, and which
// fields are personal. The fold never decrypts.
const (
	// PersonalDataAttribute is the CloudEvents extension attribute that
	// marks an event whose personal fields are sealed. Its value is
	// PersonalDataAES.
	PersonalDataAttribute = "personaldata"
	// PersonalDataAES says the personal fields are sealed with
	// AES-256-GCM by a data key of the customer.
	PersonalDataAES = "aes256gcm"
	// PersonalDataInvalidAttribute carries the message of a sealed event
	// whose plaintext failed validation when it was sealed: the fold
	// cannot read the plaintext, so the writer, which could, says so.
	PersonalDataInvalidAttribute = "personaldatainvalid"
	// SealedPrefix starts every sealed value:
	// "ef1:<key id>:<base64url of nonce and ciphertext>". A plaintext
	// value may not start with it.
	SealedPrefix = "ef1:"
	// MaxSealedBytes bounds one sealed value: the longest field (a reason
	// of 500 characters of up to 4 bytes) sealed is under 2,800 bytes.
	MaxSealedBytes = 3 << 10
	// MaxDataKeys bounds the data keys one customer's events may use.
	// Writers reuse a customer's key, so there is one, or a few when
	// writers raced to create the first.
	MaxDataKeys = 16
	// KeyIDLength is the length of a data key id: 16 lower-case hex digits.
	KeyIDLength = 16
)

// PersonalField is one personal field of an event's data or of a state.
// Name is the field's name in the event's data ("name", "email",
// "address.city", "reason"): it is bound into the seal, so a sealed
// value cannot be moved to another field or another customer.
type PersonalField struct {
	Name  string
	Value *string
}

// PersonalFields lists the personal fields of an event payload, pointing
// into it.
func PersonalFields(payload any) []PersonalField {
	switch p := payload.(type) {
	case *RegisteredData:
		return append([]PersonalField{{"name", &p.Name}, {"email", &p.Email}}, addressFields(p.Address)...)
	case *RenamedData:
		return []PersonalField{{"name", &p.Name}}
	case *EmailChangedData:
		return []PersonalField{{"email", &p.Email}}
	case *AddressChangedData:
		return addressFields(p.Address)
	case *SuspendedData:
		return []PersonalField{{"reason", &p.Reason}}
	}
	return nil
}

// PersonalFields lists the personal fields of a state, pointing into it,
// named as in the events they came from.
func (c *Customer) PersonalFields() []PersonalField {
	return append([]PersonalField{{"name", &c.Name}, {"email", &c.Email}, {"reason", &c.SuspendedReason}},
		addressFields(c.Address)...)
}

func addressFields(a *Address) []PersonalField {
	if a == nil {
		return nil
	}
	return []PersonalField{{"address.line1", &a.Line1}, {"address.line2", &a.Line2}, {"address.city", &a.City},
		{"address.postal_code", &a.PostalCode}, {"address.country", &a.Country}}
}

// IsSealed reports whether a field value is sealed personal data.
func IsSealed(v string) bool { return strings.HasPrefix(v, SealedPrefix) }

// ErrNotSealed is returned by ParseSealed for a value that is not a
// well-formed sealed value.
var ErrNotSealed = errors.New("not a sealed value")

// ParseSealed splits a sealed value into its key id and its sealed bytes
// (nonce, then ciphertext and tag).
func ParseSealed(v string) (keyID string, sealed []byte, err error) {
	rest, ok := strings.CutPrefix(v, SealedPrefix)
	if !ok {
		return "", nil, ErrNotSealed
	}
	keyID, blob, ok := strings.Cut(rest, ":")
	if !ok || !ValidKeyID(keyID) {
		return "", nil, fmt.Errorf("%w: no key id of %d hex digits", ErrNotSealed, KeyIDLength)
	}
	sealed, err = base64.RawURLEncoding.DecodeString(blob)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrNotSealed, err)
	}
	return keyID, sealed, nil
}

// FormatSealed is the inverse of ParseSealed.
func FormatSealed(keyID string, sealed []byte) string {
	return SealedPrefix + keyID + ":" + base64.RawURLEncoding.EncodeToString(sealed)
}

// ValidKeyID reports whether id is a data key id.
func ValidKeyID(id string) bool {
	if len(id) != KeyIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// SealAAD is the additional data bound into the seal of a field value of
// a customer.
func SealAAD(customer, field string) []byte {
	return []byte("eventfold/v1\x00" + customer + "\x00" + field)
}

// checkSealing checks an event's personal fields against its
// personaldata attribute and collects the key ids of its sealed values:
// a sealed event has no plaintext personal field, and a plaintext event
// no value that looks sealed, so that a reader never mistakes one for
// the other.
func checkSealing(ev *Event, marker, invalid *string) error {
	if marker != nil {
		if *marker != PersonalDataAES {
			return malformed("%s %s is not %s", PersonalDataAttribute, quote(*marker), PersonalDataAES)
		}
		ev.Sealed = true
	}
	if invalid != nil {
		if !ev.Sealed {
			return malformed("%s needs %s", PersonalDataInvalidAttribute, PersonalDataAttribute)
		}
		if *invalid == "" || len(*invalid) > MaxDecisionMessageBytes {
			return malformed("%s must be 1 to %d bytes", PersonalDataInvalidAttribute, MaxDecisionMessageBytes)
		}
		ev.SealedInvalid = *invalid
	}
	for _, f := range PersonalFields(ev.Payload) {
		v := *f.Value
		if !IsSealed(v) {
			if ev.Sealed && v != "" {
				return malformed("%s is set but %s is not sealed", PersonalDataAttribute, f.Name)
			}
			continue
		}
		if !ev.Sealed {
			return malformed("%s starts with %q, which marks sealed data, but the event has no %s attribute",
				f.Name, SealedPrefix, PersonalDataAttribute)
		}
		if len(v) > MaxSealedBytes {
			return malformed("sealed %s of %d bytes exceeds %d", f.Name, len(v), MaxSealedBytes)
		}
		keyID, _, err := ParseSealed(v)
		if err != nil {
			return malformed("sealed %s: %v", f.Name, err)
		}
		if !slices.Contains(ev.KeyIDs, keyID) {
			ev.KeyIDs = append(ev.KeyIDs, keyID)
		}
	}
	return nil
}

// mergeKeys adds the key ids of an event to a state's, in a new slice.
func mergeKeys(have, add []string) []string {
	out := have
	for _, id := range add {
		if !slices.Contains(out, id) {
			out = append(slices.Clip(out), id)
		}
	}
	return out
}

// HasPlaintext reports whether an event carries personal data unsealed.
func HasPlaintext(ev Event) bool {
	for _, f := range PersonalFields(ev.Payload) {
		if *f.Value != "" && !IsSealed(*f.Value) {
			return true
		}
	}
	return false
}

// ValidateRedacted checks an event's data as the fold does and returns
// the message of an invalid one, quoting no personal value: writers put
// it in PersonalDataInvalidAttribute when they seal the event.
func ValidateRedacted(ev Event) string {
	return validate(ev, func(string) string { return "(personal data)" })
}

// Errors of Keyring.Verify.
var (
	// ErrKeyMissing: the key of a sealed value is not in the keys topic
	// and its customer was not erased.
	ErrKeyMissing = errors.New("data key missing")
	// ErrBadSeal: a sealed value fails authentication.
	ErrBadSeal = errors.New("sealed value fails authentication")
	// ErrKeysUnavailable: the keys topic could not be read to its end
	// (Kafka unreachable, the processor stopping), so whether the key
	// exists is not known. The record is not at fault and is not
	// dead-lettered: the processor stops and folds it again.
	ErrKeysUnavailable = errors.New("keys topic unavailable")
	// ErrCustomerErased: no data key is made for an erased customer.
	ErrCustomerErased = errors.New("customer was erased")
)

// Keyring is what the processor needs of the data keys (internal/keys).
type Keyring interface {
	// Verify authenticates a sealed value of a customer's field. It
	// returns nil when the value is authentic or its key was erased with
	// its customer (a rebuild after an erasure reaches the same decisions
	// without the plaintext), an error wrapping ErrKeyMissing or
	// ErrBadSeal otherwise. It may wait, boundedly, for the keys topic to
	// be read up to its end; it never waits for a key to appear.
	Verify(ctx context.Context, customer, field, sealed string) error
	// KeyIDs lists the ids of the customer's keys the keyring holds.
	KeyIDs(customer string) []string
	// Erase forgets the customer's keys at once, before the tombstones
	// the processor wrote come back from the keys topic.
	Erase(customer string)
}

// verifySealed checks every sealed value of ev with the keyring and
// returns the dead-letter reason of the first that fails.
func verifySealed(ctx context.Context, kr Keyring, ev Event) (string, error) {
	if kr == nil || !ev.Sealed {
		return "", nil
	}
	for _, f := range PersonalFields(ev.Payload) {
		if !IsSealed(*f.Value) {
			continue
		}
		err := kr.Verify(ctx, ev.Key, f.Name, *f.Value)
		switch {
		case err == nil:
		case errors.Is(err, ErrBadSeal):
			return ReasonBadSeal, fmt.Errorf("%s of %q: %w", f.Name, ev.Key, err)
		case errors.Is(err, ErrKeysUnavailable):
			return "", fmt.Errorf("%s of %q: %w", f.Name, ev.Key, err)
		default:
			return ReasonKeyMissing, fmt.Errorf("%s of %q: %w", f.Name, ev.Key, err)
		}
	}
	return "", nil
}

// KeyRecordKey is the record key of a data key in the keys topic: each
// key its own record, so that two writers creating a first key for one
// customer at once both keep theirs (compaction keeps the last record of
// a key). The customer id cannot contain '/'.
func KeyRecordKey(customer, keyID string) string { return customer + "/" + keyID }

// ErasedMarker is the value of the record keyed by the bare customer id
// that an erasure writes to the keys topic: it outlives the tombstones of
// the customer's keys, so that a rebuild knows a missing key was erased.
var ErasedMarker = []byte(`{"erased":true}`)

// shredKeys is what an event's decision erases: every key of a customer
// that the event erases, and the keys of an event that arrives after the
// erasure.
func shredKeys(state, next Customer, ev Event, d Decision) []string {
	switch {
	case d.Outcome == Duplicate || next.Status != StatusErased:
		return nil
	case state.Status != StatusErased:
		return next.DataKeys
	}
	return ev.KeyIDs
}

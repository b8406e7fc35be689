package keys

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/eventfold/eventfold/processor"
)

// Seal returns a structured-mode event (the record value of an HTTP
// append or an eventfold produce line) with its personal fields sealed by
// a data key of the customer, created and published first if the
// customer has none, and the personaldata attribute set. Fields are
// normalized as the fold keeps them before they are sealed. When the
// plaintext fails the fold's validation, the redacted message goes in
// personaldatainvalid, so that the fold, which cannot read it, rejects it
// alike. An event without personal data, or already sealed, is returned
// as it is. Unknown fields of data are dropped: they could hold personal
// data that no key protects.
func (k *Keyring) Seal(ctx context.Context, customer string, value []byte) ([]byte, error) {
	ev, err := processor.Decode(customer, value)
	if err != nil {
		return nil, err
	}
	fields := processor.PersonalFields(ev.Payload)
	plain := false
	for _, f := range fields {
		plain = plain || *f.Value != ""
	}
	if !plain || ev.Sealed {
		return value, nil
	}
	dk, err := k.keyFor(ctx, customer)
	if err != nil {
		return nil, err
	}
	return sealEvent(customer, value, ev, dk)
}

// SealDiscarded seals the personal fields of a structured-mode event as
// Seal does, but with a random key that is never published nor kept,
// under the key id keyID: nobody can open the result, not even with the
// KEK. eventfold redact uses it on an erased customer's plaintext, which
// then folds as any sealed value whose key was erased with its customer.
func SealDiscarded(customer, keyID string, value []byte) ([]byte, error) {
	ev, err := processor.Decode(customer, value)
	if err != nil {
		return nil, err
	}
	if !processor.ValidKeyID(keyID) {
		return nil, fmt.Errorf("failed to seal: key id %q is not %d hex digits", keyID, processor.KeyIDLength)
	}
	if ev.Sealed {
		return value, nil
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // never fails since Go 1.24
	return sealEvent(customer, value, ev, dataKey{id: keyID, raw: raw})
}

// NewKeyID returns a random data key id.
func NewKeyID() string {
	id := make([]byte, processor.KeyIDLength/2)
	_, _ = rand.Read(id) // never fails since Go 1.24
	return hex.EncodeToString(id)
}

// sealEvent seals the decoded event ev of value with dk.
func sealEvent(customer string, value []byte, ev processor.Event, dk dataKey) ([]byte, error) {
	invalid := processor.ValidateRedacted(ev)
	normalize(ev.Payload)
	aead, err := newAEAD(dk.raw)
	if err != nil {
		return nil, err
	}
	for _, f := range processor.PersonalFields(ev.Payload) {
		if *f.Value != "" {
			*f.Value = processor.FormatSealed(dk.id, seal(aead, []byte(*f.Value), processor.SealAAD(customer, f.Name)))
		}
	}
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(value, &attrs); err != nil {
		return nil, fmt.Errorf("failed to read event: %w", err)
	}
	if attrs["data"], err = json.Marshal(ev.Payload); err != nil {
		return nil, fmt.Errorf("failed to encode sealed data: %w", err)
	}
	attrs[processor.PersonalDataAttribute], _ = json.Marshal(processor.PersonalDataAES)
	if invalid != "" {
		attrs[processor.PersonalDataInvalidAttribute], _ = json.Marshal(invalid)
	}
	out, err := json.Marshal(attrs)
	if err != nil {
		return nil, fmt.Errorf("failed to encode sealed event: %w", err)
	}
	if _, err := processor.Decode(customer, out); err != nil {
		return nil, fmt.Errorf("sealed event: %w", err)
	}
	return out, nil
}

// normalize trims the personal fields as the fold would.
func normalize(payload any) {
	for _, f := range processor.PersonalFields(payload) {
		if f.Name != "reason" {
			*f.Value = trimmed(*f.Value)
		}
	}
	switch p := payload.(type) {
	case *processor.RegisteredData:
		p.Address = processor.NormalizeAddress(p.Address)
	case *processor.AddressChangedData:
		p.Address = processor.NormalizeAddress(p.Address)
	}
}

package keys

import (
	"encoding/json"
	"strings"

	"github.com/eventfold/eventfold/processor"
)

// Values of the personal_data field and of an opened event's personaldata
// attribute.
const (
	StatusEncrypted  = "encrypted"
	StatusErased     = "erased"
	StatusUnreadable = "unreadable"
	StatusPlaintext  = "plaintext"
)

func trimmed(s string) string { return strings.TrimSpace(s) }

// openField opens one sealed value of a customer's field.
func (k *Keyring) openField(customer, field, sealed string) (string, bool) {
	keyID, blob, err := processor.ParseSealed(sealed)
	if err != nil {
		return "", false
	}
	raw, found, _ := k.lookup(customer, keyID)
	if !found {
		return "", false
	}
	plain, err := k.openWith(raw, blob, processor.SealAAD(customer, field))
	if err != nil {
		return "", false
	}
	return string(plain), true
}

// lostStatus says why sealed data of a customer cannot be opened.
func (k *Keyring) lostStatus(customer string, erased bool) string {
	if erased || k.Erased(customer) {
		return StatusErased
	}
	return StatusUnreadable
}

// OpenCustomer returns a copy of a state with its sealed fields opened.
// A field whose key is gone is left out, and PersonalData says why
// (processor.Customer.PersonalData); the state itself is not modified.
func (k *Keyring) OpenCustomer(c *processor.Customer) *processor.Customer {
	out := *c
	if c.Address != nil {
		a := *c.Address
		out.Address = &a
	}
	var opened, lost, plain bool
	for _, f := range out.PersonalFields() {
		v := *f.Value
		switch {
		case v == "":
		case !processor.IsSealed(v):
			plain = true
		default:
			if p, ok := k.openField(c.ID, f.Name, v); ok {
				*f.Value, opened = p, true
			} else {
				*f.Value, lost = "", true
			}
		}
	}
	switch {
	case lost:
		if out.Address != nil && (out.Address.Line1 == "" || out.Address.City == "" || out.Address.PostalCode == "" || out.Address.Country == "") {
			out.Address = nil
		}
		out.PersonalData = k.lostStatus(c.ID, c.Status == processor.StatusErased)
	case c.Status == processor.StatusErased:
		out.PersonalData = StatusErased
	case plain:
		out.PersonalData = StatusPlaintext
	case opened:
		out.PersonalData = StatusEncrypted
	}
	return &out
}

// OpenEvent returns a structured-mode event read back from the log with
// its sealed fields opened. Fields whose key is gone are left out of data
// and its personaldata attribute says why ("erased" or "unreadable").
// Anything else is returned as it is.
func (k *Keyring) OpenEvent(customer string, erased bool, event json.RawMessage) json.RawMessage {
	var attrs map[string]json.RawMessage
	if json.Unmarshal(event, &attrs) != nil || attrs[processor.PersonalDataAttribute] == nil {
		return event
	}
	var data map[string]json.RawMessage
	if json.Unmarshal(attrs["data"], &data) != nil {
		return event
	}
	lost := false
	openIn := func(m map[string]json.RawMessage, prefix string) {
		for name, raw := range m {
			var v string
			if json.Unmarshal(raw, &v) != nil || !processor.IsSealed(v) {
				continue
			}
			if p, ok := k.openField(customer, prefix+name, v); ok {
				m[name], _ = json.Marshal(p)
			} else {
				delete(m, name)
				lost = true
			}
		}
	}
	openIn(data, "")
	var address map[string]json.RawMessage
	if json.Unmarshal(data["address"], &address) == nil && address != nil {
		openIn(address, "address.")
		data["address"], _ = json.Marshal(address)
	}
	attrs["data"], _ = json.Marshal(data)
	if lost {
		attrs[processor.PersonalDataAttribute], _ = json.Marshal(k.lostStatus(customer, erased))
	}
	out, err := json.Marshal(attrs)
	if err != nil {
		return event
	}
	return out
}

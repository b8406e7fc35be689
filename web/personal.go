package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/views"
)

// Personal seals and opens customers' personal data: a keys.Keyring.
type Personal interface {
	// Seal seals the personal fields of a structured-mode event.
	Seal(ctx context.Context, customer string, value []byte) ([]byte, error)
	// OpenCustomer returns a copy of a state with its sealed fields
	// opened, or marked as erased or unreadable.
	OpenCustomer(c *processor.Customer) *processor.Customer
	// OpenEvent opens the sealed fields of an event read from the log.
	OpenEvent(customer string, erased bool, event json.RawMessage) json.RawMessage
}

// public returns the state as clients see it: personal data opened, and
// without the offsets of its events, which serve GET
// /customers/{id}/events and are an encoding detail of the table.
func (s *Server) public(c *processor.Customer) *processor.Customer {
	var out processor.Customer
	if s.personal != nil {
		out = *s.personal.OpenCustomer(c)
	} else {
		out = *c
	}
	out.History = processor.History{}
	return &out
}

// openPublicJSON returns a stored public state (processor.PublicJSON) as
// clients see it: with its personal data opened when erasure is on.
func (s *Server) openPublicJSON(body []byte) []byte {
	if s.personal == nil {
		return body
	}
	c, err := processor.DecodeCustomer(body)
	if err != nil {
		return body // PublicJSON made it; it decodes
	}
	return s.public(c).AppendJSON(nil)
}

// writePersonalJSON answers a lookup from the stored public JSON, opening
// it first when it holds sealed values.
func (s *Server) writePersonalJSON(w http.ResponseWriter, body []byte) {
	c, err := processor.DecodeCustomer(body)
	if err != nil {
		s.lookupFailed(w, "", err)
		return
	}
	writeJSON(w, http.StatusOK, s.public(c))
}

// openEvents opens the sealed fields of the events of c's history.
func (s *Server) openEvents(c *processor.Customer, events []views.Event) {
	for i := range events {
		events[i].Event = s.openEvent(c, events[i].Event)
	}
}

// openEvent opens the sealed fields of one event of c read from the log.
func (s *Server) openEvent(c *processor.Customer, event json.RawMessage) json.RawMessage {
	if s.personal == nil {
		return event
	}
	return s.personal.OpenEvent(c.ID, c.Status == processor.StatusErased, event)
}

// openAttempted opens the event of a decision as history opens events.
// For an erased customer it also leaves out its data, whatever a
// third-party producer wrote there in plaintext (every field of every
// event type's data is personal, and unknown fields may be), and its
// personaldata attribute says erased: a rejected event of an erased
// customer never shows personal data, sealed or not.
func (s *Server) openAttempted(c *processor.Customer, event json.RawMessage) json.RawMessage {
	event = s.openEvent(c, event)
	if c.Status != processor.StatusErased {
		return event
	}
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(event, &attrs); err != nil {
		return json.RawMessage(`{}`) // views.History decoded it: not reached
	}
	delete(attrs, "data")
	delete(attrs, "data_base64")
	attrs[processor.PersonalDataAttribute] = json.RawMessage(`"` + processor.StatusErased + `"`)
	out, err := json.Marshal(attrs)
	if err != nil {
		return json.RawMessage(`{}`) // a map of raw JSON values marshals
	}
	return out
}

// seal seals a write's personal data, answering the request when it
// cannot.
func (s *Server) seal(w http.ResponseWriter, r *http.Request, id string, value []byte) ([]byte, bool) {
	if s.personal == nil {
		return value, true
	}
	sealed, err := s.personal.Seal(r.Context(), id, value)
	switch {
	case err == nil:
		return sealed, true
	case errors.Is(err, processor.ErrMalformed):
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "the event is too large once its personal data is sealed: "+err.Error())
	case errors.Is(err, processor.ErrCustomerErased):
		writeError(w, http.StatusUnprocessableEntity, processor.ReasonErased, err.Error())
	default:
		s.log.Warn("failed to seal an event", "customer", id, "error", err)
		writeError(w, http.StatusServiceUnavailable, "kafka_unavailable", "the customer's data key could not be published; retry with the same event id")
	}
	return nil, false
}

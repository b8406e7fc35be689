package processor

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Status is the lifecycle status of a customer.
type Status string

// Customer statuses. A customer that was never registered has no status.
const (
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
	StatusErased    Status = "erased"
)

// RecentDecisions is how many decisions a Customer remembers. An event id
// seen among them is a duplicate; older duplicates are not detected.
const RecentDecisions = 32

// Customer is the state of one customer: the fold of its events so far.
// It is stored as JSON in the group table (AppendStored).
//
// A Customer with Version 0 was never registered: it exists only to hold
// the decisions on events that were rejected for it, and lookups treat it
// as not found.
type Customer struct {
	ID              string    `json:"id"`
	Version         int64     `json:"version"`
	Status          Status    `json:"status,omitempty"`
	Name            string    `json:"name,omitempty"`
	Email           string    `json:"email,omitempty"`
	Address         *Address  `json:"address,omitempty"`
	SuspendedReason string    `json:"suspended_reason,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	LastEventID     string    `json:"last_event_id,omitempty"`

	// NextOffset is one past the offset of the last record decided for
	// this customer: a record below it was already decided and is a
	// redelivery. Zero means no record was decided yet.
	NextOffset int64 `json:"next_offset"`
	// Decisions holds the most recent decisions, oldest first, at most
	// RecentDecisions of them.
	Decisions []Decision `json:"recent_decisions,omitempty"`
	// DataKeys are the ids of the data keys that sealed personal data of
	// this customer's decided events, at most MaxDataKeys: erasing the
	// customer deletes them.
	DataKeys []string `json:"data_keys,omitempty"`
	// PersonalData is set by readers, never by the fold: "encrypted" when
	// the sealed personal fields were opened, "erased" when their keys
	// were erased, "unreadable" when a key is missing for a customer that
	// was not erased (fields that cannot be opened are left out), and
	// "plaintext" when a personal field was written unsealed, by a
	// producer other than eventfold's.
	PersonalData string `json:"personal_data,omitempty"`
	// History holds the offsets of the accepted events, to read them back
	// from the events topic; the partition is the key's.
	History History `json:"history,omitzero"`
}

// Registered reports whether the customer exists for lookups.
func (c *Customer) Registered() bool { return c != nil && c.Version > 0 }

// Decision finds the recorded decision on the event with the given id.
func (c *Customer) Decision(eventID string) (Decision, bool) {
	if c == nil {
		return Decision{}, false
	}
	for i := len(c.Decisions) - 1; i >= 0; i-- {
		if c.Decisions[i].EventID == eventID {
			return c.Decisions[i], true
		}
	}
	return Decision{}, false
}

// CustomerCodec is the goka codec of the group table.
type CustomerCodec struct{}

// Encode implements goka.Codec.
func (CustomerCodec) Encode(value any) ([]byte, error) {
	c, ok := value.(*Customer)
	if !ok {
		return nil, fmt.Errorf("failed to encode customer: unexpected type %T", value)
	}
	// goka keeps the encoding (storage, producer), so it must be a slice
	// of its own. Grown by append from a guess, it cost a chain of
	// allocations (17 KB for 4.5 KB of state with a full ring of
	// decisions); encoded into a reused buffer and copied once, it costs
	// one of its size.
	buf := encodeBuffers.Get().(*[]byte)
	*buf = c.AppendStored((*buf)[:0])
	out := slices.Clone(*buf)
	if cap(*buf) <= maxPooledEncoding {
		encodeBuffers.Put(buf)
	}
	return out, nil
}

// encodeBuffers hold the encodings of CustomerCodec.Encode; one larger
// than maxPooledEncoding (a state an older build wrote) is not kept.
var encodeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

const maxPooledEncoding = 64 << 10

// Decode implements goka.Codec.
func (CustomerCodec) Decode(data []byte) (any, error) {
	return DecodeCustomer(data)
}

// CustomerOf is the state of a value CustomerCodec decoded (what goka's
// Context.Value returns): the zero Customer for no value.
func CustomerOf(value any) Customer {
	if c, ok := value.(*Customer); ok && c != nil {
		return *c
	}
	return Customer{}
}

// DecodeCustomer parses a table value. It calls the fast decoder
// directly: through json.Unmarshal, validating and re-scanning the input
// would cost three times the decoding itself.
func DecodeCustomer(data []byte) (*Customer, error) {
	var c Customer
	if err := c.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("failed to decode customer: %w", err)
	}
	return &c, nil
}

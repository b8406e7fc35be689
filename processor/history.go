package processor

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// MaxHistory is how many accepted-event offsets a customer's state keeps.
// At a few bytes per offset it keeps the state well under 64 KiB however
// many events a customer has. Past it, the oldest offsets are dropped in
// blocks of historyDrop; History.FirstVersion then says which version the
// kept history starts at, and older versions can no longer be read back.
const MaxHistory = 8192

const historyDrop = 1024

// History locates a customer's accepted events in its partition of the
// events topic: the offsets of versions FirstVersion..FirstVersion+Count-1,
// delta-encoded as varints. It is immutable: Append returns a new value.
type History struct {
	firstVersion int64
	count        int
	last         int64
	deltas       []byte
}

// FirstVersion is the version of the oldest kept event (1 unless older
// offsets were dropped).
func (h History) FirstVersion() int64 {
	if h.count == 0 {
		return 0
	}
	return h.firstVersion
}

// Len is the number of kept offsets.
func (h History) Len() int { return h.count }

// Append returns h with offset added as the given version's, which must
// follow the last kept one (or start an empty history).
func (h History) Append(version, offset int64) History {
	if h.count >= MaxHistory {
		h = h.dropOldest(historyDrop)
	}
	next := History{firstVersion: h.firstVersion, count: h.count + 1, last: offset}
	if h.count == 0 {
		next.firstVersion = version
	}
	next.deltas = make([]byte, len(h.deltas), len(h.deltas)+binary.MaxVarintLen64)
	copy(next.deltas, h.deltas)
	next.deltas = binary.AppendVarint(next.deltas, offset-h.last)
	return next
}

// Offsets decodes every kept offset, oldest first.
func (h History) Offsets() ([]int64, error) {
	out := make([]int64, 0, h.count)
	var prev int64
	for b := h.deltas; len(b) > 0; {
		d, n := binary.Varint(b)
		if n <= 0 {
			return nil, errors.New("corrupt history encoding")
		}
		prev += d
		out = append(out, prev)
		b = b[n:]
	}
	if len(out) != h.count {
		return nil, fmt.Errorf("history holds %d offsets, expected %d", len(out), h.count)
	}
	return out, nil
}

func (h History) dropOldest(n int) History {
	offsets, err := h.Offsets()
	if err != nil || n >= len(offsets) {
		return History{}
	}
	var out History
	first := h.firstVersion + int64(n)
	for i, o := range offsets[n:] {
		out = out.Append(first+int64(i), o)
	}
	return out
}

type historyJSON struct {
	FirstVersion int64  `json:"first_version"`
	Count        int    `json:"count"`
	Last         int64  `json:"last"`
	Deltas       string `json:"deltas"`
}

// MarshalJSON implements json.Marshaler.
func (h History) MarshalJSON() ([]byte, error) {
	return json.Marshal(historyJSON{FirstVersion: h.firstVersion, Count: h.count, Last: h.last,
		Deltas: base64.StdEncoding.EncodeToString(h.deltas)})
}

// UnmarshalJSON implements json.Unmarshaler.
func (h *History) UnmarshalJSON(data []byte) error {
	var j historyJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	deltas, err := base64.StdEncoding.DecodeString(j.Deltas)
	if err != nil {
		return fmt.Errorf("failed to decode history deltas: %w", err)
	}
	*h = History{firstVersion: j.FirstVersion, count: j.Count, last: j.Last, deltas: deltas}
	return nil
}

// IsZero lets encoding/json's omitzero skip an empty history.
func (h History) IsZero() bool { return h.count == 0 }

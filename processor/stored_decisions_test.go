package processor

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// ringState is a customer with a full ring of decisions, mostly accepted
// events as in the bench, with a rejection and a duplicate among them.
func ringState() Customer {
	c := Customer{ID: "cust-0000042", Version: 30, Status: StatusActive, Name: "Ada Lovelace", NextOffset: 1000}
	for i := range RecentDecisions {
		d := Decision{EventID: fmt.Sprintf("2f1c7e7a-6f0b-4c7e-9d3c-%012d", i), Outcome: Accepted, Version: int64(i + 1),
			Type: EventTypes[i%len(EventTypes)], Offset: int64(900 + i)}
		switch i {
		case 5:
			d.Outcome, d.Reason, d.Message = Rejected, ReasonVersionConflict, "expected version 7, current version is 5"
		case 6:
			d.Outcome, d.Type, d.Offset = "future", "customer.unknown", -1 // words the list does not know
		}
		c.Decisions = append(c.Decisions, d)
	}
	c.History = History{}.Append(1, 10).Append(2, 20)
	return c
}

func TestStoredDecisionsAreCompact(t *testing.T) {
	c := ringState()
	raw, err := CustomerCodec{}.Encode(&c)
	if err != nil {
		t.Fatal(err)
	}
	without := c
	without.Decisions = nil
	bare, _ := CustomerCodec{}.Encode(&without)
	// Each decision was about 150 bytes with its member names, its
	// outcome and its type spelled out; stored, it is its id, numbers and
	// the rare message.
	if per := (len(raw) - len(bare)) / RecentDecisions; per > 70 {
		t.Errorf("a stored decision takes %d bytes, want at most 70:\n%s", per, raw)
	}
	back, err := DecodeCustomer(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Decisions, c.Decisions) {
		t.Errorf("decisions after the codec:\n got %+v\nwant %+v", back.Decisions, c.Decisions)
	}
	// Lookups still show them as before: AppendJSON, without history.
	body, version, err := PublicJSON(raw)
	public := c
	public.History = History{}
	if want := public.AppendJSON(nil); err != nil || version != c.Version || !bytes.Equal(body, want) {
		t.Errorf("PublicJSON = %s, %d, %v\nwant %s", body, version, err, want)
	}
}

func TestCodecReadsTheEarlierLayout(t *testing.T) {
	c := ringState()
	back, err := DecodeCustomer(c.AppendJSON(nil)) // "recent_decisions" as objects, as tables written before hold
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Decisions, c.Decisions) {
		t.Errorf("decisions of the earlier layout:\n got %+v\nwant %+v", back.Decisions, c.Decisions)
	}
}

func TestStoredWordsOnlyGrow(t *testing.T) {
	// Tables hold these indices: a word may be added at the end, never
	// moved or removed.
	pinned := []string{"accepted", "rejected", "duplicate",
		"customer.registered", "customer.renamed", "customer.email_changed", "customer.address_changed",
		"customer.suspended", "customer.reactivated", "customer.erased",
		"malformed", "wrong_partition", "state_too_large", "key_missing", "bad_seal", "invalid",
		"not_registered", "already_registered", "erased", "version_conflict"}
	if len(storedWords) < len(pinned) || !slices.Equal(storedWords[:len(pinned)], pinned) {
		t.Errorf("storedWords = %q, must start with %q", storedWords, pinned)
	}
}

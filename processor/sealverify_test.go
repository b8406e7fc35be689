package processor

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// A sealed event whose key cannot be looked up because the keys topic
// cannot be read (the processor stopping in a rebalance, Kafka away) is
// not the record's fault. The crash campaign caught it dead-lettered as
// key_missing when a rebalance cancelled the lookup: the live table then
// took a later retry of the same write instead of the first, unlike the
// fold of the log. Such a record must stop the processor, to be folded
// again, and never be decided.
func TestDecideDoesNotDecideWhenKeysAreUnavailable(t *testing.T) {
	sealed := FormatSealed("0123456789abcdef", []byte("0123456789abcdef0123456789abcdef"))
	value := []byte(fmt.Sprintf(`{"specversion":"1.0","id":"e-1","source":"/t","type":"customer.renamed","%s":"aes256gcm","data":{"name":%q}}`,
		PersonalDataAttribute, sealed))
	registered := Customer{ID: "k", Version: 1, Status: StatusActive, Name: "A", Email: "a@example.org"}
	tests := []struct {
		name       string
		verify     error
		deadLetter string
		fail       bool
	}{
		{"keys unavailable", fmt.Errorf("%w: context canceled", ErrKeysUnavailable), "", true},
		{"key missing", fmt.Errorf("%w: key 0123456789abcdef", ErrKeyMissing), ReasonKeyMissing, false},
		{"bad seal", fmt.Errorf("%w: tag", ErrBadSeal), ReasonBadSeal, false},
		{"verified", nil, "", false},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			verify := func(ev Event) (string, error) {
				if test.verify == nil {
					return "", nil
				}
				return verifySealed(t.Context(), stubKeyring{err: test.verify}, ev)
			}
			in := input{key: "k", value: value, partition: PartitionFor("k", 6), offset: 7, timestamp: time.Unix(1, 0)}
			v := decide(func() Customer { return registered }, in, 6, verify)
			if v.deadLetter != test.deadLetter || (v.fail != nil) != test.fail {
				t.Fatalf("verdict: dead letter %q, fail %v; want %q, fail %v", v.deadLetter, v.fail, test.deadLetter, test.fail)
			}
			if test.fail && (!errors.Is(v.fail, ErrKeysUnavailable) || v.next.Version != 0) {
				t.Errorf("a record that could not be checked was decided: %+v", v)
			}
		})
	}
}

// stubKeyring answers every Verify with err.
type stubKeyring struct {
	Keyring
	err error
}

func (k stubKeyring) Verify(_ context.Context, _, _, _ string) error { return k.err }

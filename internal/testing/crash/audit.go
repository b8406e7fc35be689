package crash

import (
	"fmt"
	"sort"
)

// Ack is a write the service acknowledged as accepted: a 201, or a 200
// whose recorded decision says accepted (the answer to a retry).
type Ack struct {
	EventID  string
	Customer string
	Version  int64 // the version the answer named (ETag or decision)
	Status   int
}

// Audit is the verdict on the acknowledged writes.
type Audit struct {
	Acked int
	// Found acks are accepted exactly once, for their customer, at the
	// version the service answered.
	Found int
	// Lost acks are not accepted anywhere in the log.
	Lost int
	// Misplaced acks are accepted, but for another customer or at another
	// version than the service answered.
	Misplaced int
	// Doubled acks are accepted more than once.
	Doubled int
	// Problems describes every ack that is not Found.
	Problems []string
}

// AuditAcks checks every ack against the fold of the log.
func AuditAcks(f Fold, acks []Ack) Audit {
	a := Audit{Acked: len(acks)}
	for _, ack := range acks {
		ps := f.Accepted[ack.EventID]
		switch {
		case len(ps) == 0:
			a.Lost++
			a.Problems = append(a.Problems, fmt.Sprintf("%s (%d for %s at version %d): not accepted in the log (%d copies)",
				ack.EventID, ack.Status, ack.Customer, ack.Version, f.Copies[ack.EventID]))
		case len(ps) > 1:
			a.Doubled++
			a.Problems = append(a.Problems, fmt.Sprintf("%s (%d for %s at version %d): accepted %d times: %+v",
				ack.EventID, ack.Status, ack.Customer, ack.Version, len(ps), ps))
		case ps[0].Customer != ack.Customer || ps[0].Version != ack.Version:
			a.Misplaced++
			a.Problems = append(a.Problems, fmt.Sprintf("%s (%d for %s at version %d): accepted as %+v",
				ack.EventID, ack.Status, ack.Customer, ack.Version, ps[0]))
		default:
			a.Found++
		}
	}
	sort.Strings(a.Problems)
	return a
}

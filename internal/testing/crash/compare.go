package crash

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/eventfold/eventfold/processor"
)

// Verdict classifies a served or stored state against the reference.
type Verdict int

// Verdicts, from good to bad. Behind is what a lost event (or a fold that
// has not caught up) looks like; Ahead is what an event applied twice
// looks like.
const (
	Equal Verdict = iota
	Missing
	Behind
	Ahead
	Differs
)

func (v Verdict) String() string {
	switch v {
	case Equal:
		return "equal"
	case Missing:
		return "missing"
	case Behind:
		return "behind"
	case Ahead:
		return "ahead"
	default:
		return "differs"
	}
}

// Compare classifies got (nil if absent) against want and describes a
// difference. The history is compared only when withHistory is set: the
// HTTP API leaves it out. The offsets are real on both sides, so
// NextOffset must match too.
func Compare(want processor.Customer, got *processor.Customer, withHistory bool) (Verdict, string) {
	switch {
	case got == nil && !want.Registered():
		return Equal, ""
	case got == nil:
		return Missing, fmt.Sprintf("want version %d, got nothing", want.Version)
	case got.Version < want.Version:
		return Behind, fmt.Sprintf("want version %d, got %d", want.Version, got.Version)
	case got.Version > want.Version:
		return Ahead, fmt.Sprintf("want version %d, got %d", want.Version, got.Version)
	}
	w, g := want, *got
	if !withHistory {
		w.History, g.History = processor.History{}, processor.History{}
		servedAsFolded(&w, &g)
	}
	wj, _ := json.Marshal(w) // a Customer always encodes
	gj, _ := json.Marshal(g)
	if bytes.Equal(wj, gj) {
		return Equal, ""
	}
	return Differs, fmt.Sprintf("want %s\n got %s", wj, gj)
}

// Tally counts verdicts and keeps a few examples of each bad one.
type Tally struct {
	Counts   map[Verdict]int
	Examples []string
	// Got holds the version found for every customer that is not Equal
	// (0 if Missing), to count and name the events in question.
	Got map[string]int64
	// Forwarded counts the customers answered through another instance
	// than the one asked, the owner (partitioned mode).
	Forwarded int
}

// NewTally returns an empty tally.
func NewTally() *Tally { return &Tally{Counts: map[Verdict]int{}, Got: map[string]int64{}} }

// Check compares got with want (see Compare) and adds the verdict.
func (t *Tally) Check(id string, want processor.Customer, got *processor.Customer, withHistory bool) {
	v, detail := Compare(want, got, withHistory)
	switch v {
	case Missing:
		t.Got[id] = 0
	case Behind, Ahead, Differs:
		t.Got[id] = got.Version
	}
	t.Add(id, v, detail)
}

// Add records the verdict on one customer.
func (t *Tally) Add(id string, v Verdict, detail string) {
	t.Counts[v]++
	if v != Equal && len(t.Examples) < 10 {
		t.Examples = append(t.Examples, fmt.Sprintf("%s %s: %s", id, v, detail))
	}
}

// Bad is the number of customers that are not Equal.
func (t *Tally) Bad() int {
	n := 0
	for v, c := range t.Counts {
		if v != Equal {
			n += c
		}
	}
	return n
}

func (t *Tally) String() string {
	s := fmt.Sprintf("equal %d, missing %d, behind %d, ahead %d, differs %d",
		t.Counts[Equal], t.Counts[Missing], t.Counts[Behind], t.Counts[Ahead], t.Counts[Differs])
	if t.Forwarded > 0 {
		s += fmt.Sprintf(" (%d answered by their owner through this instance)", t.Forwarded)
	}
	return s
}

// servedAsFolded undoes, on a copy of a state served over HTTP, what the
// readers add with erasure on: the personal_data line, and each sealed
// value of the fold opened. An opened value counts as the sealed one it
// stands for; a value still sealed, or missing, is left to differ.
func servedAsFolded(want, got *processor.Customer) {
	got.PersonalData = ""
	if got.Address == nil && want.Address != nil || got.Address != nil && want.Address == nil {
		return
	}
	if got.Address != nil {
		a := *got.Address // got's address may be shared with the caller's
		got.Address = &a
	}
	wf, gf := want.PersonalFields(), got.PersonalFields()
	for i := range wf {
		if processor.IsSealed(*wf[i].Value) && *gf[i].Value != "" && !processor.IsSealed(*gf[i].Value) {
			*gf[i].Value = *wf[i].Value
		}
	}
}

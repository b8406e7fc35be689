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
		if d := openedAsSealed(&w, &g); d != "" {
			return Differs, d
		}
	}
	wj, _ := json.Marshal(w) // a Customer always encodes
	gj, _ := json.Marshal(g)
	if bytes.Equal(wj, gj) {
		return Equal, ""
	}
	return Differs, fmt.Sprintf("want %s\n got %s", wj, gj)
}

// openedAsSealed lines a served state (HTTP, personal data opened) up with
// the fold of the log, whose personal fields are sealed when erasure is
// on: a sealed field must be served opened, non-empty, and is then taken
// as equal, since only a keyring could open the reference's. The table
// itself is compared byte for byte, sealed values included. It copies the
// addresses it changes, and clears personal_data, a reader's annotation.
func openedAsSealed(want, got *processor.Customer) string {
	want.PersonalData, got.PersonalData = "", ""
	if want.Address != nil {
		a := *want.Address
		want.Address = &a
	}
	if got.Address != nil {
		a := *got.Address
		got.Address = &a
	}
	served := map[string]*string{}
	for _, f := range got.PersonalFields() {
		served[f.Name] = f.Value
	}
	for _, f := range want.PersonalFields() {
		if !processor.IsSealed(*f.Value) {
			continue
		}
		v, ok := served[f.Name]
		if !ok || *v == "" || processor.IsSealed(*v) {
			return fmt.Sprintf("%s is sealed in the log and served as %q", f.Name, deref(v))
		}
		*v = *f.Value
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return "<absent>"
	}
	return *s
}

// Tally counts verdicts and keeps a few examples of each bad one.
type Tally struct {
	Counts   map[Verdict]int
	Examples []string
	// Got holds the version found for every customer that is not Equal
	// (0 if Missing), to count and name the events in question.
	Got map[string]int64
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
	return fmt.Sprintf("equal %d, missing %d, behind %d, ahead %d, differs %d",
		t.Counts[Equal], t.Counts[Missing], t.Counts[Behind], t.Counts[Ahead], t.Counts[Differs])
}

package crash

import (
	"fmt"
	"testing"
	"time"

	"github.com/eventfold/eventfold/processor"
)

// event is a record of customer id on its own partition of 6.
func event(id, customer string, offset int64, body string) Record {
	value := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/test","subject":%q,%s}`, id, customer, body)
	return Record{Partition: processor.PartitionFor(customer, 6), Offset: offset, Key: customer,
		Value: []byte(value), Timestamp: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
}

const (
	registered = `"type":"customer.registered","data":{"name":"Ada","email":"ada@example.com"}`
	renamed    = `"type":"customer.renamed","expectedversion":1,"data":{"name":"Ada King"}`
)

// A retried write leaves a second copy in the log: the fold decides it as
// a duplicate, and the ack of the first answer is found once.
func TestFoldAndAuditARetriedWrite(t *testing.T) {
	p := processor.PartitionFor("c-1", 6)
	log := Log{p: {
		event("e-1", "c-1", 0, registered),
		event("w-1", "c-1", 1, renamed),
		event("w-1", "c-1", 2, renamed), // the retry's copy
	}}
	f := FoldLog(log, 6)
	if f.Records != 3 || f.AcceptedEvents != 2 || f.Duplicates != 1 || f.Copies["w-1"] != 2 {
		t.Fatalf("fold: %d records, %d accepted, %d duplicates, %d copies of w-1",
			f.Records, f.AcceptedEvents, f.Duplicates, f.Copies["w-1"])
	}
	if ids, extra := f.AppliedTwice(); len(ids) != 0 || extra != 0 {
		t.Errorf("applied twice: %v (%d)", ids, extra)
	}
	if got := f.States["c-1"]; got.Version != 2 || got.Name != "Ada King" || got.NextOffset != 2 {
		t.Errorf("state %+v", got)
	}
	tests := []struct {
		name  string
		ack   Ack
		check func(Audit) bool
	}{
		{"found", Ack{EventID: "w-1", Customer: "c-1", Version: 2, Status: 201}, func(a Audit) bool { return a.Found == 1 }},
		{"lost", Ack{EventID: "w-2", Customer: "c-1", Version: 3, Status: 201}, func(a Audit) bool { return a.Lost == 1 }},
		{"misplaced", Ack{EventID: "w-1", Customer: "c-1", Version: 3, Status: 200}, func(a Audit) bool { return a.Misplaced == 1 }},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			if a := AuditAcks(f, []Ack{test.ack}); !test.check(a) || a.Acked != 1 {
				t.Errorf("audit %+v", a)
			}
		})
	}
}

// A retry that arrives after more than RecentDecisions later decisions is
// no longer recognised: the fold applies it again, and the audit says so.
func TestFoldCountsAnEventAppliedTwice(t *testing.T) {
	c := "c-2"
	records := []Record{event("e-1", c, 0, registered)}
	for i := range processor.RecentDecisions + 1 {
		body := fmt.Sprintf(`"type":"customer.renamed","data":{"name":"N %d"}`, i)
		records = append(records, event(fmt.Sprintf("r-%d", i), c, int64(i+1), body))
	}
	records = append(records, event("r-0", c, int64(len(records)), `"type":"customer.renamed","data":{"name":"N 0"}`))
	f := FoldLog(Log{records[0].Partition: records}, 6)
	ids, extra := f.AppliedTwice()
	if len(ids) != 1 || ids[0] != "r-0" || extra != 1 {
		t.Fatalf("applied twice: %v (%d extra)", ids, extra)
	}
	if a := AuditAcks(f, []Ack{{EventID: "r-0", Customer: c, Version: 2, Status: 201}}); a.Doubled != 1 {
		t.Errorf("audit %+v", a)
	}
}

func TestCompare(t *testing.T) {
	want := processor.Customer{ID: "c", Version: 3, Name: "A", NextOffset: 9}
	tests := []struct {
		name string
		got  *processor.Customer
		want Verdict
	}{
		{"equal", &processor.Customer{ID: "c", Version: 3, Name: "A", NextOffset: 9}, Equal},
		{"missing", nil, Missing},
		{"behind", &processor.Customer{ID: "c", Version: 2}, Behind},
		{"ahead", &processor.Customer{ID: "c", Version: 4}, Ahead},
		{"other offset", &processor.Customer{ID: "c", Version: 3, Name: "A", NextOffset: 10}, Differs},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			if v, detail := Compare(want, test.got, false); v != test.want {
				t.Errorf("verdict %s, want %s (%s)", v, test.want, detail)
			}
		})
	}
	// With erasure on, HTTP serves a sealed value of the fold opened, and
	// says so in personal_data.
	sealed := processor.FormatSealed("0123456789abcdef", []byte("sealed bytes"))
	wantSealed := processor.Customer{ID: "c", Version: 3, Name: sealed, Email: "e@example.org", NextOffset: 9}
	for _, test := range []struct {
		name    string
		got     processor.Customer
		history bool
		want    Verdict
	}{
		{"sealed value served opened", processor.Customer{ID: "c", Version: 3, Name: "Opened", Email: "e@example.org", NextOffset: 9, PersonalData: "plaintext"}, false, Equal},
		{"sealed value served missing", processor.Customer{ID: "c", Version: 3, Email: "e@example.org", NextOffset: 9, PersonalData: "unreadable"}, false, Differs},
		{"plaintext served otherwise", processor.Customer{ID: "c", Version: 3, Name: "Opened", Email: "x@example.org", NextOffset: 9}, false, Differs},
		{"the table keeps the sealed value", processor.Customer{ID: "c", Version: 3, Name: "Opened", Email: "e@example.org", NextOffset: 9}, true, Differs},
	} {
		t.Run(test.name, func(t *testing.T) {
			if v, detail := Compare(wantSealed, &test.got, test.history); v != test.want {
				t.Errorf("verdict %s, want %s (%s)", v, test.want, detail)
			}
		})
	}
	if v, _ := Compare(processor.Customer{ID: "x"}, nil, false); v != Equal {
		t.Errorf("an unregistered id served as absent: %s, want equal", v)
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize([]time.Duration{4 * time.Second, time.Second, 3 * time.Second, 2 * time.Second})
	if s.Min != time.Second || s.Median != 2500*time.Millisecond || s.Max != 4*time.Second {
		t.Errorf("spread %+v", s)
	}
}

func TestDiverge(t *testing.T) {
	f := Fold{Events: map[string][]string{"c": {"e1", "e2", "e3"}}, States: map[string]processor.Customer{"c": {Version: 3}}}
	tests := []struct {
		name   string
		served []string
		got    int64
		want   string
	}{
		{"an event skipped, a conflicting write passed", []string{"e1", "e3", "w9"}, 3,
			"the service lists [e1 e3 w9]: not applied [e2], applied twice [], applied though the log's fold rejects them [w9]"},
		{"an event applied twice", []string{"e1", "e2", "e2", "e3"}, 4,
			"the service lists [e1 e2 e2 e3]: not applied [], applied twice [e2], applied though the log's fold rejects them []"},
		{"no list, a version short", nil, 2,
			"the service lists []: not applied [e3], applied twice [], applied though the log's fold rejects them []"},
		{"the list matches, the table is ahead", []string{"e1", "e2", "e3"}, 4,
			"the service lists []: not applied [], applied twice [(version 4)], applied though the log's fold rejects them []"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			if got := Diverge(f, "c", test.served, test.got).String(); got != test.want {
				t.Errorf("got  %s\nwant %s", got, test.want)
			}
		})
	}
}

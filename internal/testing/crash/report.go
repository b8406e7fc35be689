package crash

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Findings is what the final checks of a campaign found.
type Findings struct {
	Fold  Fold
	Audit Audit
	// Served is each instance's comparison with the fold, by name.
	Served map[string]*Tally
	Table  *Tally
	// IngestMissing counts generated events without a copy in the log.
	IngestMissing int
	// TwiceIDs are the ids the log's fold accepted more than once, with
	// TwiceExtra extra applications.
	TwiceIDs   []string
	TwiceExtra int
	// Listed counts the customers with acknowledged writes whose events
	// listing was compared with the fold; ListingProblems those that differ.
	Listed          int
	ListingProblems []string
	// Events of the log's fold that the service did not apply, applied
	// twice, or applied though the fold rejects them (see Divergence).
	NotApplied, AppliedTwice, AppliedRejected int
	// Explained describes the first customers that diverged.
	Explained []string
}

// Lost counts events the service no longer has: acknowledged writes the
// log's fold does not accept where answered, and events of the log the
// service did not apply (each once, however many instances show it).
func (v Findings) Lost() int {
	return v.Audit.Lost + v.Audit.Misplaced + v.IngestMissing + v.NotApplied
}

// Doubled counts extra applications: ids the log's fold accepted more than
// once, and ids the service applied more than once.
func (v Findings) Doubled() int { return v.TwiceExtra + v.AppliedTwice }

// Report is the figures of one campaign.
type Report struct {
	Plan                       string
	InstanceKills, BrokerKills int
	Generated                  int // events of the ingest
	Kills                      []Kill
	Writes                     WritersReport
	Findings                   Findings
	Duration                   time.Duration
}

func (r Report) String() string {
	survived, during := 0, ", all during the ingest"
	for _, k := range r.Kills {
		if k.Err == nil {
			survived++
		}
		if !k.DuringIngest {
			during = ""
		}
	}
	w, v, f := r.Writes, r.Findings, r.Findings.Fold
	var b strings.Builder
	line := func(name, format string, args ...any) {
		fmt.Fprintf(&b, "  %-22s %s\n", name+":", fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(&b, "crash campaign (%s), %d CPUs, %s/%s:\n", r.Plan, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	line("kills survived", "%d of %d (%d instance, %d broker)%s", survived, len(r.Kills), r.InstanceKills, r.BrokerKills, during)
	line("recovery, instance", "%s", Summarize(Recoveries(r.Kills, "instance")))
	line("recovery, broker", "%s", Summarize(Recoveries(r.Kills, "broker")))
	line("events in the log", "%d records (%d generated, %d by HTTP writes), %d accepted, %d rejected, %d duplicates",
		f.Records, r.Generated, f.Records-r.Generated, f.AcceptedEvents, f.Rejected, f.Duplicates)
	line("HTTP writes", "%d writes, %d attempts, %d answered 201, %d answered 200, %d answered 409, %d retried, %d unresolved",
		w.Writes, w.Attempts, w.Created, w.Decided, w.Conflicts, w.Retried, len(w.Unresolved))
	line("answers", "%s", answers(w.Answers))
	line("acknowledged writes", "%d, found once at their version %d", v.Audit.Acked, v.Audit.Found)
	line("lost", "%d (acks lost %d, misplaced %d; generated events missing %d; events of the log not applied %d)",
		v.Lost(), v.Audit.Lost, v.Audit.Misplaced, v.IngestMissing, v.NotApplied)
	line("double-applied", "%d (ids applied twice in the log's fold %d, acks accepted twice %d; events applied twice by the service %d)",
		v.Doubled(), v.TwiceExtra, v.Audit.Doubled, v.AppliedTwice)
	line("applied, fold rejects", "%d (events the service applied that the log's fold rejects)", v.AppliedRejected)
	line("events listings", "%d customers with acknowledged writes checked, %d wrong", v.Listed, len(v.ListingProblems))
	names := make([]string, 0, len(v.Served))
	for name := range v.Served {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		line("served by "+name, "%s", v.Served[name])
	}
	line("table", "%s", v.Table)
	line("duration", "%s", r.Duration.Round(time.Second))
	return strings.TrimRight(b.String(), "\n")
}

func answers(m map[string]int) string {
	out := make([]string, 0, len(m))
	for a, n := range m {
		out = append(out, fmt.Sprintf("%s: %d", a, n))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

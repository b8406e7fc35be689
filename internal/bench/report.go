package bench

import (
	"fmt"
	"runtime"
	"strings"
	"time"
)

// Report is everything one run measured. It is written as JSON and
// printed as tables.
type Report struct {
	Started time.Time  `json:"started"`
	Seconds float64    `json:"seconds"`
	Machine Machine    `json:"machine"`
	Broker  BrokerInfo `json:"broker"`
	Setup   Setup      `json:"setup"`
	// SealSeconds is how long sealing the events took before they were
	// produced, with erasure on: the writers' cost, not the fold's.
	SealSeconds float64 `json:"seal_seconds,omitempty"`

	Fold    *FoldResult    `json:"fold,omitempty"`
	Recover *RecoverResult `json:"recover,omitempty"`
	Lookup  *LookupResult  `json:"lookup,omitempty"`
	Write   *WriteResult   `json:"write,omitempty"`
	// KStreams is the Kafka Streams baseline beside eventfold; nil when
	// it did not run.
	KStreams *KStreamsResult `json:"kstreams,omitempty"`
	// Goka is the bare goka fold beside eventfold's; nil when it did not
	// run.
	Goka *GokaResult `json:"goka,omitempty"`
	// KStreamsSkipped says why the Kafka Streams baseline was asked for
	// and did not run.
	KStreamsSkipped string `json:"kstreams_skipped,omitempty"`

	Targets []Target `json:"targets"`
}

// Machine is where the run ran.
type Machine struct {
	CPUs        int    `json:"cpus"`
	MemoryBytes int64  `json:"memory_bytes"`
	GoVersion   string `json:"go_version"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
}

// BrokerInfo is what the run ran against. The bench runs the service in
// its own process, so with the embedded broker its memory includes the
// broker's.
type BrokerInfo struct {
	Kind    string   `json:"kind"` // embedded or external
	Label   string   `json:"label"`
	Brokers []string `json:"brokers"`
}

// Setup is the run's configuration and the names it used.
type Setup struct {
	Events          int      `json:"events"`
	Customers       int      `json:"customers"`
	Partitions      int      `json:"partitions"`
	Clients         int      `json:"clients"`
	Writers         int      `json:"writers"`
	DurationSeconds float64  `json:"duration_seconds"`
	Scenarios       []string `json:"scenarios"`
	Seed            int64    `json:"seed"`
	// ProcessorStorage is where the processor keeps its table copy.
	ProcessorStorage string `json:"processor_storage"`
	// Erasure says whether personal data was sealed (Config.Erasure).
	Erasure     bool   `json:"erasure"`
	EventsTopic string `json:"events_topic"`
	Group       string `json:"group"`
}

// Verdicts of a target.
const (
	Pass = "PASS"
	Miss = "MISS"
	// NotMeasured marks a target the run could not judge, e.g. memory
	// with fewer customers than the target names.
	NotMeasured = "n/a"
)

// Target is one goal and whether the run met it.
type Target struct {
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Got     string  `json:"got"`
	Verdict string  `json:"verdict"`
	Note    string  `json:"note,omitempty"`
}

func machine() Machine {
	return Machine{CPUs: runtime.NumCPU(), MemoryBytes: meminfoTotal(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
}

// memoryTargetCustomers is the table size the memory target names.
const memoryTargetCustomers = 1_000_000

// judge sets the report's targets from its figures.
func (r *Report) judge() {
	verdict := func(ok bool) string {
		if ok {
			return Pass
		}
		return Miss
	}
	add := func(name string, value float64, got string, ok bool, note string) {
		r.Targets = append(r.Targets, Target{Name: name, Value: value, Got: got, Verdict: verdict(ok), Note: note})
	}
	if f := r.Fold; f != nil {
		add("fold ≥ 50% of bare consumer", f.Ratio, percent(f.Ratio), f.Ratio >= 0.5, "")
		add("fold ≥ 50,000 events/s", f.Fold.PerSec, count(f.Fold.PerSec)+" events/s", f.Fold.PerSec >= 50_000, "")
	}
	if l := r.Lookup; l != nil {
		note := atLoad(l.Clients, 64, "clients")
		add("lookup ≥ 60% of fixed baseline", l.Ratio, percent(l.Ratio), l.Ratio >= 0.6, note)
		add("lookup p99 < 5 ms at 64 clients", l.Service.P99ms, fmt.Sprintf("%.2f ms", l.Service.P99ms), l.Service.P99ms < 5,
			join(note, fmt.Sprintf("fixed baseline p99 %.2f ms", l.Baseline.P99ms)))
	}
	if v := r.Recover; v != nil {
		add("recover ≥ 50% of bare consumer", v.Ratio, percent(v.Ratio), v.Ratio >= 0.5, "leveldb view, a replica's full copy")
	}
	if w := r.Write; w != nil {
		add("write p99 < 50 ms at 16 writers", w.Service.P99ms, fmt.Sprintf("%.2f ms", w.Service.P99ms), w.Service.P99ms < 50, atLoad(w.Writers, 16, "writers"))
	}
	if g := r.Goka; g != nil {
		add("fold ≥ 1.0x bare goka", g.FoldRatio, fmt.Sprintf("%.2fx", g.FoldRatio), g.FoldRatio >= 1,
			fmt.Sprintf("medians of %d rotated rounds: %s vs %s events/s", len(g.Rounds), count(g.FoldEventfold), count(g.FoldGoka)))
	}
	if k := r.KStreams; k != nil {
		add("fold ≥ 1.2x Kafka Streams", k.FoldRatio, fmt.Sprintf("%.2fx", k.FoldRatio), k.FoldRatio >= 1.2,
			fmt.Sprintf("medians of %d alternated rounds: %s vs %s events/s", len(k.Rounds), count(k.FoldEventfold), count(k.FoldKStreams)))
		if k.Restore.Eventfold.Seconds > 0 {
			add("restore ≥ 1.0x Kafka Streams", k.Restore.Ratio, fmt.Sprintf("%.2fx", k.Restore.Ratio), k.Restore.Ratio >= 1,
				fmt.Sprintf("ready in %.2f s vs %.2f s", k.Restore.Eventfold.Seconds, k.Restore.KStreams.Seconds))
		}
		if l := k.Lookup; l != nil {
			note := atLoad(l.Clients, 64, "clients")
			add("lookup ≥ 1.5x Kafka Streams, lower p99", l.Ratio, fmt.Sprintf("%.2fx, p99 %.2f vs %.2f ms", l.Ratio, l.Eventfold.P99ms, l.KStreams.P99ms),
				l.Ratio >= 1.5 && l.Eventfold.P99ms < l.KStreams.P99ms, note)
		}
		if k.Restore.Eventfold.PeakRSSBytes > 0 {
			ef := float64(k.Restore.Eventfold.PeakRSSBytes)
			ks := float64(max(k.Restore.KStreams.PeakRSSBytes, k.FoldPeakRSSBytes))
			t := Target{Name: "serve peak RSS below Kafka Streams' and 300 MB", Value: ef, Got: megabytes(ef) + " vs " + megabytes(ks),
				Verdict: verdict(ef < ks && ef < 300e6)}
			if c := r.Setup.Customers; c < memoryTargetCustomers {
				t.Verdict = NotMeasured
				t.Note = fmt.Sprintf("only %s customers; run with --customers 1000000", count(float64(c)))
			}
			r.Targets = append(r.Targets, t)
		}
	}
	if v := r.Recover; v != nil && v.Serve != nil {
		rss := float64(v.Serve.PeakRSSBytes)
		t := Target{Name: "serve peak RSS < 300 MB with 1,000,000 customers", Value: rss, Got: megabytes(rss), Verdict: verdict(rss < 300e6)}
		if v.Serve.Customers < memoryTargetCustomers {
			t.Verdict = NotMeasured
			t.Note = fmt.Sprintf("only %s customers; run with --customers 1000000", count(float64(v.Serve.Customers)))
		}
		r.Targets = append(r.Targets, t)
	}
}

func join(notes ...string) string {
	var out []string
	for _, n := range notes {
		if n != "" {
			out = append(out, n)
		}
	}
	return strings.Join(out, "; ")
}

func atLoad(got, want int, what string) string {
	if got == want {
		return ""
	}
	return fmt.Sprintf("measured at %d %s, not %d", got, what, want)
}

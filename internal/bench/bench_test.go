package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
)

// TestRunEveryScenario runs the whole bench at a tiny size on the
// embedded broker, so that it cannot rot: every figure must be there and
// positive, and the report must survive JSON.
func TestRunEveryScenario(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Events, cfg.Customers = 2000, 200
	cfg.Clients, cfg.Writers = 8, 4
	cfg.Duration = time.Second
	cfg.ServeBinary = buildEventfold(t)
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	cfg.Progress = cfg.Logger
	cfg.KStreams = true  // asked for, and skipped on the embedded broker
	cfg.BareGoka = false // TestBareGokaFoldBesideEventfold runs it
	var profile bytes.Buffer
	cfg.FoldProfile = &profile
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("bench failed: %v", err)
	}

	positive := func(name string, v float64) {
		t.Helper()
		if !(v > 0) {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if r.Fold == nil || r.Recover == nil || r.Lookup == nil || r.Write == nil {
		t.Fatalf("missing scenarios: fold %v, recover %v, lookup %v, write %v", r.Fold != nil, r.Recover != nil, r.Lookup != nil, r.Write != nil)
	}
	if r.KStreams != nil || !strings.Contains(r.KStreamsSkipped, "kfake") {
		t.Errorf("Kafka Streams on the embedded broker: result %v, skipped %q; want skipped, saying why", r.KStreams != nil, r.KStreamsSkipped)
	}
	positive("machine cpus", float64(r.Machine.CPUs))
	positive("machine memory", float64(r.Machine.MemoryBytes))

	f := r.Fold
	if f.ProcessorStorage != StorageLevelDB {
		t.Errorf("processor storage %q, want %q as serve runs it", f.ProcessorStorage, StorageLevelDB)
	}
	for name, v := range map[string]float64{
		"producer": f.Producer.PerSec, "bare consumer": f.BareConsumer.PerSec, "sarama consumer": f.SaramaConsumer.PerSec,
		"fold": f.Fold.PerSec, "fold ratio": f.Ratio, "table writes": float64(f.TableWrites),
		"accepted": f.Outcomes["accepted"], "rejected": f.Outcomes["rejected"], "duplicate": f.Outcomes["duplicate"], "dead letters": f.Outcomes["dead_letter"],
	} {
		positive("fold "+name, v)
	}
	if got := f.Outcomes["accepted"] + f.Outcomes["rejected"] + f.Outcomes["duplicate"]; got != 2000 {
		t.Errorf("decided %v events, want 2000", got)
	}
	if profile.Len() == 0 {
		t.Error("no CPU profile of the fold")
	}

	v := r.Recover
	if v.Keys != 200 {
		t.Errorf("recovered view holds %d keys, want 200", v.Keys)
	}
	for name, x := range map[string]float64{
		"table records": float64(v.TableRecords), "bare consumer": v.BareConsumer.PerSec, "ratio": v.Ratio,
		"leveldb records/s": v.LevelDB.RecordsPerSec, "leveldb keys/s": v.LevelDB.KeysPerSec,
		"memory records/s": v.InMemory.RecordsPerSec, "memory keys/s": v.InMemory.KeysPerSec,
	} {
		positive("recover "+name, x)
	}
	if v.Serve == nil {
		t.Error("no serve restart")
	} else {
		positive("serve ready seconds", v.Serve.ReadySeconds)
		positive("serve peak RSS", float64(v.Serve.PeakRSSBytes))
	}

	for name, l := range map[string]Latency{"lookup": r.Lookup.Service, "lookup baseline": r.Lookup.Baseline, "write": r.Write.Service, "write baseline": r.Write.Baseline} {
		positive(name+" ok", float64(l.OK))
		positive(name+" per second", l.PerSec)
		positive(name+" p50", l.P50ms)
		if l.P50ms > l.P99ms || l.P99ms > l.P999ms || l.P999ms > l.MaxMs {
			t.Errorf("%s percentiles out of order: %+v", name, l)
		}
	}
	for name, l := range map[string]Latency{"lookup": r.Lookup.Service, "lookup baseline": r.Lookup.Baseline} {
		if l.OK != l.Requests {
			t.Errorf("%s: %d of %d requests answered 200: %v", name, l.OK, l.Requests, l.Outcomes)
		}
	}
	positive("lookup ratio", r.Lookup.Ratio)
	for name, u := range map[string]Usage{"fold": f.Usage, "recover": v.Usage, "lookup": r.Lookup.Usage, "write": r.Write.Usage} {
		positive(name+" peak RSS", float64(u.PeakRSSBytes))
		positive(name+" peak heap", float64(u.PeakHeapInuseBytes))
		positive(name+" CPU seconds", u.CPUSeconds)
	}
	positive("fold CPU seconds", f.FoldCPUSeconds)

	if len(r.Targets) != 7 {
		t.Errorf("%d targets, want 7: %+v", len(r.Targets), r.Targets)
	}
	for _, tg := range r.Targets {
		if tg.Verdict != Pass && tg.Verdict != Miss && tg.Verdict != NotMeasured {
			t.Errorf("target %q has verdict %q", tg.Name, tg.Verdict)
		}
	}

	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("failed to encode the report: %v", err)
	}
	var back Report
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatalf("failed to decode the report: %v", err)
	}
	again, err := json.Marshal(&back)
	if err != nil || !bytes.Equal(raw, again) {
		t.Errorf("the report does not survive JSON (err %v):\n%s\n%s", err, raw, again)
	}

	var out strings.Builder
	if err := r.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fold", "recover", "lookup", "write", "targets", "embedded kfake", "PASS"} {
		if !strings.Contains(out.String(), want) && (want != "PASS" || !strings.Contains(out.String(), "MISS")) {
			t.Errorf("printed report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunBesideKafkaStreams runs the Kafka Streams baseline beside
// eventfold on a small topic of the real Apache Kafka, so that its build
// (from Maven Central on a fresh machine), its fold, its restore and
// restart, its lookups and the state comparison cannot rot.
func TestRunBesideKafkaStreams(t *testing.T) {
	brokers := testkit.RequireKafka(t)
	if err := KStreamsAvailable(); err != nil {
		t.Fatalf("the Kafka Streams baseline needs java and mvn (scripts/install-tools.sh java): %v", err)
	}
	cfg := DefaultConfig()
	cfg.Brokers = []string{brokers}
	cfg.Events, cfg.Customers = 2000, 200
	cfg.Clients = 8
	cfg.Duration = time.Second
	cfg.Scenarios = []string{ScenarioFold, ScenarioLookup}
	cfg.KStreams, cfg.Rounds = true, 2
	// The repository's .build, as the CLI's default from the root; the
	// test runs in internal/bench.
	cfg.KStreamsBuildDir = filepath.Join("..", "..", ".build")
	cfg.ServeBinary = buildEventfold(t)
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	cfg.Progress = cfg.Logger
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("bench failed: %v", err)
	}
	k := r.KStreams
	if k == nil {
		t.Fatalf("no Kafka Streams result; skipped: %q", r.KStreamsSkipped)
	}
	if len(k.Rounds) != 2 || k.Rounds[0].First != "eventfold" || k.Rounds[1].First != "kstreams" {
		t.Errorf("rounds %+v, want 2 with the order alternating", k.Rounds)
	}
	for i, fr := range k.Rounds {
		if fr.KStreams.Records != 2000 || !(fr.KStreams.PerSec > 0) || !(fr.Eventfold.PerSec > 0) {
			t.Errorf("round %d: eventfold %+v, Kafka Streams %+v; want 2,000 events folded by each", i, fr.Eventfold, fr.KStreams)
		}
	}
	if k.StateCheck.Customers != 200 || k.StateCheck.Mismatches != 0 {
		t.Errorf("state check %+v, want 200 customers, none differing", k.StateCheck)
	}
	for name, p := range map[string]ReadyPair{"restore": k.Restore, "restart": k.Restart} {
		if p.Keys != 200 || !(p.Eventfold.Seconds > 0) || !(p.KStreams.Seconds > 0) || p.KStreams.PeakRSSBytes <= 0 || !(p.Ratio > 0) {
			t.Errorf("%s: %+v, want both ready with positive figures", name, p)
		}
	}
	if l := k.Lookup; l == nil || l.KStreams.OK == 0 || l.KStreams.OK != l.KStreams.Requests || l.Eventfold.OK != l.Eventfold.Requests {
		t.Errorf("lookup %+v, want every request of both answered 200", l)
	}
	var out strings.Builder
	if err := r.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Kafka Streams", "fold ≥ 1.2x Kafka Streams", "state check"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printed report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestBareGokaFoldBesideEventfold runs the bare goka fold beside
// eventfold on the embedded broker: the rounds must rotate, each fold
// must see every event, and the bare fold must hold, for every customer,
// the state its events make.
func TestBareGokaFoldBesideEventfold(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Events, cfg.Customers = 2000, 200
	cfg.Scenarios = []string{ScenarioFold}
	cfg.KStreams, cfg.BareGoka, cfg.Rounds = false, true, 2
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	cfg.Progress = cfg.Logger
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("bench failed: %v", err)
	}
	g := r.Goka
	if g == nil {
		t.Fatal("no bare goka result")
	}
	if len(g.Rounds) != 2 || g.Rounds[0].First != "eventfold" || g.Rounds[1].First != "goka" {
		t.Errorf("rounds %+v, want 2 with the order alternating", g.Rounds)
	}
	for i, fr := range g.Rounds {
		if fr.Goka.Records != 2000 || fr.Eventfold.Records != 2000 || !(fr.Goka.PerSec > 0) || !(fr.Eventfold.PerSec > 0) {
			t.Errorf("round %d: eventfold %+v, bare goka %+v; want 2,000 events folded by each", i, fr.Eventfold, fr.Goka)
		}
		if !(fr.Goka.CPUSeconds > 0) || !(fr.Eventfold.CPUSeconds > 0) {
			t.Errorf("round %d: eventfold %+v, bare goka %+v; want the CPU time of each fold", i, fr.Eventfold, fr.Goka)
		}
	}
	if g.StateCheck.Customers != 200 || g.StateCheck.Mismatches != 0 {
		t.Errorf("state check %+v, want 200 customers, none differing", g.StateCheck)
	}
	if !(g.FoldCPURatio > 0) {
		t.Errorf("events per CPU-second: eventfold %v, bare goka %v, ratio %v; want all three", g.FoldEventfoldPerCPUSecond, g.FoldGokaPerCPUSecond, g.FoldCPURatio)
	}
	if !(g.FoldRatio > 0) || !slices.ContainsFunc(r.Targets, func(tg Target) bool { return tg.Name == "fold ≥ 1.0x bare goka" }) {
		t.Errorf("ratio %v, targets %+v; want a ratio and its target", g.FoldRatio, r.Targets)
	}
}

// TestCheckBareStatesFindsADifferentState makes sure the bare fold's
// state check can fail: a state that misses one event is counted.
func TestCheckBareStatesFindsADifferentState(t *testing.T) {
	events := GenerateEvents(1, 20, 400)
	want := map[string]bareCustomer{}
	for i := range events.Len() {
		key, value := events.At(i)
		want[key], _ = bareFold(want[key], value)
	}
	read := func(key string) (bareCustomer, error) { return want[key], nil }
	if check, diffs, err := checkBareStates(events, read); err != nil || check.Customers != 20 || check.Mismatches != 0 {
		t.Fatalf("the fold's own states: %+v %v %v, want 20 customers, none differing", check, diffs, err)
	}
	lost := events.Customers[3]
	c := want[lost]
	c.Version--
	want[lost] = c
	if check, diffs, err := checkBareStates(events, read); err != nil || check.Mismatches != 1 || len(diffs) != 1 || !strings.Contains(diffs[0], lost) {
		t.Errorf("one state a version behind: %+v %v %v, want it counted", check, diffs, err)
	}
}

// TestSameStateComparesWhatBothFoldsDecide checks the comparison that
// fails a run: it must tell apart every compared field and ignore the
// order of an address's fields.
func TestSameStateComparesWhatBothFoldsDecide(t *testing.T) {
	base := comparable{Version: 3, Status: "active", Name: "Ada", Email: "a@example.com",
		Address: json.RawMessage(`{"line1":"1 Main St","city":"Paris","postal_code":"75001","country":"FR"}`)}
	tests := []struct {
		name string
		edit func(c *comparable)
		same bool
	}{
		{"identical", func(*comparable) {}, true},
		{"address fields reordered", func(c *comparable) {
			c.Address = json.RawMessage(`{"country":"FR","postal_code":"75001","city":"Paris","line1":"1 Main St"}`)
		}, true},
		{"version", func(c *comparable) { c.Version = 4 }, false},
		{"status", func(c *comparable) { c.Status = "suspended" }, false},
		{"name", func(c *comparable) { c.Name = "Grace" }, false},
		{"email", func(c *comparable) { c.Email = "b@example.com" }, false},
		{"address", func(c *comparable) {
			c.Address = json.RawMessage(`{"line1":"2 Main St","city":"Paris","postal_code":"75001","country":"FR"}`)
		}, false},
		{"address missing", func(c *comparable) { c.Address = nil }, false},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			other := base
			test.edit(&other)
			if got := sameState(base, other); got != test.same {
				t.Errorf("sameState = %v, want %v", got, test.same)
			}
		})
	}
}

// buildEventfold builds the eventfold binary for the serve restart.
func buildEventfold(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "eventfold")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/eventfold/eventfold")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("failed to build eventfold: %v\n%s", err, out)
	}
	return bin
}

func TestGenerateEventsFollowsTheContract(t *testing.T) {
	tests := []struct {
		name              string
		customers, events int
	}{
		{"one event per customer", 50, 50},
		{"many events per customer", 100, 5000},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			e := GenerateEvents(7, test.customers, test.events)
			if e.Len() != test.events {
				t.Fatalf("%d events, want %d", e.Len(), test.events)
			}
			states := map[string]processor.Customer{}
			malformed := 0
			for i := range e.Len() {
				key, value := e.At(i)
				ev, err := processor.Decode(key, value)
				if err != nil {
					malformed++
					continue
				}
				ev.Offset = int64(i)
				states[key], _ = processor.Apply(states[key], ev)
			}
			if malformed > test.events/200+1 {
				t.Errorf("%d malformed events of %d, want about 0.1%%", malformed, test.events)
			}
			for _, id := range e.Customers {
				if c := states[id]; !c.Registered() {
					t.Errorf("customer %s is not registered after every event", id)
				}
			}
			if again := GenerateEvents(7, test.customers, test.events); !bytes.Equal(again.arena, e.arena) {
				t.Error("the same seed generated different events")
			}
		})
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	sorted := make([]time.Duration, 1000)
	for i := range sorted {
		sorted[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		p    float64
		want time.Duration
	}{
		{0.5, 500 * time.Millisecond},
		{0.99, 990 * time.Millisecond},
		{0.999, 999 * time.Millisecond},
		{1, 1000 * time.Millisecond},
		{0, time.Millisecond},
	}
	for _, test := range tests {
		if got := percentile(sorted, test.p); got != test.want {
			t.Errorf("percentile(%v) = %v, want %v", test.p, got, test.want)
		}
	}
}

func TestParseScenarios(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"", "fold,recover,lookup,write", false},
		{"all", "fold,recover,lookup,write", false},
		{"lookup, fold,lookup", "lookup,fold", false},
		{"fold,nope", "", true},
		{",", "", true},
	}
	for _, test := range tests {
		got, err := ParseScenarios(test.in)
		if (err != nil) != test.wantErr || strings.Join(got, ",") != test.want {
			t.Errorf("ParseScenarios(%q) = %v, %v; want %q, error %v", test.in, got, err, test.want, test.wantErr)
		}
	}
}

func TestCountSeparatesThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567", 50000: "50,000"} {
		if got := count(in); got != want {
			t.Errorf("count(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestProgressIntervalGrowsWithTheFold(t *testing.T) {
	tests := []struct {
		elapsed, want time.Duration
	}{
		{0, foldPoll},
		{time.Second, 10 * time.Millisecond},
		{3 * time.Second, 30 * time.Millisecond},
		{time.Minute, maxFoldPoll},
	}
	for _, tt := range tests {
		t.Run(tt.elapsed.String(), func(t *testing.T) {
			if got := progressInterval(tt.elapsed); got != tt.want {
				t.Errorf("progressInterval(%v) = %v, want %v", tt.elapsed, got, tt.want)
			}
		})
	}
}

// BenchmarkStoredState folds the bench's events (10 per customer, as the
// fold scenario's 300,000 over 30,000) in memory, with eventfold's fold
// and codec and with the bare goka fold's, and reports the average bytes
// each writes to its table per event: the bytes leveldb and Kafka carry
// for every folded event. Run it with -benchtime 1x.
func BenchmarkStoredState(b *testing.B) {
	events := GenerateEvents(1, 10000, 100000)
	for b.Loop() {
		states := map[string]processor.Customer{}
		bare := map[string]bareCustomer{}
		var written, writes, bareWritten, bareWrites int
		for i := range events.Len() {
			key, value := events.At(i)
			if next, ok := bareFold(bare[key], value); ok {
				bare[key] = next
				raw, _ := bareCodec{}.Encode(&next)
				bareWritten, bareWrites = bareWritten+len(raw), bareWrites+1
			}
			ev, err := processor.DecodeRecord(key, value, nil)
			if err != nil {
				continue // a dead letter, never written
			}
			ev.Offset = int64(i)
			next, d := processor.Apply(states[key], ev)
			if d.Outcome == processor.Duplicate {
				continue
			}
			states[key] = next
			raw, err := processor.CustomerCodec{}.Encode(&next)
			if err != nil {
				b.Fatal(err)
			}
			written, writes = written+len(raw), writes+1
		}
		b.ReportMetric(float64(written)/float64(writes), "eventfold-B/write")
		b.ReportMetric(float64(bareWritten)/float64(bareWrites), "goka-B/write")
	}
}

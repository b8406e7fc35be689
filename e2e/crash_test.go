package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/eventfold/eventfold/internal/testing/crash"
	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
)

// crashFullEnv selects the long campaign; crashSeedEnv replays a schedule;
// crashKeepEnv names a directory that keeps the instances' whole logs
// (debug level, sarama's included) when the campaign fails: the test
// output has only their ends.
const (
	crashFullEnv = "EVENTFOLD_CRASH_FULL"
	crashSeedEnv = "EVENTFOLD_CRASH_SEED"
	crashKeepEnv = "EVENTFOLD_CRASH_KEEP"
	// crashOutageEnv keeps the broker down this long (a Go duration) at
	// each broker kill. Past the table producer's retry budget (about a
	// minute) table writes fail for good, the path that the processor's
	// commitOrder guards.
	crashOutageEnv = "EVENTFOLD_CRASH_OUTAGE"
)

// crashPlan sizes a campaign.
type crashPlan struct {
	name                       string
	customers, events          int
	rate                       int // ingest target, events per second
	instanceKills, brokerKills int
	writers                    int
	settle                     time.Duration // how long the final state may take to converge
	// partitioned runs the instances with --serve-mode partitioned: each
	// serves the partitions it owns and forwards the rest.
	partitioned bool
}

// The short campaign runs in the suite; the full one is the issue's, run by
// the command in RELIABILITY.md. Each rate is set so that the ingest lasts
// about as long as its kills and recoveries.
var (
	crashShort = crashPlan{name: "short", customers: 2000, events: 20000, rate: 400,
		instanceKills: 3, brokerKills: 1, writers: 4, settle: 2 * time.Minute}
	crashFull = crashPlan{name: "full", customers: 20000, events: 200000, rate: 600,
		instanceKills: 10, brokerKills: 2, writers: 8, settle: 5 * time.Minute}
	// The partitioned short campaign is smaller than the replica one, so
	// that both fit the suite's budget side by side; its full campaign is
	// the replica one's.
	crashPartitionedShort = crashPlan{name: "partitioned short", customers: 1000, events: 8000, rate: 250,
		instanceKills: 2, brokerKills: 1, writers: 4, settle: 2 * time.Minute, partitioned: true}
	crashPartitionedFull = crashPlan{name: "partitioned full", customers: 20000, events: 200000, rate: 600,
		instanceKills: 10, brokerKills: 2, writers: 8, settle: 5 * time.Minute, partitioned: true}
)

const (
	crashInstances       = 3
	crashRecoveryTimeout = 3 * time.Minute
)

// TestCrashCampaign ingests events into three instances on a private
// Apache Kafka broker while HTTP writers rename customers with If-Match,
// and meanwhile SIGKILLs a random instance at random moments (restarting
// it on the same data dir and port) and SIGKILLs the broker (starting it
// again on the same data). Afterwards the events topic is read back and
// folded with the service's own fold: every instance must serve that
// fold, the table must hold it, every acknowledged write must be in it
// once at the answered version, and no event may be applied twice.
func TestCrashCampaign(t *testing.T) {
	crashCampaign(t, crashShort, crashFull)
}

// TestCrashCampaignPartitioned is TestCrashCampaign with the instances in
// --serve-mode partitioned, each advertising its own URL: a kill moves
// partitions between the instances' kept processor stores, the writers'
// requests are forwarded to the owner, and at the end every customer is
// read through every instance, so most reads are forwarded, and each
// answer must be named (Eventfold-Served-By) as served by the owner the
// group's assignment names.
func TestCrashCampaignPartitioned(t *testing.T) {
	crashCampaign(t, crashPartitionedShort, crashPartitionedFull)
}

// crashCampaign runs the short plan, or the full one when crashFullEnv is
// set.
func crashCampaign(t *testing.T, short, full crashPlan) {
	testkit.RequireKafka(t) // the setup that provides Java and the jars
	plan := short
	if os.Getenv(crashFullEnv) != "" {
		plan = full
	} else {
		t.Parallel()
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv(crashSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", crashSeedEnv, s, err)
		}
	}
	var outage time.Duration
	if s := os.Getenv(crashOutageEnv); s != "" {
		var err error
		if outage, err = time.ParseDuration(s); err != nil || outage < 0 {
			t.Fatalf("%s=%q: want a duration such as 70s", crashOutageEnv, s)
		}
	}
	t.Logf("%s campaign, seed %d (%s=%d replays the schedule): %d events over %d customers, %d instance kills, %d broker kills (down %s each), %d HTTP writers",
		plan.name, seed, crashSeedEnv, seed, plan.events, plan.customers, plan.instanceKills, plan.brokerKills, outage, plan.writers)
	rng := rand.New(rand.NewSource(seed))
	began := time.Now()

	bin := binBuild(t)
	broker := rkbStartBroker(t)
	names := uniqueKafkaNames("crash")
	adm := kafkaAdmin(t, broker.addr)
	createServeTopics(t, adm, names, nil)
	lines := testkit.Generate(41, plan.customers, plan.events)

	fleet := make(crashFleet, crashInstances)
	for i := range fleet {
		fleet[i] = crashNewInstance(t, bin, broker.addr, names, fmt.Sprintf("instance-%d", i+1), plan.partitioned)
		fleet[i].start()
	}
	rkbAwaitGroup(t, adm, names.group, len(fleet), 90*time.Second)
	for _, in := range fleet {
		in.waitReady(60 * time.Second)
	}
	t.Logf("%d instances ready in the group %s after the start", len(fleet), time.Since(began).Round(time.Millisecond))

	chaosDone := make(chan struct{})
	ingest, err := crash.StartIngest(crash.IngestConfig{Brokers: []string{broker.addr}, Topic: names.events,
		Events: lines, Rate: plan.rate, Reserve: plan.events / 20, Hold: chaosDone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ingest.Close)
	customers := crashInOrderOfFirst(lines, func(l testkit.Line) string { return l.Key })
	writers := crash.StartWriters(crash.WritersConfig{Writers: plan.writers, Customers: customers,
		Pick: fleet.pick, Seed: seed, RetryFor: 2 * time.Minute})
	t.Cleanup(func() { writers.Stop() }) // before the instances stop, if the test ends early

	c := &crashChaos{t: t, rng: rng, fleet: fleet, broker: broker, group: crashGroup(adm, names), ingest: ingest, total: len(lines), outage: outage}
	kills := c.run(plan)
	close(chaosDone)

	select {
	case <-ingest.Done():
	case <-time.After(5 * time.Minute):
		t.Fatalf("ingest still running 5 min after the last kill: %d of %d events acknowledged", ingest.Acked(), len(lines))
	}
	if err := ingest.Err(); err != nil {
		t.Fatalf("ingest failed after %d events: %v", ingest.Acked(), err)
	}
	writes := writers.Stop()
	t.Logf("ingest of %d events ended %s after the start; writers stopped with %d acknowledged writes",
		len(lines), ingest.Ended().Sub(began).Round(time.Millisecond), len(writes.Acks))
	// A processor or view that failed, for example on a table write that
	// failed for good during a long outage, was rebuilt in place.
	for _, in := range fleet {
		m := binScrape(t, in.client)
		t.Logf("%s since its last start: processor rebuilt %.0f times, view %.0f times", in.name,
			m.sum("eventfold_processor_restarts_total"), m.sum("eventfold_view_restarts_total"))
	}

	v := crashVerify(t, plan, fleet, broker.addr, names, lines, writes)
	crashReport(t, plan, kills, writes, v, time.Since(began))
}

// crashInOrderOfFirst returns the distinct customers of items, in the
// order of each one's first item.
func crashInOrderOfFirst[T any](items []T, customer func(T) string) []string {
	seen := map[string]bool{}
	var ids []string
	for _, item := range items {
		if id := customer(item); !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// crashInstance is one `eventfold serve` that can be killed and started
// again on the same data dir and HTTP port, as a restarted pod would be.
type crashInstance struct {
	t      *testing.T
	name   string
	client *testkit.Client
	proc   *crash.Process
	up     atomic.Bool // writers send requests to it
}

func crashNewInstance(t *testing.T, bin, brokers string, names kafkaNames, name string, partitioned bool) *crashInstance {
	t.Helper()
	dir := t.TempDir() // created first, so removed after the process stopped
	addr := binFreeAddr(t)
	args := append([]string{"serve"}, realKafkaServeArgs(brokers, names, filepath.Join(dir, "data"))...)
	if partitioned {
		args = append(args, "--serve-mode", "partitioned", "--advertised-url", "http://"+addr)
	}
	in := &crashInstance{t: t, name: name, client: testkit.NewClient("http://" + addr), proc: &crash.Process{
		Name: name, Path: bin, Env: binEnv(), LogPath: filepath.Join(dir, name+".log"),
		Args: append(args, "--http-addr", addr, "--log-level", "debug"),
	}}
	t.Cleanup(func() {
		in.up.Store(false)
		if err := in.proc.Stop(15 * time.Second); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("%s (%s, started %d times) log:\n%s", name, addr, in.proc.Starts(), in.proc.LogTail(32<<10))
			crashKeepLog(t, in.proc.LogPath)
		}
	})
	return in
}

// crashKeepLog copies a log into the directory named by crashKeepEnv, if
// it is set.
func crashKeepLog(t *testing.T, path string) {
	dir := os.Getenv(crashKeepEnv)
	if dir == "" {
		return
	}
	data, err := os.ReadFile(path)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		kept := filepath.Join(dir, t.Name()+"-"+filepath.Base(path))
		if err = os.WriteFile(kept, data, 0o644); err == nil {
			t.Logf("kept the whole log in %s", kept)
		}
	}
	if err != nil {
		t.Logf("failed to keep %s: %v", path, err)
	}
}

func (in *crashInstance) start() {
	in.t.Helper()
	if err := in.proc.Start(); err != nil {
		in.t.Fatal(err)
	}
	in.up.Store(true)
}

func (in *crashInstance) kill() {
	in.t.Helper()
	in.up.Store(false)
	if err := in.proc.Kill(); err != nil {
		in.t.Fatal(err)
	}
}

// status returns the status code of a GET of path, 0 on a transport error.
func (in *crashInstance) status(path string) int {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(in.client.Base + path)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body) // drained for the connection's reuse
	return resp.StatusCode
}

func (in *crashInstance) waitReady(timeout time.Duration) {
	in.t.Helper()
	deadline := time.Now().Add(timeout)
	for in.status("/readyz") != http.StatusOK {
		if in.proc.Exited() {
			in.t.Fatalf("%s exited before it was ready: %v", in.name, in.proc.Err())
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("%s /readyz not 200 within %s", in.name, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (in *crashInstance) service() crash.Service {
	return crash.Service{Base: in.client.Base, HTTP: in.client.HTTP}
}

// crashFleet is the instances of one campaign.
type crashFleet []*crashInstance

// pick returns the base URL of a random instance that is up, or "".
func (f crashFleet) pick(rng *rand.Rand) string {
	var up []*crashInstance
	for _, in := range f {
		if in.up.Load() {
			up = append(up, in)
		}
	}
	if len(up) == 0 {
		return ""
	}
	return up[rng.Intn(len(up))].client.Base
}

// crashChaos kills instances and the broker on a random schedule.
type crashChaos struct {
	t      *testing.T
	rng    *rand.Rand
	fleet  crashFleet
	broker *rkbBroker
	group  crash.Group
	ingest *crash.Ingest
	total  int
	outage time.Duration // how long the broker stays down at a kill
}

// run performs the plan's kills in a random order, each at a random
// moment of the ingest: after a random share of the events was
// acknowledged and the previous kill was recovered from.
func (c *crashChaos) run(plan crashPlan) []crash.Kill {
	kinds := make([]string, 0, plan.instanceKills+plan.brokerKills)
	for range plan.instanceKills {
		kinds = append(kinds, "instance")
	}
	for range plan.brokerKills {
		kinds = append(kinds, "broker")
	}
	c.rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	marks := make([]int64, len(kinds))
	for i := range marks {
		marks[i] = int64((0.05 + 0.85*c.rng.Float64()) * float64(c.total))
	}
	slices.Sort(marks)

	began := time.Now()
	kills := make([]crash.Kill, 0, len(kinds))
	for i, kind := range kinds {
		for c.ingest.Acked() < marks[i] && !crashClosed(c.ingest.Done()) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(c.rng.Intn(1500)) * time.Millisecond)
		k := crash.Kill{N: i + 1, Kind: kind}
		if kind == "broker" {
			c.killBroker(&k)
		} else {
			c.killInstance(&k, c.fleet[c.rng.Intn(len(c.fleet))])
		}
		if k.Err != nil {
			c.t.Errorf("kill %d (%s %s): %v", k.N, k.Kind, k.Victim, k.Err)
		}
		c.t.Logf("kill %d/%d: %s %s at %s (%s) with %d/%d events acknowledged; %s", k.N, len(kinds), k.Kind, k.Victim,
			k.At.Sub(began).Round(time.Millisecond), crash.Clock(k.At), k.Acked, c.total, k.Recovery())
		kills = append(kills, k)
	}
	return kills
}

func crashClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// killInstance SIGKILLs victim, starts it again at once on the same data
// dir and port, and waits until the service has recovered.
func (c *crashChaos) killInstance(k *crash.Kill, victim *crashInstance) {
	k.Victim = victim.name
	before := c.committed()
	k.Acked, k.DuringIngest, k.At = c.ingest.Acked(), !crashClosed(c.ingest.Done()), time.Now()
	victim.kill()
	victim.start()
	c.awaitRecovery(k, victim, before)
}

// killBroker SIGKILLs the broker, starts it again on the same data and
// waits until the service has recovered by itself.
func (c *crashChaos) killBroker(k *crash.Kill) {
	k.Victim = c.broker.addr
	before := c.committed()
	k.Acked, k.DuringIngest, k.At = c.ingest.Acked(), !crashClosed(c.ingest.Done()), time.Now()
	c.broker.run("kill")
	time.Sleep(c.outage)
	c.broker.run("start")
	k.BrokerBack = time.Since(k.At)
	c.awaitRecovery(k, nil, before)
}

// awaitRecovery polls until the service has recovered from the kill,
// filling in k's durations. victim is nil after a broker kill.
func (c *crashChaos) awaitRecovery(k *crash.Kill, victim *crashInstance, before map[int32]int64) {
	for {
		since := time.Since(k.At)
		allReady := true
		for _, in := range c.fleet {
			ok := in.status("/readyz") == http.StatusOK
			allReady = allReady && ok
			if in == victim && ok && k.Ready == 0 {
				k.Ready = since
			}
		}
		if victim == nil && allReady && k.Ready == 0 {
			k.Ready = since
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if k.Progress == 0 && c.group.Progressed(ctx, before) {
			k.Progress = since
		}
		if k.Ready != 0 && k.Whole == 0 && allReady && c.group.Stable(ctx, len(c.fleet)) {
			k.Whole = since
		}
		cancel()
		if k.Ready != 0 && k.Progress != 0 && k.Whole != 0 {
			k.Recovered = max(k.Ready, k.Progress, k.Whole)
			return
		}
		if since > crashRecoveryTimeout {
			k.Err = fmt.Errorf("not recovered within %s: %s", crashRecoveryTimeout, k.Recovery())
			return
		}
		if victim != nil && victim.proc.Exited() {
			k.Err = fmt.Errorf("%s exited after its restart: %v", victim.name, victim.proc.Err())
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// committed returns the group's committed offsets, retrying for 10 s; an
// empty map if none could be read.
func (c *crashChaos) committed() map[int32]int64 {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		out, err := c.group.Committed(ctx)
		cancel()
		if err == nil {
			return out
		}
		if time.Now().After(deadline) {
			c.t.Log(err)
			return map[int32]int64{}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func crashGroup(adm *kadm.Client, names kafkaNames) crash.Group {
	return crash.Group{Admin: adm, Name: names.group, Topic: names.events, Partitions: realKafkaPartitions}
}

// crashVerify reads the events topic and the table back and checks the
// service against the fold of the log.
func crashVerify(t *testing.T, plan crashPlan, fleet crashFleet, brokers string, names kafkaNames,
	lines []testkit.Line, writes crash.WritersReport) crash.Findings {
	t.Helper()
	v := crash.Findings{Fold: crash.FoldLog(crashRead(t, brokers, names.events), realKafkaPartitions), Served: map[string]*crash.Tally{}}
	f := v.Fold
	t.Logf("events log: %d records, %d accepted, %d rejected, %d duplicates, %d dead letters; %d customers registered",
		f.Records, f.AcceptedEvents, f.Rejected, f.Duplicates, f.DeadLetters, f.Registered())
	if f.DeadLetters != 0 {
		t.Errorf("%d records of the log would be dead-lettered; the campaign produces none", f.DeadLetters)
	}
	for _, l := range lines {
		ev, err := processor.Decode(l.Key, l.Value)
		if err != nil {
			t.Fatalf("generated event: %v", err)
		}
		if f.Copies[ev.ID] == 0 {
			v.IngestMissing++
		}
	}
	v.TwiceIDs, v.TwiceExtra = f.AppliedTwice()
	v.Audit = crash.AuditAcks(f, writes.Acks)

	var group *crash.Group
	if plan.partitioned {
		g := crashGroup(kafkaAdmin(t, brokers), names)
		group = &g
	}
	for _, in := range fleet {
		began := time.Now()
		v.Served[in.name] = crashAwaitServed(t, in, f, group, plan.settle)
		t.Logf("%s serves: %s (awaited %s)", in.name, v.Served[in.name], time.Since(began).Round(time.Millisecond))
		if group != nil && v.Served[in.name].Forwarded == 0 {
			t.Errorf("%s answered no customer through its owner: the reads did not check forwarding", in.name)
		}
	}
	table, err := crash.NewTable(crashRead(t, brokers, names.table()))
	if err != nil {
		t.Fatal(err)
	}
	v.Table = table.Check(f)
	t.Logf("group table: %d keys: %s", len(table), v.Table)
	if v.Table.Bad() != 0 {
		t.Errorf("the table differs from the fold of the log: %s\n%s", v.Table, strings.Join(v.Table.Examples, "\n"))
	}
	v.Listed, v.ListingProblems = crashCheckListings(t, fleet[0], f, writes.Acks)
	crashDiverged(t, &v, fleet, table, crashCommittedOnce(t, brokers, names))
	return v
}

// crashRead reads a whole topic back.
func crashRead(t *testing.T, brokers, topic string) crash.Log {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log, err := crash.ReadTopic(ctx, []string{brokers}, topic)
	if err != nil {
		t.Fatal(err)
	}
	return log
}

func crashCommittedOnce(t *testing.T, brokers string, names kafkaNames) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	committed, err := crashGroup(kafkaAdmin(t, brokers), names).Committed(ctx)
	if err != nil {
		t.Log(err)
	}
	return committed
}

// crashDiverged counts, for every customer served or stored unlike the
// fold, the events the service did not apply or applied wrongly, and
// explains the first few.
func crashDiverged(t *testing.T, v *crash.Findings, fleet crashFleet, table crash.Table, committed map[int32]int64) {
	t.Helper()
	got := map[string]int64{} // the version farthest from the fold's
	for _, tally := range append([]*crash.Tally{v.Table}, crashTallies(v.Served)...) {
		for id, version := range tally.Got {
			prev, seen := got[id]
			want := v.Fold.States[id].Version
			if !seen || crashAbs(version-want) > crashAbs(prev-want) {
				got[id] = version
			}
		}
	}
	for i, id := range crashSortedKeys(got) {
		served, err := fleet[0].service().Events(id)
		if err != nil {
			served = nil
		}
		d := crash.Diverge(v.Fold, id, served, got[id])
		v.NotApplied += len(d.NotApplied)
		v.AppliedTwice += len(d.Twice)
		v.AppliedRejected += len(d.Rejected)
		if i < 5 {
			v.Explained = append(v.Explained, crashExplain(fleet, v.Fold, table, committed, id, got[id])+"\n  "+d.String())
		}
	}
	if len(v.Explained) > 0 {
		t.Errorf("what became of the events of customers served or stored unlike the fold of the log (%d customers, the first %d):\n%s",
			len(got), len(v.Explained), strings.Join(v.Explained, "\n"))
	}
}

func crashAbs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func crashTallies(m map[string]*crash.Tally) []*crash.Tally {
	out := make([]*crash.Tally, 0, len(m))
	for _, name := range crashSortedKeys(m) {
		out = append(out, m[name])
	}
	return out
}

func crashSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// crashExplain says where the fold's events of a customer found at
// version got are in the log, where the group's committed offset is, what
// the table records of the customer hold, and what the instances logged
// about it: the evidence for a lost or doubled event.
func crashExplain(fleet crashFleet, f crash.Fold, table crash.Table, committed map[int32]int64, id string, got int64) string {
	want := f.States[id]
	var b strings.Builder
	fmt.Fprintf(&b, "%s: found at version %d, the fold of the log has version %d (next_offset %d)\n", id, got, want.Version, want.NextOffset)
	p := processor.PartitionFor(id, realKafkaPartitions)
	fmt.Fprintf(&b, "  the fold's accepted events (partition %d, the group's committed offset %d):\n", p, committed[p])
	for i, eventID := range f.Events[id] {
		for _, pl := range f.Accepted[eventID] {
			fmt.Fprintf(&b, "    version %d: %s at offset %d, record time %s\n", i+1, eventID, pl.Offset, crash.Clock(pl.Timestamp))
		}
	}
	if e, ok := table[id]; ok {
		fmt.Fprintf(&b, "  its table records (partition %d):\n", e.Partition)
		for _, r := range e.Records {
			fmt.Fprintf(&b, "    %s\n", r)
		}
	} else {
		fmt.Fprintf(&b, "  no table record\n")
	}
	for _, in := range fleet {
		for _, line := range crashGrep(in.proc.LogPath, id, 4) {
			fmt.Fprintf(&b, "  %s log: %s\n", in.name, line)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// crashGrep returns up to n lines of the file that contain s, each cut to
// 800 bytes.
func crashGrep(path, s string, n int) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, s) && len(out) < n {
			out = append(out, line[:min(len(line), 800)])
		}
	}
	return out
}

// crashAwaitServed compares every customer the instance serves with the
// fold until they all match, settle passes, or the answer has not changed
// for 30 s. With group set (partitioned mode), each answer must also be
// named as served by the owner of the customer's partition, as the group's
// assignment says at each poll.
func crashAwaitServed(t *testing.T, in *crashInstance, f crash.Fold, group *crash.Group, settle time.Duration) *crash.Tally {
	t.Helper()
	deadline := time.Now().Add(settle)
	var (
		last      string // the bad customers of the last poll, with their versions
		lastSince time.Time
	)
	for {
		s := in.service()
		if group != nil {
			s.Owner = crashOwners(*group)
		}
		tally := s.Check(f, 8)
		if tally.Bad() == 0 {
			return tally
		}
		if bad := fmt.Sprint(tally.Counts, tally.Got); bad != last {
			last, lastSince = bad, time.Now()
		}
		if time.Now().After(deadline) || time.Since(lastSince) > 30*time.Second {
			t.Errorf("%s does not serve the fold of the log (unchanged for %s): %s\n%s", in.name,
				time.Since(lastSince).Round(time.Second), tally, strings.Join(tally.Examples, "\n"))
			return tally
		}
		time.Sleep(time.Second)
	}
}

// crashOwners returns the owner of each customer as the group's
// assignment says now; "" for all when the group is not stable.
func crashOwners(g crash.Group) func(id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	owners, err := g.Owners(ctx)
	if err != nil {
		owners = nil // every answer differs until the group is stable
	}
	return func(id string) string { return owners[processor.PartitionFor(id, g.Partitions)] }
}

// crashCheckListings compares, for every customer with an acknowledged
// write, the ids of the events the instance lists with the fold's.
func crashCheckListings(t *testing.T, in *crashInstance, f crash.Fold, acks []crash.Ack) (int, []string) {
	t.Helper()
	ids := crashInOrderOfFirst(acks, func(a crash.Ack) string { return a.Customer })
	var (
		mu       sync.Mutex
		problems []string
	)
	crash.Each(ids, 8, func(id string) {
		got, err := in.service().Events(id)
		var problem string
		switch {
		case err != nil:
			problem = err.Error()
		case !slices.Equal(got, f.Events[id]):
			problem = fmt.Sprintf("%s: events %v, the fold accepted %v", id, got, f.Events[id])
		}
		if problem != "" {
			mu.Lock()
			problems = append(problems, problem)
			mu.Unlock()
		}
	})
	sort.Strings(problems)
	if len(problems) > 0 {
		t.Errorf("%d of %d customers list other events than the fold accepted:\n%s", len(problems), len(ids),
			strings.Join(problems[:min(10, len(problems))], "\n"))
	}
	return len(ids), problems
}

// crashReport logs the campaign's figures (RELIABILITY.md keeps those of
// the last full run) and fails on anything lost or applied twice.
func crashReport(t *testing.T, plan crashPlan, kills []crash.Kill, w crash.WritersReport, v crash.Findings, took time.Duration) {
	t.Helper()
	t.Log(crash.Report{Plan: plan.name, InstanceKills: plan.instanceKills, BrokerKills: plan.brokerKills,
		Generated: plan.events, Kills: kills, Writes: w, Findings: v, Duration: took})
	if p := v.Audit.Problems; len(p) > 0 {
		t.Errorf("%d acknowledged writes are not in the log once at their version:\n%s", len(p), strings.Join(p[:min(10, len(p))], "\n"))
	}
	if len(v.TwiceIDs) > 0 {
		t.Errorf("%d event ids applied more than once: %v", len(v.TwiceIDs), v.TwiceIDs[:min(10, len(v.TwiceIDs))])
	}
	if v.IngestMissing > 0 {
		t.Errorf("%d acknowledged generated events are not in the log", v.IngestMissing)
	}
	if u := w.Unexpected; len(u) > 0 {
		t.Errorf("%d unexpected write answers:\n%s", len(u), strings.Join(u[:min(10, len(u))], "\n"))
	}
	if len(w.Unresolved) > 0 {
		t.Logf("unresolved writes (none may be applied twice, which the audit checked): %v", w.Unresolved[:min(10, len(w.Unresolved))])
	}
	if w.Created == 0 {
		t.Errorf("no write was answered 201: the campaign checked no acknowledged write")
	}
	if v.Lost() != 0 || v.Doubled() != 0 || v.AppliedRejected != 0 {
		t.Errorf("lost %d (must be 0), double-applied %d (must be 0), applied though the log's fold rejects them %d (must be 0)",
			v.Lost(), v.Doubled(), v.AppliedRejected)
	}
}

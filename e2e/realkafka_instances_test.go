package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/testkit"
)

// The fault tests' workload: enough customers that every partition gets
// events all through the ingest, and a rate slow enough that the ingest
// is still running when the fault strikes.
const (
	rkbCustomers  = 2000
	rkbEvents     = 20000
	rkbBatch      = 200
	rkbBatchPause = 100 * time.Millisecond // 20,000 events in ~10 s
	rkbPartitions = 6
)

// TestRealKafkaThreeInstancesSurviveSIGKILL runs three instances in one
// group on real Kafka, SIGKILLs one mid-ingest and starts a fourth. Every
// live instance's view must then equal the reference fold: a lost event
// would leave a customer behind it, an event applied twice would bump a
// version past it.
func TestRealKafkaThreeInstancesSurviveSIGKILL(t *testing.T) {
	brokers := testkit.RequireKafka(t)
	t.Parallel()
	bin := binBuild(t)
	names := rkbNewNames(t, brokers, "rkb-inst")
	adm := rkbAdmin(t, brokers)
	rkbCreateTopics(t, adm, names)
	lines := testkit.Generate(31, rkbCustomers, rkbEvents)
	want := testkit.ReferenceFold(t, lines)

	servers := make([]*rkbServer, 3)
	for i := range servers {
		servers[i] = rkbServe(t, bin, brokers, names, fmt.Sprintf("instance-%d", i+1))
	}
	start := time.Now()
	rkbAwaitGroup(t, adm, names.group, len(servers), 90*time.Second)
	t.Logf("3 instances share the partitions after %s", time.Since(start).Round(time.Millisecond))
	// Readiness is checked, but a failure does not stop the test: whether
	// the fold survives the kill is worth knowing either way.
	rkbCheckReady(t, "after the start", servers, 30*time.Second)

	ingest := rkbStartIngest(t, brokers, names.events, lines)
	ingest.waitAcked(t, len(lines)/3, 60*time.Second)

	// A replacement is started at once, as an orchestrator would: the
	// group then rebalances for its join and for the victim's expiry.
	victim := servers[0]
	atKill := rkbCommitted(t, adm, names)
	killedAt := time.Now()
	victim.kill()
	t.Logf("SIGKILLed %s (pid %d) after %d of %d events were acknowledged",
		victim.name, victim.pid, ingest.acked.Load(), len(lines))
	fourth := rkbServe(t, bin, brokers, names, "instance-4")
	live := []*rkbServer{servers[1], servers[2], fourth}

	progressIn := rkbAwaitProgress(t, adm, names, atKill, 90*time.Second)
	t.Logf("every partition's committed offset moved past its value at the kill %s after the kill (%d events acknowledged by then)",
		progressIn.Round(time.Millisecond), ingest.acked.Load())

	ingest.wait(t, 3*time.Minute)
	t.Logf("ingest of %d events ended %s after the kill", len(lines), ingest.ended.Sub(killedAt).Round(time.Millisecond))

	for _, s := range live {
		// The replacement may still be starting; AwaitFold wants an answer.
		if _, err := s.await("/healthz", http.StatusOK, 60*time.Second); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		s.client.AwaitFold(t, want, 120*time.Second)
		t.Logf("%s holds the reference fold of %d customers (%s after the kill, awaited %s)", s.name, len(want),
			time.Since(killedAt).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	}
	// Every live instance is folding, so each must say it is ready: one
	// stuck at 503 after the rebalances would be taken out of service.
	rkbCheckReady(t, "after the kill", live, 30*time.Second)

	// The sum is informative only: a new owner folds again whatever the
	// victim folded but had not committed, unless the table already had it.
	total := 0.0
	for _, s := range live {
		m := binScrape(t, s.client)
		folded := m.sum("eventfold_events_folded_total")
		total += folded
		t.Logf("%s: folded %.0f, duplicates %.0f, processor restarts %.0f", s.name, folded,
			m.sum("eventfold_events_duplicate_total"), m.sum("eventfold_processor_restarts_total"))
	}
	t.Logf("folded by live instances: %.0f; accepted by the reference fold: %d (the victim's share is not counted)",
		total, binVersionSum(want))
}

// rkbNames are one test's topic and group names on a shared broker.
type rkbNames struct {
	events, group string
}

func (n rkbNames) table() string { return n.group + "-table" }
func (n rkbNames) dlq() string   { return n.events + ".dlq" }

// rkbNewNames returns fresh names: the default broker is persistent and
// shared. The cleanup deletes the topics and the group, or keeps them for
// a look when the test failed.
func rkbNewNames(t *testing.T, brokers, prefix string) rkbNames {
	t.Helper()
	n := rkbNames{events: testkit.UniqueName(prefix + "-events"), group: testkit.UniqueName(prefix + "-group")}
	adm := rkbAdmin(t, brokers)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept topics %s, %s, %s and group %s", n.events, n.table(), n.dlq(), n.group)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if _, err := adm.DeleteTopics(ctx, n.events, n.table(), n.dlq()); err != nil {
			t.Logf("failed to delete topics of %s: %v", n.group, err)
		}
		if _, err := adm.DeleteGroups(ctx, n.group); err != nil {
			t.Logf("failed to delete group %s: %v", n.group, err)
		}
	})
	return n
}

// rkbAdmin returns an admin client, closed by the cleanup.
func rkbAdmin(t *testing.T, brokers string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatalf("failed to create kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// rkbCreateTopics creates the topics as an operator would, with the
// settings serve requires, and waits until the broker's metadata has them.
// The fault tests are about failover; serve's own creation of missing
// topics is the concern of realkafka_topics_test.go.
func rkbCreateTopics(t *testing.T, adm *kadm.Client, names rkbNames) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	specs := map[string]map[string]*string{
		names.events:  {"retention.ms": kadm.StringPtr("-1"), "retention.bytes": kadm.StringPtr("-1"), "cleanup.policy": kadm.StringPtr("delete")},
		names.table(): {"cleanup.policy": kadm.StringPtr("compact")},
		names.dlq():   {"retention.ms": kadm.StringPtr("-1"), "cleanup.policy": kadm.StringPtr("delete")},
	}
	for topic, configs := range specs {
		if _, err := adm.CreateTopic(ctx, rkbPartitions, 1, configs, topic); err != nil {
			t.Fatalf("failed to create topic %s: %v", topic, err)
		}
	}
	for {
		details, err := adm.ListTopics(ctx, names.events, names.table(), names.dlq())
		if err == nil && rkbTopicsLed(details, len(specs)) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("topics of %s not in the metadata with leaders within 30 s: %v", names.group, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rkbTopicsLed reports whether all n topics are known with every
// partition led.
func rkbTopicsLed(details kadm.TopicDetails, n int) bool {
	if len(details) != n {
		return false
	}
	for _, d := range details {
		if d.Err != nil || len(d.Partitions) != rkbPartitions {
			return false
		}
		for _, p := range d.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return false
			}
		}
	}
	return true
}

// rkbAwaitGroup waits until the consumer group is stable with the given
// number of members: every instance then holds its share of partitions.
func rkbAwaitGroup(t *testing.T, adm *kadm.Client, group string, members int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := "not described yet"
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		described, err := adm.DescribeGroups(ctx, group)
		cancel()
		if g, ok := described[group]; err == nil && ok && g.Err == nil {
			if g.State == "Stable" && len(g.Members) == members {
				return
			}
			last = fmt.Sprintf("state %s with %d members", g.State, len(g.Members))
		} else if err != nil {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("group %s not stable with %d members within %s: %s", group, members, timeout, last)
}

// rkbCheckReady polls every server's /readyz together until each has
// answered 200 once, and reports as errors those that did not within
// timeout.
func rkbCheckReady(t *testing.T, when string, servers []*rkbServer, timeout time.Duration) {
	t.Helper()
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() { _, errs[i] = s.await("/readyz", http.StatusOK, timeout) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", when, err)
		}
	}
}

// rkbCommitted returns the group's committed offset per partition of the
// events topic; a partition without a commit is absent.
func rkbCommitted(t *testing.T, adm *kadm.Client, names rkbNames) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := adm.FetchOffsetsForTopics(ctx, names.group, names.events)
	if err != nil {
		t.Fatalf("failed to fetch the offsets of group %s: %v", names.group, err)
	}
	out := map[int32]int64{}
	for p := int32(0); p < rkbPartitions; p++ {
		if o, ok := resp.Lookup(names.events, p); ok && o.Err == nil && o.At >= 0 {
			out[p] = o.At
		}
	}
	return out
}

// rkbAwaitProgress waits until the group's committed offset of every
// partition is past its value in before, and returns how long that took.
// With events still arriving on every partition, that is when the
// partitions of a dead member have been taken over and are being folded.
func rkbAwaitProgress(t *testing.T, adm *kadm.Client, names rkbNames, before map[int32]int64, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		now := rkbCommitted(t, adm, names)
		var stuck []string
		for p := int32(0); p < rkbPartitions; p++ {
			if now[p] <= before[p] {
				stuck = append(stuck, fmt.Sprintf("%d@%d", p, now[p]))
			}
		}
		if len(stuck) == 0 {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("partitions %s made no progress within %s", strings.Join(stuck, ", "), timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rkbIngest produces events in the background at a bounded rate.
type rkbIngest struct {
	acked atomic.Int64
	done  chan struct{}
	err   error     // set before done is closed
	ended time.Time // set before done is closed
}

// rkbStartIngest produces lines in order, rkbBatch at a time with a pause
// between batches, waiting for each batch to be acknowledged. The
// idempotent producer keeps each partition's order across retries, and
// its retries outlast a broker restart.
func rkbStartIngest(t *testing.T, brokers, topic string, lines []testkit.Line) *rkbIngest {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(2*time.Minute),
		kgo.RequestRetries(1000),
		kgo.RetryTimeout(2*time.Minute),
	)
	if err != nil {
		t.Fatalf("failed to create the producer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &rkbIngest{done: make(chan struct{})}
	go func() {
		defer func() {
			in.ended = time.Now()
			close(in.done)
		}()
		for i := 0; i < len(lines); i += rkbBatch {
			batch := lines[i:min(i+rkbBatch, len(lines))]
			records := make([]*kgo.Record, len(batch))
			for j, l := range batch {
				records[j] = &kgo.Record{Key: []byte(l.Key), Value: l.Value}
			}
			if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
				in.err = fmt.Errorf("failed to produce events %d to %d: %w", i, i+len(batch)-1, err)
				return
			}
			in.acked.Add(int64(len(batch)))
			select {
			case <-ctx.Done():
				in.err = ctx.Err()
				return
			case <-time.After(rkbBatchPause):
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-in.done
		cl.Close()
	})
	return in
}

// waitAcked waits until at least n events were acknowledged.
func (in *rkbIngest) waitAcked(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for in.acked.Load() < int64(n) {
		select {
		case <-in.done:
			if in.err != nil {
				t.Fatalf("ingest failed: %v", in.err)
			}
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d events acknowledged within %s", in.acked.Load(), n, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits until the ingest has ended and fails if it failed.
func (in *rkbIngest) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-in.done:
	case <-time.After(timeout):
		t.Fatalf("ingest still running after %s: %d events acknowledged", timeout, in.acked.Load())
	}
	if in.err != nil {
		t.Fatalf("ingest failed after %d events: %v", in.acked.Load(), in.err)
	}
}

// rkbServer is one `eventfold serve` process against a real broker, its
// output in a file.
type rkbServer struct {
	t       *testing.T
	name    string
	pid     int
	client  *testkit.Client
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
	stopped sync.Once
}

// rkbServe starts `eventfold serve` with its own data dir and HTTP port.
// The cleanup stops it with SIGTERM (SIGKILL after 15 s) and prints the
// end of its log if the test failed.
func rkbServe(t *testing.T, bin, brokers string, names rkbNames, name string) *rkbServer {
	t.Helper()
	dir := t.TempDir() // created first, so removed after the process stopped
	httpAddr := fmt.Sprintf("127.0.0.1:%d", binFreePort(t))
	s := &rkbServer{t: t, name: name, client: testkit.NewClient("http://" + httpAddr),
		logPath: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	out, err := os.Create(s.logPath)
	if err != nil {
		t.Fatalf("failed to create the log of %s: %v", name, err)
	}
	s.cmd = exec.Command(bin, "serve", "--brokers", brokers, "--events-topic", names.events, "--group", names.group,
		"--data-dir", filepath.Join(dir, "data"), "--http-addr", httpAddr, "--partitions", fmt.Sprint(rkbPartitions),
		"--log-level", "debug")
	s.cmd.Env = binEnv()
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("failed to start %s: %v", name, err)
	}
	s.pid = s.cmd.Process.Pid
	go func() {
		s.waitErr = s.cmd.Wait()
		out.Close()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.stop(15 * time.Second)
		if t.Failed() {
			t.Logf("%s (pid %d, %s) log:\n%s", name, s.pid, httpAddr, s.logTail(48<<10))
		}
	})
	return s
}

func (s *rkbServer) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// get returns the status code and body of a GET of path, or 0 and the
// transport error.
func (s *rkbServer) get(path string) (int, string) {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(s.client.Base + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// await polls path until it answers status and returns how long that
// took, or an error once timeout passed or the process exited.
func (s *rkbServer) await(path string, status int, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		if s.exited() {
			return time.Since(start), fmt.Errorf("%s exited while awaiting %s %d: %v", s.name, path, status, s.waitErr)
		}
		code, body := s.get(path)
		if code == status {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("%s%s not %d within %s; last answer: %d %s", s.client.Base, path, status, timeout, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *rkbServer) waitReady(timeout time.Duration) {
	s.t.Helper()
	if _, err := s.await("/readyz", http.StatusOK, timeout); err != nil {
		s.t.Fatal(err)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *rkbServer) kill() {
	s.t.Helper()
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Fatalf("failed to kill %s: %v", s.name, err)
	}
	<-s.done
}

// stop sends SIGTERM and waits up to grace, then kills.
func (s *rkbServer) stop(grace time.Duration) {
	s.t.Helper()
	s.stopped.Do(func() {
		if s.exited() {
			return
		}
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			s.t.Errorf("failed to send SIGTERM to %s: %v", s.name, err)
		}
		select {
		case <-s.done:
		case <-time.After(grace):
			s.t.Errorf("%s did not stop within %s of SIGTERM; killing it", s.name, grace)
			s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// logTail returns at most the last n bytes of the process's output.
func (s *rkbServer) logTail(n int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(failed to read %s: %v)", s.logPath, err)
	}
	if len(b) > n {
		return "[...]\n" + string(b[len(b)-n:])
	}
	return string(b)
}

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// The fault tests' workload: enough customers that every partition gets
// events all through the ingest, and a rate slow enough that the ingest
// is still running when the fault strikes.
const (
	rkbCustomers  = 2000
	rkbEvents     = 20000
	rkbBatch      = 200
	rkbBatchPause = 100 * time.Millisecond // 20,000 events in ~10 s
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
	names := newKafkaNames(t, brokers, "rkb-inst")
	adm := kafkaAdmin(t, brokers)
	createServeTopics(t, adm, names, nil)
	lines := testkit.Generate(31, rkbCustomers, rkbEvents)
	want := testkit.ReferenceFold(t, lines)

	servers := make([]*server, 3)
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
	atKill := committedOffsets(t, adm, names.events, names.group, realKafkaPartitions)
	killedAt := time.Now()
	victim.kill()
	t.Logf("SIGKILLed %s (pid %d) after %d of %d events were acknowledged",
		victim.name, victim.pid(), ingest.acked.Load(), len(lines))
	fourth := rkbServe(t, bin, brokers, names, "instance-4")
	live := []*server{servers[1], servers[2], fourth}

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
func rkbCheckReady(t *testing.T, when string, servers []*server, timeout time.Duration) {
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

// rkbAwaitProgress waits until the group's committed offset of every
// partition is past its value in before, and returns how long that took.
// With events still arriving on every partition, that is when the
// partitions of a dead member have been taken over and are being folded.
func rkbAwaitProgress(t *testing.T, adm *kadm.Client, names kafkaNames, before []int64, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		now := committedOffsets(t, adm, names.events, names.group, realKafkaPartitions)
		var stuck []string
		for p := range now {
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
	cl := newProducer(t, brokers, topic,
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(2*time.Minute),
		kgo.RequestRetries(1000),
		kgo.RetryTimeout(2*time.Minute),
	)
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

// rkbServe starts `eventfold serve` with its own data dir and HTTP port,
// its debug log in a file. The cleanup stops it with SIGTERM (SIGKILL
// after 15 s) and prints the end of its log if the test failed.
func rkbServe(t *testing.T, bin, brokers string, names kafkaNames, name string) *server {
	t.Helper()
	dir := t.TempDir() // created first, so removed after the process stopped
	return startServe(t, bin, serveSpec{
		name:      name,
		args:      append(realKafkaServeArgs(brokers, names, filepath.Join(dir, "data")), "--log-level", "debug"),
		kafkaAddr: brokers,
		logFile:   filepath.Join(dir, name+".log"),
		logTail:   48 << 10,
	})
}

package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/service"
	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/web"
)

// TestStaticMembershipRestartCostsNoRebalance stops one of three
// partitioned instances cleanly and starts it again on its data dir and
// address, under a read load through the other two; once as dynamic
// members (no --instance-id) and once as static members (KIP-345). A
// dynamic member leaves the group when it stops and joins it again: two
// rebalances, in which the others take its partitions and give them
// back. A static member sends no LeaveGroup and comes back with the same
// instance id and member data: the group hands it its partitions again
// without a rebalance, so the others' processors never stop (their
// rebalance count stays) and their partitions never move. The dynamic run
// must show the rebalances, or the static run's check proves nothing.
//
// kfake implements static membership (its JoinGroup replaces a known
// instance id's member and keeps its assignment in a stable group);
// TestRealKafkaStaticMembershipRestartCostsNoRebalance runs the same on
// Apache Kafka.
func TestStaticMembershipRestartCostsNoRebalance(t *testing.T) {
	t.Parallel()
	const partitions = 12
	staticRestarts(t, func(t *testing.T) (string, kafka.Topics) {
		broker := testkit.StartKfake(t, embedded.Config{Partitions: partitions})
		return broker, kafka.Topics{Events: "customer-events", Group: "customers", Partitions: partitions, Replication: 1}
	})
}

// TestRealKafkaStaticMembershipRestartCostsNoRebalance is
// TestStaticMembershipRestartCostsNoRebalance on Apache Kafka, whose
// group coordinator is the one that matters.
func TestRealKafkaStaticMembershipRestartCostsNoRebalance(t *testing.T) {
	brokers := testkit.RequireKafka(t)
	t.Parallel()
	staticRestarts(t, func(t *testing.T) (string, kafka.Topics) {
		return brokers, realKafkaStaticTopics(t, brokers)
	})
}

// realKafkaStaticTopics returns fresh names on the shared broker for
// static members with staticIDs. Static members do not leave when they
// stop, and a group with members cannot be deleted: the cleanup removes
// them once they have stopped, before the names' cleanup deletes the
// group.
func realKafkaStaticTopics(t *testing.T, brokers string) kafka.Topics {
	names := newKafkaNames(t, brokers, "static")
	adm := kafkaAdmin(t, brokers)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := adm.LeaveGroup(ctx, kadm.LeaveGroup(names.group).InstanceIDs(staticIDs...)); err != nil {
			t.Logf("failed to remove the static members of %s: %v", names.group, err)
		}
	})
	topics := kafka.Topics{Events: names.events, Group: names.group, Partitions: realKafkaPartitions, Replication: 1}
	deleteAfter(t, brokers, []string{topics.Keys()}, nil) // the service creates it
	return topics
}

// staticRestarts runs restartOneOfThree with dynamic and with static
// members, each on the broker and fresh topics that cluster returns.
func staticRestarts(t *testing.T, cluster func(t *testing.T) (string, kafka.Topics)) {
	results := map[bool]restartResult{}
	for _, static := range []bool{false, true} {
		t.Run(fmt.Sprintf("static=%v", static), func(t *testing.T) {
			broker, topics := cluster(t)
			results[static] = restartOneOfThree(t, broker, topics, static)
		})
	}
	if t.Failed() || len(results) < 2 {
		return // a run filtered to one of them compares nothing
	}
	// The static run checks itself; the dynamic one shows the check can
	// fail.
	dynamic, static := results[false], results[true]
	if dynamic.rebalances == 0 || !dynamic.moved {
		t.Errorf("dynamic members: the others rebalanced %v times and their partitions moved: %v; want both, or the static run's check shows nothing", dynamic.rebalances, dynamic.moved)
	}
	t.Logf("every partition owned again after a clean restart: dynamic %s, static %s; reads failed: dynamic %d of %d, static %d of %d",
		dynamic.owned.Round(time.Millisecond), static.owned.Round(time.Millisecond),
		dynamic.failed, dynamic.failed+dynamic.answered, static.failed, static.failed+static.answered)
}

// TestStaticMembershipFencedInstanceStops starts a second instance with
// the instance id of a running one, as a misconfiguration would. The
// group gives the newer one the partitions and fences the older. The
// older must stop, its Run failing with processor.ErrFenced and naming
// the id, rather than join again: that would fence the newer in turn,
// and the two would take the partitions from each other every few
// seconds, both folding them meanwhile (goka alone joins again after 5 s).
func TestStaticMembershipFencedInstanceStops(t *testing.T) {
	t.Parallel()
	const partitions = 6
	broker := testkit.StartKfake(t, embedded.Config{Partitions: partitions})
	fencedInstanceStops(t, broker, kafka.Topics{Events: "customer-events", Group: "customers", Partitions: partitions, Replication: 1})
}

// TestRealKafkaStaticMembershipFencedInstanceStops is
// TestStaticMembershipFencedInstanceStops on Apache Kafka.
func TestRealKafkaStaticMembershipFencedInstanceStops(t *testing.T) {
	brokers := testkit.RequireKafka(t)
	t.Parallel()
	fencedInstanceStops(t, brokers, realKafkaStaticTopics(t, brokers))
}

func fencedInstanceStops(t *testing.T, broker string, topics kafka.Topics) {
	partitions := topics.Partitions
	spec := instanceSpec{membership: kafka.Membership{InstanceID: staticIDs[0]}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, err := service.New(ctx, instanceConfig(t, broker, topics, spec))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	older := &instance{svc: svc, url: svc.Server.AdvertisedURL()}
	awaitSplit(t, []*instance{older}, partitions, 60*time.Second)

	joined := time.Now()
	newer := startInstanceSpec(t, broker, topics, spec)
	select {
	case err := <-done:
		if !errors.Is(err, processor.ErrFenced) || !strings.Contains(err.Error(), `"eventfold-0"`) {
			t.Fatalf("the fenced instance stopped with %v; want processor.ErrFenced naming the instance id", err)
		}
		t.Logf("the fenced instance stopped %s after the other started: %v", time.Since(joined).Round(time.Millisecond), err)
	case <-time.After(30 * time.Second):
		t.Fatal("the fenced instance still runs 30 s after another joined with its instance id")
	}
	// The newer keeps every partition: nobody takes them back.
	awaitSplit(t, []*instance{newer}, partitions, 30*time.Second)
	rebalances := sumCounter(t, newer.svc.Registry, "eventfold_processor_rebalances_total")
	time.Sleep(8 * time.Second) // longer than goka's 5 s before a join again
	if got := sumCounter(t, newer.svc.Registry, "eventfold_processor_rebalances_total"); got != rebalances || len(newer.svc.View.Owned()) != int(partitions) {
		t.Errorf("the newer instance rebalanced %v times more and owns %v after the older stopped; want it to keep all %d", got-rebalances, newer.svc.View.Owned(), partitions)
	}
}

// staticIDs are the instance ids of the static members.
var staticIDs = []string{"eventfold-0", "eventfold-1", "eventfold-2"}

// restartResult is what the two other instances and the read load saw
// around a clean restart of one instance.
type restartResult struct {
	// rebalances is the rise of the others' processor rebalance count;
	// moved, whether any of their partitions changed at any sample.
	rebalances float64
	moved      bool
	// owned is the time from the stop until every partition was owned
	// again, the restarted instance's own among them.
	owned             time.Duration
	answered, failed  int64
	shutdown, startup time.Duration
}

func restartOneOfThree(t *testing.T, broker string, topics kafka.Topics, static bool) (res restartResult) {
	partitions := topics.Partitions
	specs := make([]instanceSpec, 3)
	live := make([]*instance, 3)
	for i := range live {
		specs[i] = instanceSpec{dataDir: t.TempDir(), addr: freeAddr(t)}
		if static {
			specs[i].membership = kafka.Membership{InstanceID: staticIDs[i]}
		}
		live[i] = startInstanceSpec(t, broker, topics, specs[i])
	}
	awaitSplit(t, live, partitions, 60*time.Second)
	lines := testkit.Generate(41, 300, 1500)
	produceRecords(t, broker, topics.Events, 30*time.Second, lineRecords(lines))
	want := testkit.ReferenceFold(t, lines)
	for _, in := range live {
		in.client.AwaitFold(t, want, 60*time.Second)
	}
	ids := testkit.Registered(want)
	// A static member commits with its instance id; a commit the
	// coordinator refused would leave the restart to fold events again.
	adm := kafkaAdmin(t, broker)
	awaitCommitted(t, adm, topics, int64(len(lines)))

	victim, rest := live[0], live[1:]
	mine := victim.svc.View.Owned()
	theirs := make([][]int32, len(rest))
	var rebalances float64
	for i, in := range rest {
		theirs[i] = in.svc.View.Owned()
		rebalances += sumCounter(t, in.svc.Registry, "eventfold_processor_rebalances_total")
	}

	// The load: random customers through the two others, as clients
	// would; each answer is 200 with the reference version, or 503 with
	// Retry-After. A sampler watches the others' partitions.
	var (
		stop             atomic.Bool
		answered, failed atomic.Int64
		moved            atomic.Bool
		wg               sync.WaitGroup
		hc               = &http.Client{Timeout: 5 * time.Second, Transport: tokenTransport{token: partitionedToken}}
		badMu            sync.Mutex
		bad              []string
	)
	for w := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 16))
			for !stop.Load() {
				id := ids[rng.IntN(len(ids))]
				resp, err := hc.Get(rest[rng.IntN(len(rest))].url + "/customers/" + id)
				if err != nil {
					badMu.Lock()
					bad = append(bad, fmt.Sprintf("GET %s: %v", id, err))
					badMu.Unlock()
					return
				}
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusOK && resp.Header.Get("ETag") == fmt.Sprintf("%q", fmt.Sprint(want[id].Version)):
					answered.Add(1)
				case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
					failed.Add(1)
				default:
					badMu.Lock()
					bad = append(bad, fmt.Sprintf("GET %s: %d, ETag %s, want 200 with version %d, or 503 with Retry-After", id, resp.StatusCode, resp.Header.Get("ETag"), want[id].Version))
					badMu.Unlock()
					return
				}
			}
		})
	}
	wg.Go(func() {
		for !stop.Load() {
			for i, in := range rest {
				if !slices.Equal(in.svc.View.Owned(), theirs[i]) {
					moved.Store(true)
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	})

	time.Sleep(500 * time.Millisecond) // the load runs before the stop too
	stopped := time.Now()
	victim.stop()
	res.shutdown = time.Since(stopped)
	live[0] = startInstanceSpec(t, broker, topics, specs[0])
	res.startup = time.Since(stopped)
	for deadline := stopped.Add(90 * time.Second); !split(live, partitions); {
		if time.Now().After(deadline) {
			t.Fatalf("every partition was not owned again within 90 s of the stop")
		}
		time.Sleep(10 * time.Millisecond)
	}
	res.owned = time.Since(stopped)
	awaitSplit(t, live, partitions, 60*time.Second) // the membership pictures agree too
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	for _, b := range bad {
		t.Error(b)
	}
	for _, in := range rest {
		res.rebalances += sumCounter(t, in.svc.Registry, "eventfold_processor_rebalances_total")
	}
	res.rebalances -= rebalances
	res.moved = moved.Load()
	if static && (res.rebalances != 0 || res.moved) {
		t.Errorf("static members: the others rebalanced %v times and their partitions moved: %v; want neither", res.rebalances, res.moved)
	}
	res.answered, res.failed = answered.Load(), failed.Load()

	// The restarted instance holds its partitions again, answers from
	// them, and every instance sees it in the group under its URL.
	if got := live[0].svc.View.Owned(); !slices.Equal(got, mine) {
		t.Errorf("the restarted instance owns %v, before the stop %v", got, mine)
	}
	for _, in := range live {
		if got := in.svc.Members.Partitions()[live[0].url]; !slices.Equal(got, mine) {
			t.Errorf("%s sees the restarted instance %s own %v, want %v", in.url, live[0].url, got, mine)
		}
	}
	live[0].client.AwaitFold(t, want, 30*time.Second)
	awaitCommitted(t, adm, topics, int64(len(lines)))
	for _, id := range ids {
		if !live[0].owns(id, partitions) {
			continue
		}
		resp := getWithToken(t, rest[0].url+"/customers/"+id, partitionedToken)
		if got := resp.Header.Get(web.HeaderServedBy); resp.status != http.StatusOK || got != live[0].url {
			t.Errorf("GET %s after the restart: %d served by %q, want 200 from the restarted owner %s", id, resp.status, got, live[0].url)
		}
	}
	t.Logf("clean restart of 1 of 3 partitioned instances, static membership %v: stop %s, start %s, every partition owned again %s after the stop; "+
		"the others rebalanced %v times, their partitions moved: %v; reads through the others: %d answered, %d failed with 503",
		static, res.shutdown.Round(time.Millisecond), (res.startup - res.shutdown).Round(time.Millisecond), res.owned.Round(time.Millisecond),
		res.rebalances, res.moved, res.answered, res.failed)
	return res
}

// awaitCommitted waits until the group has committed n records of the
// events topic in all.
func awaitCommitted(t *testing.T, adm *kadm.Client, topics kafka.Topics, n int64) {
	t.Helper()
	var sum int64
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		sum = 0
		for _, o := range committedOffsets(t, adm, topics.Events, topics.Group, int(topics.Partitions)) {
			sum += o
		}
		if sum == n {
			return
		}
	}
	t.Fatalf("group %s committed %d of the %d records of %s", topics.Group, sum, n, topics.Events)
}

// freeAddr returns a loopback address with a port free now, for an
// instance that must come back on the same address.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

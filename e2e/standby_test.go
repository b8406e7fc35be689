package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/web"
)

// moveResult is what readers saw while one of three instances stopped.
type moveResult struct {
	reads, failed, byStandby int
	// firstFailed and lastFailed are the times from the stop to the
	// first and the last failed read: after it every read was answered.
	firstFailed, lastFailed time.Duration
	// shutdown is how long the stopped instance took to stop.
	shutdown time.Duration
	// moved is the time from the stop until the two others own every
	// partition and serve them.
	moved time.Duration
}

// TestStandbyReplicasAnswerReadsDuringAMove runs three partitioned
// instances of the real assembly on kfake (12 partitions), once without
// and once with --standby-replicas 1, stops one of them cleanly while
// reading every customer, with min_version, through the two others, and
// compares the failed reads. With a standby, each instance also holds a
// warm copy of the partitions of the instance before it in member order,
// a read forwarded to it as a standby is answered from that copy and
// never below its min_version, and during the move the reads of the
// stopped instance's customers are answered by its standby.
func TestStandbyReplicasAnswerReadsDuringAMove(t *testing.T) {
	t.Parallel()
	results := map[int]moveResult{}
	for _, standbys := range []int{0, 1} {
		t.Run(fmt.Sprintf("standby-replicas=%d", standbys), func(t *testing.T) {
			results[standbys] = readsThroughAStop(t, standbys)
		})
	}
	without, with := results[0], results[1]
	for _, r := range []struct {
		name string
		moveResult
	}{{"without standbys", without}, {"with --standby-replicas 1", with}} {
		t.Logf("clean stop of 1 of 3 instances (its shutdown took %s), reads with min_version through the other two, %s: %d of %d reads failed, from %s to %s after the stop; partitions moved after %s; %d answered by a standby",
			r.shutdown.Round(time.Millisecond), r.name, r.failed, r.reads, r.firstFailed.Round(time.Millisecond), r.lastFailed.Round(time.Millisecond),
			r.moved.Round(time.Millisecond), r.byStandby)
	}
	if t.Failed() || len(results) < 2 {
		return // a run filtered to one of them compares nothing
	}
	if with.byStandby == 0 {
		t.Error("no read was answered by a standby during the move")
	}
	// Without standbys every read of a third of the customers fails
	// until the move ends; with them, only the reads of partitions whose
	// standby was the stopped instance, while the group rebalances.
	if with.failed*2 > without.failed {
		t.Errorf("with a standby %d reads failed, without %d: want less than half", with.failed, without.failed)
	}
}

func readsThroughAStop(t *testing.T, standbys int) (res moveResult) {
	const partitions = 12
	broker, topics, live := startSplit(t, partitions, 3, standbys)
	lines := testkit.Generate(31, 300, 1500)
	produceRecords(t, broker, topics.Events, 30*time.Second, lineRecords(lines))
	want := testkit.ReferenceFold(t, lines)
	for _, in := range live {
		in.client.AwaitFold(t, want, 60*time.Second)
	}
	if standbys > 0 {
		awaitStandbys(t, live, len(want), 60*time.Second)
		t.Run("a standby answers from its copy, never below min_version", func(t *testing.T) {
			standbyReadsKeepMinVersion(t, live, want, partitions)
		})
	}

	victim, rest := live[0], live[1:]
	sample := testkit.Registered(want)
	stopped := time.Now()
	stopDone := make(chan time.Duration, 1)
	go func() { victim.stop(); stopDone <- time.Since(stopped) }()
	defer func() { res.shutdown = <-stopDone }()
	for deadline := stopped.Add(90 * time.Second); ; {
		clean := true
		for i, id := range sample {
			resp := getWithToken(t, fmt.Sprintf("%s/customers/%s?min_version=%d&wait=1s", rest[i%2].url, id, want[id].Version), partitionedToken)
			res.reads++
			var got processor.Customer
			switch {
			case resp.status == http.StatusOK:
				if json.Unmarshal(resp.body, &got) != nil || got.Version != want[id].Version {
					t.Fatalf("GET %s during the move: version %d, want %d", id, got.Version, want[id].Version)
				}
				if resp.Header.Get(web.HeaderStandby) == "true" {
					res.byStandby++
				}
			case resp.status == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
				res.failed++
				res.lastFailed = time.Since(stopped)
				if res.firstFailed == 0 {
					res.firstFailed = res.lastFailed
				}
				clean = false
			default:
				t.Fatalf("GET %s during the move: %d %s, want 200, or 503 with Retry-After", id, resp.status, resp.body)
			}
		}
		if res.moved == 0 && split(rest, partitions) {
			res.moved = time.Since(stopped)
		}
		if clean && res.moved != 0 {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("reads did not recover within 90 s: %d of %d failed", res.failed, res.reads)
		}
	}
}

// split reports whether the instances own every partition between them
// and serve it.
func split(live []*instance, partitions int32) bool {
	var owned []int32
	for _, in := range live {
		if !in.svc.Processor.Ready() {
			return false
		}
		owned = append(owned, in.svc.View.Owned()...)
	}
	return len(owned) == int(partitions)
}

// awaitStandbys waits until every instance holds a caught-up copy of
// each partition it stands by for, then checks the keys: each instance
// holds its own partitions plus its standby copies, and with one standby
// each key is in exactly one copy.
func awaitStandbys(t *testing.T, live []*instance, keys int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		// Caught up: the copies hold every key the owners folded.
		ready, held := true, int64(0)
		for _, in := range live {
			want, copies := in.svc.Members.StandbyPartitions(), in.svc.View.Standbys().Held()
			if len(want) == 0 || !slices.Equal(want, copies) {
				ready = false
			}
			held += in.svc.View.Standbys().Keys()
		}
		if ready && held == int64(keys) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the instances did not hold their standby copies within %s (%d keys in them, want %d: each key once with one standby)", timeout, held, keys)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, in := range live {
		own, standby := in.svc.View.Keys(), in.svc.View.Standbys().Keys()
		for _, p := range in.svc.View.Standbys().Held() {
			if slices.Contains(in.svc.View.Owned(), p) {
				t.Errorf("%s stands by for partition %d, which it owns", in.url, p)
			}
		}
		t.Logf("%s holds %d keys of its %d partitions and %d of its %d standby copies", in.url,
			own, len(in.svc.View.Owned()), standby, len(in.svc.View.Standbys().Held()))
		if share := float64(own+standby) / float64(keys); share < 0.4 || share > 0.9 {
			t.Errorf("%s holds %d+%d of %d keys; want about two thirds with one standby", in.url, own, standby, keys)
		}
	}
}

// standbyReadsKeepMinVersion sends reads to a customer's standby as a
// forward, which it answers from its copy: the state at min_version, a
// wait that ends without a stale answer above it, and a newer version as
// soon as the table has it.
func standbyReadsKeepMinVersion(t *testing.T, live []*instance, want map[string]processor.Customer, partitions int32) {
	var id string
	for _, c := range testkit.Registered(want) {
		if want[c].Status != processor.StatusErased {
			id = c
			break
		}
	}
	owner, _ := ownerOf(live, id, partitions)
	var standby *instance
	for _, in := range live {
		if slices.Contains(in.svc.View.Standbys().Held(), processor.PartitionFor(id, partitions)) {
			standby = in
		}
	}
	if standby == nil || standby == owner {
		t.Fatalf("no standby other than the owner holds %s", id)
	}
	version := want[id].Version
	base := standby.url + "/customers/" + id
	r := getForwarded(t, fmt.Sprintf("%s?min_version=%d&max_lag=0", base, version), partitionedToken)
	if r.status != http.StatusOK || r.Header.Get(web.HeaderStandby) != "true" || r.Header.Get(web.HeaderServedBy) != standby.url {
		t.Fatalf("a read at the standby: %d, %s %q, %s %q, want 200 from the standby's copy: %s", r.status,
			web.HeaderStandby, r.Header.Get(web.HeaderStandby), web.HeaderServedBy, r.Header.Get(web.HeaderServedBy), r.body)
	}
	r = getForwarded(t, fmt.Sprintf("%s?min_version=%d&wait=300ms", base, version+1), partitionedToken)
	if r.status != http.StatusGatewayTimeout || !strings.Contains(string(r.body), fmt.Sprintf(`"version":%d`, version)) {
		t.Fatalf("a read above the standby's version: %d %s, want 504 wait_timeout at version %d, never a stale 200", r.status, r.body, version)
	}
	// A newer version reaches the standby's copy through the table, and
	// the wait for it is answered from the copy.
	done := make(chan answer, 1)
	go func() {
		done <- getForwarded(t, fmt.Sprintf("%s?min_version=%d&wait=10s", base, version+1), partitionedToken)
	}()
	if resp := postWithToken(t, owner.url+"/customers/"+id+"/events", `{"type":"customer.renamed","data":{"name":"Standby Reader"}}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST a rename at the owner: %d, want 201", resp.StatusCode)
	}
	r = <-done
	var got processor.Customer
	if r.status != http.StatusOK || json.Unmarshal(r.body, &got) != nil || got.Version != version+1 || r.Header.Get(web.HeaderStandby) != "true" {
		t.Fatalf("a wait at the standby for the next version: %d %s (standby %q), want 200 at version %d", r.status, r.body, r.Header.Get(web.HeaderStandby), version+1)
	}
	want[id] = got
}

package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fixedCluster is a membership read once: the instances the test runs,
// and this instance's copies.
type fixedCluster struct {
	membership *Membership // nil: replica mode
	copies     []PartitionCopy
	mode       string
	// read counts the readings of this instance's figures, each taking
	// delay, as reading Kafka's offsets does.
	read  atomic.Int32
	delay time.Duration
}

func (f *fixedCluster) Instance(context.Context) InstanceStatus {
	f.read.Add(1)
	time.Sleep(f.delay)
	return InstanceStatus{Mode: f.mode, Keys: 7, Copies: f.copies}
}

func (f *fixedCluster) Membership() (Membership, bool) {
	if f.membership == nil {
		return Membership{}, false
	}
	return *f.membership, true
}

// The Router of a partitioned server, which GET /cluster does not use
// beyond its forwarding client.
func (f *fixedCluster) Owner(string) (string, bool) { return "", false }
func (f *fixedCluster) Instances() ([]string, bool) { return f.membership.Members, true }
func (f *fixedCluster) Poke()                       {}
func (f *fixedCluster) Fallbacks(string) []string   { return nil }

// listening builds a server on a bound local address, so that it knows
// its advertised URL.
func listening(t *testing.T, status *fixedCluster, partitioned bool) *Server {
	t.Helper()
	s := newServer(t, newTable(), func(c *Config, d *Deps) {
		c.Addr = "127.0.0.1:0"
		c.ReadTokens = []string{readToken}
		d.Cluster = status
		if partitioned {
			d.Router = status
		}
	})
	if _, err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.listener.Close() })
	return s
}

// member is another instance, answering GET /cluster/instance with h.
func member(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestClusterShowsMembersThatDoNotAnswer asks a membership of five
// instances besides this one: one answers, one refuses connections, one
// never answers, one answers 401 and one sends more than the status bound.
// GET /cluster answers 200 within its ask timeout, each silent member
// shown unreachable with why, and the answering one's lag on its
// partition; the client's token went along.
func TestClusterShowsMembersThatDoNotAnswer(t *testing.T) {
	lag := int64(5)
	var gotToken string
	good := member(t, func(w http.ResponseWriter, r *http.Request) {
		gotToken = r.Header.Get("Authorization")
		writeJSON(w, http.StatusOK, InstanceStatus{URL: "x", Mode: "partitioned", Ready: true, Keys: 3,
			Copies: []PartitionCopy{{Partition: 1, Role: RoleOwner, Lag: &lag}, {Partition: 0, Role: RoleStandby, Lag: &lag}}})
	})
	released := make(chan struct{})
	silent := member(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-released:
		case <-r.Context().Done():
		}
	})
	defer close(released)
	denied := member(t, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusUnauthorized, "unauthorized", "no")
	})
	huge := member(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"url":"` + strings.Repeat("a", maxInstanceStatusBytes+10) + `"}`))
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close()

	status := &fixedCluster{mode: "partitioned", copies: []PartitionCopy{{Partition: 0, Role: RoleOwner, Lag: new(int64)}}}
	s := listening(t, status, true)
	self := s.AdvertisedURL()
	status.membership = &Membership{ReadAt: time.Now(), Members: []string{self, good, silent, denied, huge, refused},
		Owners: []string{self, good, ""}, Standbys: [][]string{{good}, {self}, nil}}

	start := time.Now()
	rec := request{target: "/cluster", header: map[string]string{"Authorization": "Bearer " + readToken}}.do(t, s)
	took := time.Since(start)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /cluster: %d %s", rec.Code, rec.Body)
	}
	if took > ClusterAskTimeout+time.Second {
		t.Errorf("GET /cluster took %s: a member that never answers must cost at most the ask timeout %s", took, ClusterAskTimeout)
	}
	var v ClusterView
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if gotToken != "Bearer "+readToken {
		t.Errorf("the member was asked with Authorization %q, want the client's token", gotToken)
	}
	want := map[string]string{self: "", good: "", silent: "deadline", denied: "401", huge: "failed to read", refused: "refused"}
	if len(v.Instances) != len(want) {
		t.Fatalf("%d instances, want %d: %+v", len(v.Instances), len(want), v.Instances)
	}
	for _, in := range v.Instances {
		why, ok := want[in.URL]
		switch {
		case !ok:
			t.Errorf("unknown instance %s", in.URL)
		case in.Self != (in.URL == self):
			t.Errorf("%s: self = %v", in.URL, in.Self)
		case why == "" && (!in.Reachable || in.Keys == nil):
			t.Errorf("%s: shown unreachable (%s), want its status", in.URL, in.Error)
		case why != "" && (in.Reachable || !strings.Contains(in.Error, why)):
			t.Errorf("%s: reachable %v, error %q; want unreachable with %q", in.URL, in.Reachable, in.Error, why)
		}
	}
	if v.Complete || len(v.Partitions) != 3 {
		t.Fatalf("complete %v with %d partitions, want false (partition 2 has no owner) and 3", v.Complete, len(v.Partitions))
	}
	p0, p1 := v.Partitions[0], v.Partitions[1]
	if p0.Owner != self || p0.OwnerLag == nil || *p0.OwnerLag != 0 || len(p0.Standbys) != 1 || p0.Standbys[0].Lag == nil || *p0.Standbys[0].Lag != lag {
		t.Errorf("partition 0: %+v, want owned here with lag 0, standing by at %s with lag %d", p0, good, lag)
	}
	if p1.Owner != good || p1.OwnerLag == nil || *p1.OwnerLag != lag || len(p1.Standbys) != 1 || p1.Standbys[0].Lag != nil {
		t.Errorf("partition 1: %+v, want owned by %s with lag %d, its standby here without a standby copy's lag", p1, good, lag)
	}
}

// TestClusterOfAReplica answers the replica alone, with every partition
// its view serves, and asks nobody.
func TestClusterOfAReplica(t *testing.T) {
	lag := int64(2)
	status := &fixedCluster{mode: "replica", copies: []PartitionCopy{{Partition: 0, Role: RoleReplica, Lag: &lag}, {Partition: 1, Role: RoleReplica}}}
	s := listening(t, status, false)
	for _, target := range []string{"/cluster", "/cluster/instance"} {
		rec := request{target: target}.do(t, s)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d, want 401", target, rec.Code)
		}
	}
	rec := request{target: "/cluster", header: map[string]string{"Authorization": "Bearer " + readToken}}.do(t, s)
	var v ClusterView
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &v) != nil {
		t.Fatalf("GET /cluster: %d %s", rec.Code, rec.Body)
	}
	if v.Mode != "replica" || len(v.Instances) != 1 || !v.Instances[0].Self || !v.Instances[0].Reachable || len(v.Partitions) != 2 {
		t.Fatalf("GET /cluster of a replica: %s", rec.Body)
	}
	if p := v.Partitions[0]; p.Owner != s.AdvertisedURL() || p.OwnerLag == nil || *p.OwnerLag != lag {
		t.Errorf("partition 0: %+v, want served here with lag %d", p, lag)
	}
	if v.Partitions[1].OwnerLag != nil || v.ReadAt != nil {
		t.Errorf("an unknown lag or a membership read shown: %s", rec.Body)
	}
}

// TestClusterRequestsShareOneRound sends 20 GET /cluster at once while
// the other instance takes 300 ms to answer: they share one round of
// asking, so the other instance is asked once or twice, not 20 times.
// So do 20 GET /cluster/instance while reading the instance's own figures
// takes 300 ms: they are read once or twice.
func TestClusterRequestsShareOneRound(t *testing.T) {
	var asked atomic.Int32
	other := member(t, func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		time.Sleep(300 * time.Millisecond)
		writeJSON(w, http.StatusOK, InstanceStatus{Mode: "partitioned", Copies: []PartitionCopy{}})
	})
	status := &fixedCluster{mode: "partitioned"}
	s := listening(t, status, true)
	status.membership = &Membership{Members: []string{s.AdvertisedURL(), other}, Owners: []string{other}, Standbys: [][]string{nil}}
	const clients = 20
	at := func(target string) {
		var wg sync.WaitGroup
		codes := make([]int, clients)
		for i := range clients {
			wg.Go(func() {
				codes[i] = request{target: target, header: map[string]string{"Authorization": "Bearer " + readToken}}.do(t, s).Code
			})
		}
		wg.Wait()
		for i, code := range codes {
			if code != http.StatusOK {
				t.Fatalf("GET %s %d: %d", target, i, code)
			}
		}
	}
	at("/cluster")
	if n := asked.Load(); n > 2 {
		t.Errorf("%d concurrent GET /cluster asked the other instance %d times, want one round shared (at most 2)", clients, n)
	}
	t.Logf("%d concurrent GET /cluster asked the other instance %d times", clients, asked.Load())
	status.read.Store(0)
	status.delay = 300 * time.Millisecond
	at("/cluster/instance")
	if n := status.read.Load(); n > 2 {
		t.Errorf("%d concurrent GET /cluster/instance read this instance's figures %d times, want one reading shared (at most 2)", clients, n)
	}
	t.Logf("%d concurrent GET /cluster/instance read this instance's figures %d times", clients, status.read.Load())
}

// TestClusterRoundsIgnoreTheHeaderWithoutTokens: with no read tokens set,
// concurrent GET /cluster with a different Authorization header each
// share one round. Keyed by the header, a client changing it with each
// request asked every instance once per request.
func TestClusterRoundsIgnoreTheHeaderWithoutTokens(t *testing.T) {
	var asked atomic.Int32
	other := member(t, func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		time.Sleep(300 * time.Millisecond)
		writeJSON(w, http.StatusOK, InstanceStatus{Mode: "partitioned", Copies: []PartitionCopy{}})
	})
	status := &fixedCluster{mode: "partitioned"}
	s := newServer(t, newTable(), func(c *Config, d *Deps) {
		c.Addr = "127.0.0.1:0"
		d.Cluster, d.Router = status, status
	})
	if _, err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.listener.Close() })
	status.membership = &Membership{Members: []string{s.AdvertisedURL(), other}, Owners: []string{other}, Standbys: [][]string{nil}}
	const clients = 20
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			if code := (request{target: "/cluster", header: map[string]string{"Authorization": fmt.Sprintf("Bearer made-up-%d", i)}}).do(t, s).Code; code != http.StatusOK {
				t.Errorf("GET /cluster %d: %d", i, code)
			}
		})
	}
	wg.Wait()
	if n := asked.Load(); n > 2 {
		t.Errorf("%d concurrent GET /cluster with made-up headers asked the other instance %d times, want one round shared (at most 2)", clients, n)
	}
}

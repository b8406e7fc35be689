package e2e

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/service"
	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/web"
)

// partitionedToken reads and writes on every instance: a forwarded
// request is authorized again by its owner, so it must carry the token.
const partitionedToken = "partitioned-token-0123456789"

// instance is one partitioned instance of the service, in process.
type instance struct {
	svc    *service.Service
	url    string
	client *testkit.Client
	stop   func()
}

// owns reports whether the instance holds id's partition now.
func (in *instance) owns(id string, partitions int32) bool {
	return slices.Contains(in.svc.View.Owned(), processor.PartitionFor(id, partitions))
}

// startInstance runs the service as serve --serve-mode partitioned
// assembles it, with the read and write token set.
func startInstance(t *testing.T, broker string, topics kafka.Topics) *instance {
	t.Helper()
	return startStandbyInstance(t, broker, topics, 0)
}

// startStandbyInstance is startInstance with --standby-replicas.
func startStandbyInstance(t *testing.T, broker string, topics kafka.Topics, standbys int) *instance {
	t.Helper()
	return startInstanceSpec(t, broker, topics, instanceSpec{standbys: standbys})
}

// instanceSpec is how startInstanceSpec starts an instance; the zero
// value is startInstance's.
type instanceSpec struct {
	standbys int
	// dataDir and addr, when set, let a restart keep the instance's data
	// and advertised URL; empty are a temp dir and a free port.
	dataDir, addr string
	membership    kafka.Membership
}

// startInstanceSpec is startInstance as spec says.
func startInstanceSpec(t *testing.T, broker string, topics kafka.Topics, spec instanceSpec) *instance {
	t.Helper()
	svc, stop := runService(t, instanceConfig(t, broker, topics, spec))
	client := testkit.NewClient(svc.Server.AdvertisedURL())
	client.HTTP.Transport = tokenTransport{token: partitionedToken}
	return &instance{svc: svc, url: svc.Server.AdvertisedURL(), client: client, stop: stop}
}

// instanceConfig is the service configuration of a partitioned instance.
func instanceConfig(t *testing.T, broker string, topics kafka.Topics, spec instanceSpec) service.Config {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	kc := kafka.DefaultConfig()
	kc.Brokers = []string{broker}
	cfg := web.DefaultConfig()
	cfg.Addr = cmp.Or(spec.addr, "127.0.0.1:0")
	cfg.ReadTokens, cfg.WriteTokens = []string{partitionedToken}, []string{partitionedToken}
	if spec.dataDir == "" {
		spec.dataDir = t.TempDir()
	}
	return service.Config{Kafka: kc, Topics: topics, DataDir: spec.dataDir, Web: cfg, Logger: log,
		RestartBackoff: 200 * time.Millisecond, ServeMode: service.ModePartitioned, MembershipRefresh: 200 * time.Millisecond,
		StandbyReplicas: spec.standbys, Membership: spec.membership}
}

// ownerOf returns the instance that owns id and one that does not.
func ownerOf(live []*instance, id string, partitions int32) (owner, stranger *instance) {
	for _, in := range live {
		if in.owns(id, partitions) {
			owner = in
		} else {
			stranger = in
		}
	}
	return owner, stranger
}

// tokenTransport adds a bearer token to every request.
type tokenTransport struct{ token string }

func (tt tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tt.token)
	return http.DefaultTransport.RoundTrip(r)
}

// awaitSplit waits until the live instances own every partition between
// them, each a share, and each instance's membership picture agrees.
func awaitSplit(t *testing.T, live []*instance, partitions int32, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var owned []int32
		agree := true
		for _, in := range live {
			mine := in.svc.View.Owned()
			if len(mine) == 0 || !in.svc.Processor.Ready() {
				agree = false
			}
			owned = append(owned, mine...)
			if got := in.svc.Members.Partitions()[in.url]; !slices.Equal(got, mine) {
				agree = false
			}
			urls, complete := in.svc.Members.Instances()
			if !complete || len(urls) != len(live) {
				agree = false
			}
		}
		slices.Sort(owned)
		if agree && len(owned) == int(partitions) && len(slices.Compact(owned)) == int(partitions) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %d instances did not split the %d partitions within %s (owned %v)", len(live), partitions, timeout, owned)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPartitionedInstancesRouteEveryRead runs three partitioned instances
// of the real assembly on one kfake cluster of 12 partitions. Each holds
// about a third of the table; every instance answers every customer equal
// to the reference fold, named as served by the owner; the list merges
// the owners' pages; a write through a non-owner waits for its decision
// at the owner; after one instance stops, reads recover on the others.
func TestPartitionedInstancesRouteEveryRead(t *testing.T) {
	t.Parallel()
	const partitions = 12
	broker, topics, live := startSplit(t, partitions, 3, 0)

	lines := testkit.Generate(16, 300, 1500)
	produceRecords(t, broker, topics.Events, 30*time.Second, lineRecords(lines))
	want := testkit.ReferenceFold(t, lines)
	for _, in := range live {
		in.client.AwaitFold(t, want, 60*time.Second)
	}

	t.Run("each instance holds about a third", func(t *testing.T) {
		var total int64
		for _, in := range live {
			keys := in.svc.View.Keys()
			total += keys
			if share := float64(keys) / float64(len(want)); share < 0.15 || share > 0.55 {
				t.Errorf("%s holds %d of %d keys (%.0f%%); want about a third", in.url, keys, len(want), 100*share)
			}
		}
		if total != int64(len(want)) {
			t.Errorf("the instances hold %d keys in all, want %d: each key exactly once", total, len(want))
		}
	})

	t.Run("every instance answers every key, served by its owner", func(t *testing.T) {
		forwarded := 0
		for id, w := range want {
			owner, _ := ownerOf(live, id, partitions)
			for _, in := range live {
				resp := getWithToken(t, in.url+"/customers/"+id, partitionedToken)
				if got := resp.Header.Get(web.HeaderServedBy); got != owner.url {
					t.Fatalf("GET %s through %s: %s = %q, want the owner %s", id, in.url, web.HeaderServedBy, got, owner.url)
				}
				if in != owner {
					forwarded++
				}
				if !w.Registered() {
					if resp.status != http.StatusNotFound {
						t.Fatalf("GET %s through %s: %d, want 404", id, in.url, resp.status)
					}
					continue
				}
				var got processor.Customer
				if resp.status != http.StatusOK || json.Unmarshal(resp.body, &got) != nil {
					t.Fatalf("GET %s through %s: %d %s", id, in.url, resp.status, resp.body)
				}
				if d := testkit.Diff(w, got); d != "" {
					t.Fatalf("GET %s through %s differs from the reference fold: %s", id, in.url, d)
				}
			}
		}
		// Every non-owner forwarded: the owners authorized each with the
		// token it carried (they answer 401 without one).
		var counted float64
		for _, in := range live {
			counted += counterValue(t, in.svc.Registry, "eventfold_http_forwarded_total", "outcome", "forwarded")
		}
		if counted < float64(forwarded) {
			t.Errorf("eventfold_http_forwarded_total{outcome=forwarded} = %v in all, want at least %d", counted, forwarded)
		}
	})

	t.Run("waits, history, decisions and max_lag through every instance", func(t *testing.T) {
		for _, id := range testkit.Registered(want)[:10] {
			owner, _ := ownerOf(live, id, partitions)
			version := want[id].Version
			for _, in := range live {
				for _, query := range []string{
					fmt.Sprintf("/customers/%s?min_version=%d&wait=5s", id, version),
					fmt.Sprintf("/customers/%s?max_lag=0", id),
					fmt.Sprintf("/customers/%s?version=1", id),
					"/customers/" + id + "/events",
					"/customers/" + id + "/decisions",
				} {
					resp := getWithToken(t, in.url+query, partitionedToken)
					if resp.status != http.StatusOK || resp.Header.Get(web.HeaderServedBy) != owner.url {
						t.Fatalf("GET %s through %s: %d served by %q, want 200 by %s: %s",
							query, in.url, resp.status, resp.Header.Get(web.HeaderServedBy), owner.url, resp.body)
					}
				}
			}
		}
	})

	t.Run("a watch stream through a non-owner comes from the owner", func(t *testing.T) {
		id := testkit.Registered(want)[1]
		owner, stranger := ownerOf(live, id, partitions)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, stranger.url+"/customers/"+id+"/watch", nil)
		req.Header.Set("Authorization", "Bearer "+partitionedToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get(web.HeaderServedBy) != owner.url {
			t.Fatalf("watch through a non-owner: %d served by %q, want 200 by %s", resp.StatusCode, resp.Header.Get(web.HeaderServedBy), owner.url)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || line != "event: state\n" {
			t.Fatalf("first line of the stream %q (%v), want the state event", line, err)
		}
	})

	t.Run("forwarded requests: the owner checks the token, a non-owner never forwards again", func(t *testing.T) {
		id := testkit.Registered(want)[0]
		owner, stranger := ownerOf(live, id, partitions)
		// The forwarded reads above were answered 200 by owners that
		// refuse a forwarded request without the token: so they carried it.
		if r := getForwarded(t, owner.url+"/customers/"+id, ""); r.status != http.StatusUnauthorized {
			t.Errorf("a forwarded request without a token at the owner: %d, want 401", r.status)
		}
		r := getForwarded(t, stranger.url+"/customers/"+id, partitionedToken)
		if r.status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "forward_loop") {
			t.Errorf("a forwarded request at a non-owner: %d %s (Retry-After %q), want 503 forward_loop with Retry-After",
				r.status, r.body, r.Header.Get("Retry-After"))
		}
	})

	t.Run("the list merges every owner's page", func(t *testing.T) {
		for _, in := range live {
			var ids []string
			after := ""
			for pages := 0; ; pages++ {
				if pages > 1000 {
					t.Fatal("the list does not end")
				}
				page := listThrough(t, in, after, 7)
				for _, c := range page.Customers {
					ids = append(ids, c.ID)
				}
				if page.Next == "" {
					break
				}
				after = page.Next
			}
			if wantIDs := testkit.Registered(want); !slices.Equal(ids, wantIDs) {
				t.Fatalf("the list through %s has %d ids, want the %d registered in order", in.url, len(ids), len(wantIDs))
			}
		}
	})

	t.Run("a write through a non-owner waits for the owner's decision", func(t *testing.T) {
		id := "partitioned-new-1"
		owner, stranger := ownerOf(live, id, partitions)
		resp := postWithToken(t, stranger.url+"/customers/"+id+"/events", `{"type":"customer.registered","data":{"name":"Pat","email":"pat@example.com"}}`)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST through a non-owner: %d, want the decision (201)", resp.StatusCode)
		}
		if got := resp.Header.Get(web.HeaderServedBy); got != owner.url {
			t.Errorf("POST: %s = %q, want the owner %s", web.HeaderServedBy, got, owner.url)
		}
	})

	t.Run("reads with min_version recover after an instance stops, never stale", func(t *testing.T) {
		victim, rest := live[0], live[1:]
		sample := testkit.Registered(want)
		stopped := time.Now()
		stopDone := make(chan time.Duration, 1)
		go func() { victim.stop(); stopDone <- time.Since(stopped) }()
		failed, reads := 0, 0
		var recovered time.Duration
		for deadline := stopped.Add(90 * time.Second); ; {
			ok := true
			for i, id := range sample {
				// With min_version: no copy may answer an older state,
				// whatever moves.
				resp := getWithToken(t, fmt.Sprintf("%s/customers/%s?min_version=%d&wait=1s", rest[i%2].url, id, want[id].Version), partitionedToken)
				reads++
				var got processor.Customer
				if resp.status == http.StatusOK && (json.Unmarshal(resp.body, &got) != nil || got.Version != want[id].Version) {
					t.Fatalf("GET %s during the rebalance: version %d, want %d", id, got.Version, want[id].Version)
				}
				if resp.status != http.StatusOK {
					failed++
					ok = false
					if resp.status != http.StatusServiceUnavailable {
						t.Fatalf("GET %s during the rebalance: %d %s, want 200 or 503", id, resp.status, resp.body)
					}
					if resp.Header.Get("Retry-After") == "" {
						t.Fatalf("GET %s: 503 without Retry-After", id)
					}
				}
			}
			if ok {
				recovered = time.Since(stopped)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("reads did not recover within 90s: %d of %d failed", failed, reads)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("after a clean stop of 1 of 3 instances (its shutdown took %s): %d of %d reads failed (503), every key answered again after %s",
			(<-stopDone).Round(time.Millisecond), failed, reads, recovered.Round(time.Millisecond))
		for _, in := range rest {
			in.client.AwaitFold(t, want, 30*time.Second)
		}
	})
}

// answer is a response read whole.
type answer struct {
	status int
	http.Header
	body []byte
}

// postWithToken POSTs an event with the token; the body is closed.
func postWithToken(t *testing.T, url, event string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(event))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+partitionedToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func getWithToken(t *testing.T, url, token string) answer {
	t.Helper()
	return getMarked(t, url, token, false)
}

// getForwarded is a GET marked as another instance's forward.
func getForwarded(t *testing.T, url, token string) answer {
	t.Helper()
	return getMarked(t, url, token, true)
}

func getMarked(t *testing.T, url, token string, forwarded bool) answer {
	t.Helper()
	req := testkit.Request(t, http.MethodGet, url)
	if forwarded {
		req.Header.Set(web.HeaderForwarded, "http://127.0.0.1:1")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, body := testkit.Do(t, http.DefaultClient, req)
	return answer{status: resp.StatusCode, Header: resp.Header, body: body}
}

func listThrough(t *testing.T, in *instance, after string, limit int) customerPage {
	t.Helper()
	resp := getWithToken(t, fmt.Sprintf("%s/customers?limit=%d&after=%s", in.url, limit, after), partitionedToken)
	var page customerPage
	if resp.status != http.StatusOK || json.Unmarshal(resp.body, &page) != nil {
		t.Fatalf("GET /customers through %s: %d %s", in.url, resp.status, resp.body)
	}
	return page
}

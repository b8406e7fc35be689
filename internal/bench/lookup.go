package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"slices"
	"sync/atomic"
	"time"
)

// LookupResult is the lookup scenario: GET /customers/{id} against a
// fixed body served by the same http.Server to the same clients.
type LookupResult struct {
	Clients         int     `json:"clients"`
	DurationSeconds float64 `json:"duration_seconds"`
	BodyBytes       int     `json:"body_bytes"`
	Service         Latency `json:"service"`
	Baseline        Latency `json:"fixed_baseline"`
	// Ratio is the service's requests/s over the baseline's.
	Ratio float64 `json:"ratio_vs_baseline"`
	Usage Usage   `json:"usage"`
}

// fixedPath is the bench's baseline route, mounted beside the API.
const fixedPath = "/bench/fixed"

// fixedRoute answers every request with the same JSON body, with the
// headers a lookup answers with: what net/http and the client cost
// alone. The body is sized once the service can be asked.
type fixedRoute struct{ body atomic.Pointer[[]byte] }

func (f *fixedRoute) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	body := f.body.Load()
	if body == nil {
		http.Error(w, "not sized yet", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", `"7"`)
	_, _ = w.Write(*body) // a client that went away is not the bench's concern
}

// fixedBody returns a JSON body of n bytes.
func fixedBody(n int) []byte {
	const head, tail = `{"id":"fixed","padding":"`, `"}`
	pad := max(0, n-len(head)-len(tail)-1)
	return append(append(append([]byte(head), bytes.Repeat([]byte("x"), pad)...), tail...), '\n')
}

// newHTTPClient keeps a connection per worker alive, as a load balancer
// or a pooled client would.
func newHTTPClient(workers int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 2 * workers, MaxIdleConnsPerHost: 2 * workers, IdleConnTimeout: time.Minute, DisableCompression: true,
	}}
}

// get does one GET and returns its status as the outcome.
func get(ctx context.Context, client *http.Client, url string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return outcomeError
	}
	resp, err := client.Do(req)
	if err != nil {
		return outcomeError
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return outcomeError
	}
	return statusOutcome(resp.StatusCode)
}

// medianBodySize reads a few customers to size the fixed body like them.
func medianBodySize(ctx context.Context, client *http.Client, base string, ids []string) (int, error) {
	var sizes []int
	for i := range min(len(ids), 25) {
		id := ids[(i*7919)%len(ids)]
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/customers/"+id, nil)
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, fmt.Errorf("failed to read customer %s: %w", id, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("failed to read customer %s: status %d: %s", id, resp.StatusCode, body)
		}
		sizes = append(sizes, len(body))
	}
	slices.Sort(sizes)
	return sizes[len(sizes)/2], nil
}

// runLookup loads GET /customers/{id} over random registered ids and the
// fixed route, in turns.
func runLookup(ctx context.Context, svc *service, fixed *fixedRoute, ids []string, clients int, d time.Duration, seed int64) (*LookupResult, error) {
	client := newHTTPClient(clients)
	defer client.CloseIdleConnections()
	size, err := medianBodySize(ctx, client, svc.base, ids)
	if err != nil {
		return nil, err
	}
	body := fixedBody(size)
	fixed.body.Store(&body)
	baseline := func(ctx context.Context, _ int, _ *rand.Rand) string {
		return get(ctx, client, svc.base+fixedPath)
	}
	service := func(ctx context.Context, _ int, rng *rand.Rand) string {
		return get(ctx, client, svc.base+"/customers/"+ids[rng.Intn(len(ids))])
	}
	b, s := alternate(ctx, clients, d, seed, baseline, service)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("failed to finish the lookup load: %w", err)
	}
	r := &LookupResult{Clients: clients, DurationSeconds: d.Seconds(), BodyBytes: len(body),
		Service: s.summary("200"), Baseline: b.summary("200")}
	r.Ratio = r.Service.PerSec / r.Baseline.PerSec
	return r, nil
}

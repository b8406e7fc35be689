package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// BenchmarkLookupHandler measures GET /customers/{id} through the server's
// handler (routing, metrics, view read, JSON), without the network, on a
// view of 1,000 customers folded on kfake.
func BenchmarkLookupHandler(b *testing.B) {
	p := startPipeline(b)
	ids := testkit.Registered(p.produceAndAwaitFold(b, testkit.Generate(5, 1000, 4000), 60*time.Second))
	reqs := make([]*http.Request, len(ids))
	for i, id := range ids {
		reqs[i] = httptest.NewRequest(http.MethodGet, "/customers/"+id, nil)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		rec := httptest.NewRecorder()
		p.handler.ServeHTTP(rec, reqs[i%len(reqs)])
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkLookupHTTP is the same lookup over loopback HTTP with one
// client: what a caller sees.
func BenchmarkLookupHTTP(b *testing.B) {
	p := startPipeline(b)
	ids := testkit.Registered(p.produceAndAwaitFold(b, testkit.Generate(6, 200, 800), 60*time.Second))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		status, _ := p.client.Get(b, fmt.Sprintf("%s/customers/%s", p.client.Base, ids[i%len(ids)]))
		if status != http.StatusOK {
			b.Fatalf("status %d", status)
		}
	}
}

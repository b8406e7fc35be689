package service

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eventfold/eventfold/internal/embedded"
)

// TestMaxLagReadsShareTheBrokersOffsets: every ?max_lag= check read the
// partition's end offset from Kafka (and, partitioned, the group's
// commits): 200 concurrent reads cost the broker 200 ListOffsets
// requests, so a client multiplied the broker's load by its own request
// rate. With the offsets cache they share a read per partition and TTL.
func TestMaxLagReadsShareTheBrokersOffsets(t *testing.T) {
	for _, mode := range []string{ModeReplica, ModePartitioned} {
		t.Run(mode, func(t *testing.T) {
			broker, err := embedded.Start(embedded.Config{Addr: "127.0.0.1:0", Partitions: 3})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(broker.Close)
			var listOffsets, offsetFetches atomic.Int64
			broker.Cluster().ControlKey(kmsg.ListOffsets.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
				listOffsets.Add(1)
				return nil, nil, false // counted, then answered as usual
			})
			broker.Cluster().ControlKey(kmsg.OffsetFetch.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
				offsetFetches.Add(1)
				return nil, nil, false
			})
			cfg := testConfig(t)
			cfg.Kafka.Brokers = []string{broker.Addr()}
			cfg.ServeMode = mode
			cfg.MembershipRefresh = 100 * time.Millisecond
			svc, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- svc.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })

			// A customer, so that its partition has an end to be behind:
			// an empty partition skips the reads.
			register := func() int {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodPost, "/customers/c-1/events",
					strings.NewReader(`{"type":"customer.registered","data":{"name":"W","email":"w@example.com"}}`))
				req.Header.Set("Content-Type", "application/json")
				svc.Server.Handler().ServeHTTP(rec, req)
				return rec.Code
			}
			const target = "/customers/c-1?max_lag=1000000"
			get := func() int {
				rec := httptest.NewRecorder()
				svc.Server.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
				return rec.Code
			}
			// Ready, and the customer's partition owned here: the write
			// is decided, and the read gets past the lag check.
			deadline := time.Now().Add(30 * time.Second)
			for register() != http.StatusCreated || get() != http.StatusOK {
				if time.Now().After(deadline) {
					t.Fatalf("the customer was never registered and read at %s", target)
				}
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(lagOffsetsTTL) // what the last read cached is gone

			const reads = 200
			lists, fetches := listOffsets.Load(), offsetFetches.Load()
			start := time.Now()
			var wg sync.WaitGroup
			var wrong atomic.Int64
			for range reads {
				wg.Go(func() {
					if code := get(); code != http.StatusOK {
						wrong.Add(1)
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			lists, fetches = listOffsets.Load()-lists, offsetFetches.Load()-fetches
			t.Logf("%d concurrent ?max_lag reads in %s: %d ListOffsets and %d OffsetFetch requests", reads, elapsed.Round(time.Millisecond), lists, fetches)
			if n := wrong.Load(); n != 0 {
				t.Errorf("%d of %d reads did not pass the lag check to their 200", n, reads)
			}
			// One read per TTL while the burst lasts, and a few for the
			// service's own readers (the processor, the membership).
			bound := int64(elapsed/lagOffsetsTTL) + 1 + 4
			if lists+fetches > bound {
				t.Errorf("%d reads cost %d broker offset requests, want at most %d: a request per read", reads, lists+fetches, bound)
			}
		})
	}
}

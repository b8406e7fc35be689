package web

import (
	"net/http"
	"testing"
)

// TestMaxLagRefusesAStaleCopy: a read with ?max_lag=N is answered only
// when the copy that serves it is at most N records behind; otherwise 503
// too_stale with Retry-After, so that the client retries instead of
// reading an older state than it accepts.
func TestMaxLagRefusesAStaleCopy(t *testing.T) {
	tb := newTable()
	s := newServer(t, tb, func(_ *Config, d *Deps) { d.Lag = tb })
	seed(t, s)
	tb.held = true
	for range 2 {
		if rec := post("c-1", rename).do(t, s); rec.Code != http.StatusAccepted {
			t.Fatalf("held write: %d, want 202", rec.Code)
		}
	}
	tests := []struct {
		name, target string
		status       int
		code         string
	}{
		{"no bound", "/customers/c-1", http.StatusOK, ""},
		{"within the bound", "/customers/c-1?max_lag=2", http.StatusOK, ""},
		{"beyond the bound", "/customers/c-1?max_lag=1", http.StatusServiceUnavailable, "too_stale"},
		{"beyond the bound, with min_version", "/customers/c-1?max_lag=0&min_version=1", http.StatusServiceUnavailable, "too_stale"},
		{"decisions beyond the bound", "/customers/c-1/decisions?max_lag=0", http.StatusServiceUnavailable, "too_stale"},
		{"time travel beyond the bound", "/customers/c-1?version=1&max_lag=0", http.StatusServiceUnavailable, "too_stale"},
		{"not a number", "/customers/c-1?max_lag=soon", http.StatusBadRequest, "invalid_parameter"},
		{"negative", "/customers/c-1?max_lag=-1", http.StatusBadRequest, "invalid_parameter"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			rec := request{target: test.target}.do(t, s)
			if test.code == "" {
				if rec.Code != test.status {
					t.Fatalf("status %d, want %d: %s", rec.Code, test.status, rec.Body)
				}
				return
			}
			checkError(t, rec, test.status, test.code)
			if test.status == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
}

package soak

import (
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
)

// maxKeptErrors bounds the errors a report lists; all are counted.
const maxKeptErrors = 20

// tally counts what the load did. Every client goroutine adds to it.
type tally struct {
	produced  atomic.Int64
	malformed atomic.Int64
	requests  atomic.Int64

	watchConnections atomic.Int64
	watchEvents      atomic.Int64
	watchDisorder    atomic.Int64

	mu       sync.Mutex
	statuses map[string]int64 // "GET /customers/{id} 200"
	errors   []string
	nErrors  int64
}

func newTally() *tally { return &tally{statuses: map[string]int64{}} }

// answered counts one HTTP answer.
func (t *tally) answered(route string, status int) {
	t.requests.Add(1)
	t.mu.Lock()
	t.statuses[fmt.Sprintf("%s %d", route, status)]++
	t.mu.Unlock()
}

// failed records something the service must never do under this load: a
// 5xx, a transport error, an answer the request cannot get.
func (t *tally) failed(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.nErrors++
	if len(t.errors) < maxKeptErrors {
		t.errors = append(t.errors, fmt.Sprintf(format, args...))
	}
}

func (t *tally) snapshot() (map[string]int64, []string, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.statuses), append([]string(nil), t.errors...), t.nErrors
}

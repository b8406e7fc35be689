package crash

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// WritersConfig configures the HTTP writers of a campaign.
type WritersConfig struct {
	// Writers is the number of concurrent writers.
	Writers int
	// Customers are the ids to write to; a writer skips one that is not
	// registered yet.
	Customers []string
	// Pick returns the base URL of a live instance, e.g.
	// http://127.0.0.1:8080, or "" when none is up.
	Pick func(*rand.Rand) string
	// Seed seeds the writers' choices.
	Seed int64
	// RetryFor bounds how long an uncertain write is retried with its
	// event id: it must outlast a broker restart.
	RetryFor time.Duration
}

// Writers rename random customers over HTTP with If-Match, each write with
// its own event id. An uncertain answer (a transport error, 202, 503) is
// retried with the same id on a random live instance until the service
// gives a final one: 201, 200 (the recorded decision) or 409.
type Writers struct {
	cfg      WritersConfig
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	hc       *http.Client

	mu     sync.Mutex
	report WritersReport
}

// WritersReport is what the writers did and were answered.
type WritersReport struct {
	// Acks are the writes acknowledged as accepted.
	Acks []Ack
	// Writes is the number of distinct writes (event ids) sent.
	Writes int
	// Attempts counts the requests, retries included.
	Attempts int
	// Created, Decided and Conflicts count the final answers 201, 200 and
	// 409; Retried the writes that needed more than one attempt.
	Created, Decided, Conflicts, Retried int
	// Unresolved writes got no final answer within RetryFor. The audit
	// still requires that none was applied twice.
	Unresolved []string
	// Answers counts every answer by status and error code ("503
	// kafka_unavailable", "error" for a transport error).
	Answers map[string]int
	// Unexpected describes answers the campaign cannot explain, such as a
	// 422 for a rename of a registered customer.
	Unexpected []string
}

// StartWriters starts the writers; Stop ends them.
func StartWriters(cfg WritersConfig) *Writers {
	w := &Writers{cfg: cfg, stop: make(chan struct{}), hc: &http.Client{Timeout: 15 * time.Second},
		report: WritersReport{Answers: map[string]int{}}}
	for i := range cfg.Writers {
		w.wg.Go(func() { w.run(i) })
	}
	return w
}

// Stop lets every writer resolve the write it is in the middle of, then
// returns what they did. It may be called again.
func (w *Writers) Stop() WritersReport {
	w.stopOnce.Do(func() { close(w.stop) })
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.report
	sort.Strings(r.Unresolved)
	return r
}

func (w *Writers) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

func (w *Writers) run(writer int) {
	rng := rand.New(rand.NewSource(w.cfg.Seed + int64(writer)))
	for n := 0; !w.stopped(); {
		base := w.cfg.Pick(rng)
		if base == "" {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		customer := w.cfg.Customers[rng.Intn(len(w.cfg.Customers))]
		version, ok := w.version(base, customer)
		if !ok {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		w.write(rng, customer, fmt.Sprintf("crash-w%d-%d", writer, n), version)
		n++
	}
}

// version reads a customer's current version; false if it is not
// registered yet or the instance did not answer.
func (w *Writers) version(base, customer string) (int64, bool) {
	resp, err := w.hc.Get(base + "/customers/" + customer)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var c struct {
		Version int64 `json:"version"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&c) != nil {
		return 0, false
	}
	return c.Version, true
}

// answer is one response to a write.
type answer struct {
	status int
	code   string // the error code of an error body
	etag   int64
	body   []byte
	err    error
}

func (a answer) key() string {
	switch {
	case a.err != nil:
		return "error"
	case a.code != "":
		return strconv.Itoa(a.status) + " " + a.code
	}
	return strconv.Itoa(a.status)
}

// write sends one rename until it gets a final answer, always with the
// same event id and If-Match.
func (w *Writers) write(rng *rand.Rand, customer, eventID string, version int64) {
	body, _ := json.Marshal(map[string]any{ // strings and maps always encode
		"id": eventID, "type": "customer.renamed", "data": map[string]string{"name": "Writer " + eventID},
	})
	deadline := time.Now().Add(w.cfg.RetryFor)
	w.count(func(r *WritersReport) { r.Writes++ })
	for attempt := 1; ; attempt++ {
		base := w.cfg.Pick(rng)
		var a answer
		if base == "" {
			a.err = fmt.Errorf("no instance up")
		} else {
			a = w.post(base, customer, version, body)
		}
		w.count(func(r *WritersReport) {
			r.Attempts++
			if base != "" {
				r.Answers[a.key()]++
			}
		})
		if w.final(customer, eventID, version, attempt, a) {
			return
		}
		if time.Now().After(deadline) {
			w.count(func(r *WritersReport) {
				r.Unresolved = append(r.Unresolved, fmt.Sprintf("%s (%s, last answer %s)", eventID, customer, a.key()))
			})
			return
		}
		time.Sleep(time.Duration(100+rng.Intn(400)) * time.Millisecond)
	}
}

func (w *Writers) post(base, customer string, version int64, body []byte) answer {
	req, err := http.NewRequest(http.MethodPost, base+"/customers/"+customer+"/events", bytes.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("If-Match", strconv.Quote(strconv.FormatInt(version, 10)))
	resp, err := w.hc.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode}
	if a.body, err = io.ReadAll(resp.Body); err != nil {
		return answer{err: err}
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(a.body, &e) // an unparsable error body leaves code empty
		a.code = e.Error
	}
	if tag := resp.Header.Get("ETag"); tag != "" {
		a.etag, _ = strconv.ParseInt(strings.Trim(tag, `"`), 10, 64)
	}
	return a
}

// final records a final answer and reports whether a was one.
func (w *Writers) final(customer, eventID string, version int64, attempt int, a answer) bool {
	var (
		ack        *Ack
		unexpected string
	)
	switch {
	case a.err != nil:
		return false
	case a.status == http.StatusCreated:
		var state struct {
			Version int64 `json:"version"`
		}
		if err := json.Unmarshal(a.body, &state); err != nil || a.etag != version+1 || state.Version < a.etag {
			unexpected = fmt.Sprintf("%s: 201 with ETag %d and body version %d after If-Match %d", eventID, a.etag, state.Version, version)
		}
		ack = &Ack{EventID: eventID, Customer: customer, Version: a.etag, Status: a.status}
	case a.status == http.StatusOK:
		var d struct {
			Outcome string `json:"outcome"`
			Reason  string `json:"reason"`
			Version int64  `json:"version"`
		}
		if err := json.Unmarshal(a.body, &d); err != nil {
			unexpected = fmt.Sprintf("%s: 200 with body %q", eventID, a.body)
		}
		switch {
		case d.Outcome == "accepted":
			ack = &Ack{EventID: eventID, Customer: customer, Version: d.Version, Status: a.status}
		case d.Reason != "version_conflict":
			unexpected = fmt.Sprintf("%s: 200 with decision %s", eventID, a.body)
		}
	case a.status == http.StatusConflict:
	case a.status == http.StatusAccepted, a.status == http.StatusServiceUnavailable, a.status == http.StatusGatewayTimeout:
		return false
	default:
		unexpected = fmt.Sprintf("%s: %d %s", eventID, a.status, bytes.TrimSpace(a.body))
	}
	w.count(func(r *WritersReport) {
		switch a.status {
		case http.StatusCreated:
			r.Created++
		case http.StatusOK:
			r.Decided++
		case http.StatusConflict:
			r.Conflicts++
		}
		if attempt > 1 {
			r.Retried++
		}
		if ack != nil {
			r.Acks = append(r.Acks, *ack)
		}
		if unexpected != "" {
			r.Unexpected = append(r.Unexpected, unexpected)
		}
	})
	return true
}

func (w *Writers) count(f func(*WritersReport)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(&w.report)
}

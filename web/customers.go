package web

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/views"
)

// customerPage is the body of GET /customers.
type customerPage struct {
	Customers []*processor.Customer `json:"customers"`
	// Next is the id to pass as ?after= for the next page, empty on the
	// last page.
	Next string `json:"next,omitempty"`
}

func (s *Server) getCustomer(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !s.fresh(w, r) {
		return
	}
	if q.Has("version") || q.Has("at") {
		if c, ok := s.registeredCustomer(w, r); ok {
			s.customerAsOf(w, r, c)
		}
		return
	}
	id := r.PathValue("id")
	if !checkID(w, id) {
		return
	}
	minVersion, err := parseInt(q.Get("min_version"), 0, "min_version")
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_parameter", err.Error())
		return
	}
	wait, err := s.parseWait(q.Get("wait"), 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_parameter", err.Error())
		return
	}
	if !s.recovered(w) {
		return
	}
	if minVersion == 0 {
		s.lookupCustomer(w, id)
		return
	}
	release, ok := s.admit(w, r, s.waiters)
	if !ok {
		return
	}
	defer release()
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	c, err := s.lookups.WaitForVersion(ctx, id, minVersion)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		var current int64
		if c != nil {
			current = c.Version
		}
		writeJSON(w, http.StatusGatewayTimeout, apiError{Error: "wait_timeout",
			Message: fmt.Sprintf("version %d not reached within %s", minVersion, wait), Version: &current})
		return
	}
	if err != nil {
		s.lookupFailed(w, id, err)
		return
	}
	w.Header().Set("ETag", etag(c.Version))
	writeJSON(w, http.StatusOK, s.public(c))
}

// lookupCustomer answers a plain lookup, the hot path, with the stored
// bytes: the same body as writeJSON(public(c)) without decoding the state.
func (s *Server) lookupCustomer(w http.ResponseWriter, id string) {
	body, version, err := s.lookups.LookupJSON(id)
	if err != nil {
		s.lookupFailed(w, id, err)
		return
	}
	w.Header().Set("ETag", etag(version))
	if s.personal != nil {
		s.writePersonalJSON(w, body)
		return
	}
	writeJSONBytes(w, http.StatusOK, body)
}

func (s *Server) listCustomers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after := q.Get("after")
	if after != "" {
		if err := processor.ValidateKey(after); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "after: "+err.Error())
			return
		}
	}
	limit, ok := pageLimit(w, q.Get("limit"))
	if !ok {
		return
	}
	match, err := parseSearch(q.Get("q"), q.Get("status"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_parameter", err.Error())
		return
	}
	if s.forward != nil && r.Header.Get(HeaderForwarded) == "" {
		s.listMerged(w, r, after, limit, match)
		return
	}
	if !s.recovered(w) {
		return
	}
	customers, next, err := s.lookups.List(after, limit, match)
	if err != nil {
		s.lookupFailed(w, "", err)
		return
	}
	for i, c := range customers {
		customers[i] = s.public(c)
	}
	page := customerPage{Customers: customers, Next: next}
	writeJSON(w, http.StatusOK, page)
}

// lookupFailed answers a failed read of id: 404 for a customer the view
// does not hold; otherwise the view is the only thing that can fail here,
// and a view that cannot answer is unavailable, not broken.
func (s *Server) lookupFailed(w http.ResponseWriter, id string, err error) {
	if errors.Is(err, views.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no customer with id "+id)
		return
	}
	if errors.Is(err, views.ErrNotLocal) {
		// Partitioned: the partition is moving here or away; its owner
		// will answer in a moment.
		unavailable(w, "not_owner", "this instance does not hold the customer's partition right now (a rebalance); retry")
		return
	}
	s.log.Warn("view lookup failed", "customer", id, "error", err)
	writeError(w, http.StatusServiceUnavailable, "view_unavailable", "the view cannot answer right now; retry")
}

// recovered answers 503 not_ready, and returns false, while the view is
// still recovering the table: a read then could answer with old state.
func (s *Server) recovered(w http.ResponseWriter) bool {
	if s.lookups.Recovered() {
		return true
	}
	unavailable(w, "not_ready", "the view is still recovering the table")
	return false
}

func (s *Server) parseWait(raw string, def time.Duration) (time.Duration, error) {
	if raw == "" {
		if def == 0 {
			def = 2 * time.Second
		}
		return min(def, s.cfg.MaxWait), nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil {
		secs, ierr := strconv.ParseFloat(raw, 64)
		if ierr != nil || math.IsNaN(secs) || math.IsInf(secs, 0) {
			return 0, fmt.Errorf("wait %q is not a duration such as 2s or 500ms", raw)
		}
		// Cap before converting: a float beyond int64 nanoseconds converts
		// differently on each CPU.
		if secs < 0 {
			return 0, fmt.Errorf("wait %q must not be negative", raw)
		}
		d = time.Duration(min(secs, s.cfg.MaxWait.Seconds()) * float64(time.Second))
	}
	if d < 0 {
		return 0, fmt.Errorf("wait %q must not be negative", raw)
	}
	return min(d, s.cfg.MaxWait), nil
}

func parseInt(raw string, def int64, name string) (int64, error) {
	if raw == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%s %q is not a non-negative integer", name, raw)
	}
	return v, nil
}

// pageLimit reads ?limit= of a page, 100 by default, served as at most
// views.MaxListLimit; it answers 400 when it is not a positive integer.
func pageLimit(w http.ResponseWriter, raw string) (int, bool) {
	limit, err := parseInt(raw, 100, "limit")
	if err != nil || limit < 1 {
		writeError(w, http.StatusBadRequest, "invalid_parameter",
			fmt.Sprintf("limit must be a positive integer; values above %d are served as %d", views.MaxListLimit, views.MaxListLimit))
		return 0, false
	}
	return int(min(limit, views.MaxListLimit)), true
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// maxSearch bounds ?q= of GET /customers.
const maxSearch = 256

// statuses are the values of ?status= of GET /customers.
var statuses = []string{string(processor.StatusActive), string(processor.StatusSuspended), string(processor.StatusErased)}

// parseSearch returns the filter of GET /customers?q=&status=, nil for
// none: q matches an id that starts with it or a name or email that
// contains it, ignoring case; status is the customer's status.
func parseSearch(q, status string) (func(*processor.Customer) bool, error) {
	if len(q) > maxSearch {
		return nil, fmt.Errorf("q of %d bytes is longer than %d", len(q), maxSearch)
	}
	if status != "" && !slices.Contains(statuses, status) {
		return nil, fmt.Errorf("status %q is not one of %s", status, strings.Join(statuses, ", "))
	}
	q = strings.ToLower(strings.TrimSpace(q))
	if q == "" && status == "" {
		return nil, nil
	}
	return func(c *processor.Customer) bool {
		if status != "" && string(c.Status) != status {
			return false
		}
		return q == "" || strings.HasPrefix(strings.ToLower(c.ID), q) ||
			strings.Contains(strings.ToLower(c.Name), q) || strings.Contains(strings.ToLower(c.Email), q)
	}, nil
}

// decisionList is the body of GET /customers/{id}/decisions.
type decisionList struct {
	ID string `json:"id"`
	// Version is the customer's version, 0 for an id that was never
	// registered: its entry holds only the decisions on its events.
	Version   int64                `json:"version"`
	Decisions []processor.Decision `json:"recent_decisions"`
}

// listDecisions answers GET /customers/{id}/decisions: the recent
// decisions of any id the fold has decided on, registered or not, so that
// a producer whose events were all rejected can read why. A lookup of such
// an id is a 404, as the customer does not exist.
func (s *Server) listDecisions(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !checkID(w, id) || !s.fresh(w, r) {
		return
	}
	c, ok := s.decidedEntry(w, id)
	if !ok {
		return
	}
	body := decisionList{ID: c.ID, Version: c.Version, Decisions: c.Decisions}
	if body.Decisions == nil {
		body.Decisions = []processor.Decision{}
	}
	writeJSON(w, http.StatusOK, body)
}

// decidedEntry returns the table entry of an id with decisions, registered
// or not, or answers the request when there is none.
func (s *Server) decidedEntry(w http.ResponseWriter, id string) (*processor.Customer, bool) {
	if !s.recovered(w) {
		return nil, false
	}
	c, err := s.lookups.Entry(id)
	if err != nil {
		s.lookupFailed(w, id, err)
		return nil, false
	}
	if c == nil {
		writeError(w, http.StatusNotFound, "not_found", "no event was ever decided for id "+id)
		return nil, false
	}
	return c, true
}

// maxLagCheck bounds the Kafka reads of one ?max_lag= check.
const maxLagCheck = 2 * time.Second

// fresh answers a read with ?max_lag=N, and returns false, when the copy
// that serves its customer is more than N records of the customer's
// partition behind (or cannot tell): 503 with Retry-After, so that the
// client retries rather than reads a state older than it accepts.
func (s *Server) fresh(w http.ResponseWriter, r *http.Request) bool {
	raw, id := r.URL.Query().Get("max_lag"), r.PathValue("id")
	if raw == "" || processor.ValidateKey(id) != nil {
		return true // an invalid id gets its 400 from the handler
	}
	maxLag, err := parseInt(raw, 0, "max_lag")
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_parameter", err.Error())
		return false
	}
	if s.lag == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), maxLagCheck)
	defer cancel()
	lag, err := s.lag.Lag(ctx, id)
	if err != nil {
		s.log.Warn("failed to read the lag of a customer's copy", "customer", id, "error", err)
		unavailable(w, "lag_unknown", "the lag of this customer's copy cannot be read right now; retry")
		return false
	}
	if lag > maxLag {
		unavailable(w, "too_stale", fmt.Sprintf("the copy that serves this customer is %d records behind, more than max_lag %d; retry", lag, maxLag))
		return false
	}
	return true
}

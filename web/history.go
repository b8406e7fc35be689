package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/views"
)

// HistoryReader reads customers' events back from the log: a views.History.
type HistoryReader interface {
	Events(ctx context.Context, c *processor.Customer, afterVersion int64, limit int) ([]views.Event, error)
	StateAtVersion(ctx context.Context, c *processor.Customer, version int64) (*processor.Customer, error)
	StateAtTime(ctx context.Context, c *processor.Customer, t time.Time) (*processor.Customer, error)
	// Attempted reads the event of one of id's decisions back from the
	// log.
	Attempted(ctx context.Context, id string, d processor.Decision) (views.Event, error)
}

// historyTimeout bounds the Kafka reads of one history request.
const historyTimeout = 10 * time.Second

// eventPage is the body of GET /customers/{id}/events. It is built whole
// before it is sent, so that a failed read still answers 503: a page is
// at most views.MaxPageBytes of events, and the history-read slots bound
// how many are built at once.
type eventPage struct {
	Events []views.Event `json:"events"`
	// FirstVersion is the oldest version still readable (1 unless the
	// history was truncated).
	FirstVersion int64 `json:"first_version"`
	// NextAfterVersion is the after_version of the next page, absent on
	// the last page. A page may end before limit, at the byte budget.
	NextAfterVersion int64 `json:"next_after_version,omitempty"`
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, err := parseInt(q.Get("after_version"), 0, "after_version")
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_parameter", err.Error())
		return
	}
	limit, ok := pageLimit(w, q.Get("limit"))
	if !ok {
		return
	}
	c, ok := s.registeredCustomer(w, r)
	if !ok {
		return
	}
	ctx, done, ok := s.startHistoryRead(w, r)
	if !ok {
		return
	}
	defer done()
	events, err := s.history.Events(ctx, c, after, limit)
	if err != nil {
		s.historyFailed(w, err)
		return
	}
	s.openEvents(c, events)
	page := eventPage{Events: events, FirstVersion: c.History.FirstVersion()}
	if page.Events == nil {
		page.Events = []views.Event{}
	}
	if n := len(events); n > 0 && events[n-1].Version < c.Version {
		page.NextAfterVersion = events[n-1].Version
	}
	writeJSON(w, http.StatusOK, page)
}

// customerAsOf answers GET /customers/{id}?version=N or ?at=<time>.
func (s *Server) customerAsOf(w http.ResponseWriter, r *http.Request, c *processor.Customer) {
	q := r.URL.Query()
	if q.Has("version") && q.Has("at") {
		writeError(w, http.StatusBadRequest, "invalid_parameter", "give version or at, not both")
		return
	}
	var (
		version int64
		at      time.Time
		err     error
	)
	if q.Has("version") {
		if version, err = parseInt(q.Get("version"), 0, "version"); err != nil || version < 1 {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "version must be a positive integer")
			return
		}
	} else if at, err = time.Parse(time.RFC3339Nano, q.Get("at")); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_parameter", fmt.Sprintf("at %q is not an RFC 3339 time", q.Get("at")))
		return
	}
	// Time travel folds up to processor.MaxHistory events: it counts
	// against the history reads.
	ctx, done, ok := s.startHistoryRead(w, r)
	if !ok {
		return
	}
	defer done()
	var past *processor.Customer
	if version > 0 {
		past, err = s.history.StateAtVersion(ctx, c, version)
	} else {
		past, err = s.history.StateAtTime(ctx, c, at)
	}
	if err != nil {
		s.historyFailed(w, err)
		return
	}
	w.Header().Set("ETag", etag(past.Version))
	writeJSON(w, http.StatusOK, s.public(past))
}

// startHistoryRead takes a history-read slot for the request and bounds
// its Kafka reads in time, or answers the request and returns ok false.
// done releases both.
func (s *Server) startHistoryRead(w http.ResponseWriter, r *http.Request) (ctx context.Context, done func(), ok bool) {
	release, ok := s.admit(w, r, s.histories)
	if !ok {
		return nil, nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), historyTimeout)
	return ctx, func() { cancel(); release() }, true
}

// registeredCustomer looks up the customer of the request's {id}, or
// answers the request when there is none.
func (s *Server) registeredCustomer(w http.ResponseWriter, r *http.Request) (*processor.Customer, bool) {
	id := r.PathValue("id")
	if !checkID(w, id) {
		return nil, false
	}
	if s.history == nil {
		writeError(w, http.StatusNotImplemented, "no_history", "this server does not read history")
		return nil, false
	}
	if !s.recovered(w) {
		return nil, false
	}
	c, err := s.lookups.Lookup(id)
	if err != nil {
		s.lookupFailed(w, id, err)
		return nil, false
	}
	return c, true
}

func (s *Server) historyFailed(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, views.ErrVersionNotFound):
		writeError(w, http.StatusNotFound, "version_not_found", err.Error())
	case errors.Is(err, views.ErrHistoryTruncated):
		writeError(w, http.StatusGone, "history_truncated", err.Error())
	default:
		s.log.Warn("history read failed", "error", err)
		writeError(w, http.StatusServiceUnavailable, "kafka_unavailable", "the events could not be read from Kafka; retry")
	}
}

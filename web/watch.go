package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/eventfold/eventfold/internal/restart"
	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/views"
)

// Subscriber hands out subscriptions to table changes: a views.Hub. A
// watcher that falls out of the hub's window of changes is dropped: a
// slow client must not slow the view down.
type Subscriber interface {
	Subscribe(key string) *views.Subscription
}

// watchCustomer streams GET /customers/{id}/watch: the current state, then
// one "state" event per accepted change of that customer.
func (s *Server) watchCustomer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := processor.ValidateKey(id); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_id", err.Error())
		return
	}
	if n := len(r.Header.Get("Last-Event-ID")); n > maxLastEventID {
		writeError(w, http.StatusBadRequest, "invalid_parameter",
			fmt.Sprintf("Last-Event-ID is %d bytes, over %d: send the id of the last event received", n, maxLastEventID))
		return
	}
	s.watch(w, r, id)
}

// watchAll streams GET /watch: one "state" event per accepted change of
// any customer.
func (s *Server) watchAll(w http.ResponseWriter, r *http.Request) { s.watch(w, r, "") }

func (s *Server) watch(w http.ResponseWriter, r *http.Request, id string) {
	if s.subscriber == nil {
		writeError(w, http.StatusNotImplemented, "no_watch", "this server does not stream changes")
		return
	}
	if r.Method == http.MethodHead {
		// HEAD learns that the stream exists without holding a slot.
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		return
	}
	if !s.recovered(w) {
		return
	}
	if r.Context().Value(admittedKey{}) == nil {
		release, ok := s.admit(w, r, s.watchers)
		if !ok {
			return
		}
		defer release()
	}

	// Subscribe before reading the current state, so no change is lost
	// between the two; versions already sent are skipped.
	sub, ok := s.subscribe(w, r, id)
	if !ok {
		return
	}
	defer sub.Close()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	var st stream
	if id != "" {
		st.sent = lastEventVersion(r, id)
		body, version, err := s.lookups.LookupJSON(id)
		switch {
		case err == nil && version <= st.sent:
			// The client has this version (a reconnection with
			// Last-Event-ID): it gets the changes after it.
		case err == nil:
			st.add(views.AppendStateEvent(nil, id, version, s.openPublicJSON(body)), version)
		case !errors.Is(err, views.ErrNotFound):
			// The stream starts without the current state; the next
			// change brings it.
			s.log.Warn("failed to read the current state of a watched customer", "customer", id, "error", err)
		}
	}
	if err := s.send(w, rc, &st); err != nil {
		return
	}
	heartbeat := time.NewTicker(s.cfg.WatchHeartbeat)
	defer heartbeat.Stop()
	var moved <-chan time.Time
	if id != "" && s.forward != nil {
		check := time.NewTicker(watchOwnerCheck)
		defer check.Stop()
		moved = check.C
	}
	var changes []*views.Change
	// deliver sends the changes the subscription holds, and reports
	// whether the stream goes on.
	deliver := func() bool {
		var open bool
		if changes, open = sub.Take(changes[:0]); !open {
			// Dropped for falling behind: end the stream; the client
			// reconnects and starts from the current state.
			return false
		}
		for _, c := range changes {
			if event, version, ok := c.StateEvent(); ok && (id == "" || version > st.sent) {
				st.add(event, version)
			} else if rejected, ok := c.RejectedEvent(); ok && id != "" {
				// A customer's stream carries its rejections too, so
				// that a page sees every decision, also of ids never
				// registered; GET /watch stays the feed of state changes.
				st.pending = append(st.pending, rejected)
			}
		}
		clear(changes) // the hub's window, not this stream, keeps changes
		return s.send(w, rc, &st) == nil
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-heartbeat.C:
			st.pending = append(st.pending, heartbeatFrame)
			if err := s.send(w, rc, &st); err != nil {
				return
			}
		case <-moved:
			if owner, ok := s.forward.router.Owner(id); ok && owner != s.AdvertisedURL() {
				// The customer's partition moved to another instance:
				// its changes are folded there now. The stream ends
				// with what this instance folded; the client reconnects
				// (to any instance), reaches the new owner and starts
				// from its current state, which no change of the move
				// is missing from.
				deliver()
				return
			}
		case <-sub.Ready():
			if !s.coalesce(r.Context()) || !deliver() {
				return
			}
		}
	}
}

// maxLastEventID bounds the Last-Event-ID header a customer's stream
// reads: an event id is "<customer>@<version>/<event id>", at most 256 +
// 20 + 256 bytes; the bound documented in openapi.yaml is 1024.
const maxLastEventID = 1024

// lastEventVersion returns the version a reconnecting client last
// received of id, from the Last-Event-ID header an EventSource sends
// ("<id>@<version>", or "<id>@<version>/<event id>" after a rejection),
// or 0. The stream then sends no state at or below it: a client whose
// stream ended (its customer's partition moved, or it fell behind) gets
// the current state only when it is newer than what it has, and never an
// older one, whichever instance it reconnects through.
func lastEventVersion(r *http.Request, id string) int64 {
	rest, ok := strings.CutPrefix(r.Header.Get("Last-Event-ID"), id+"@")
	if !ok {
		return 0
	}
	rest, _, _ = strings.Cut(rest, "/")
	v, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// watchOwnerCheck is how often a customer's stream in partitioned mode
// checks that this instance still owns the customer: the membership is
// read about as often.
const watchOwnerCheck = time.Second

// subscribe returns the subscription of a stream: to id's changes, or to
// every change, which in partitioned mode come from the tail of the
// table (Deps.Changes) rather than from this instance's own partitions.
// It answers the request and returns false when there is none.
func (s *Server) subscribe(w http.ResponseWriter, r *http.Request, id string) (*views.Subscription, bool) {
	if id != "" || s.changes == nil {
		return s.subscriber.Subscribe(id), true
	}
	ctx, cancel := context.WithTimeout(r.Context(), maxFeedStart)
	defer cancel()
	sub, err := s.changes.SubscribeAll(ctx)
	if err != nil {
		s.log.Warn("failed to follow the table for a watcher of every change", "error", err)
		unavailable(w, "watch_unavailable", "the changes of the whole table cannot be followed right now; retry")
		return nil, false
	}
	return sub, true
}

// maxFeedStart bounds starting the tail of the table for a GET /watch:
// it reads the end of each partition.
const maxFeedStart = 5 * time.Second

// ChangeFeed hands out subscriptions to every change of the whole table
// (a views.Tail), where this instance's own Subscriber sees only its
// partitions (partitioned mode).
type ChangeFeed interface {
	SubscribeAll(ctx context.Context) (*views.Subscription, error)
}

// admittedKey marks a watch request whose watcher slot was taken where
// the client connected (admitWatch).
type admittedKey struct{}

// admitWatch takes a customer's stream's watcher slot where the client
// connected, before the stream is routed: a stream forwarded to its owner
// counts against this client's bounds here, where the client is known,
// as well as against the forwarding instance's at the owner, which knows
// only the instance.
func (s *Server) admitWatch(h http.HandlerFunc) http.HandlerFunc {
	if s.forward == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead || r.Header.Get(HeaderForwarded) != "" {
			h(w, r)
			return
		}
		release, ok := s.admit(w, r, s.watchers)
		if !ok {
			return
		}
		defer release()
		h(w, r.WithContext(context.WithValue(r.Context(), admittedKey{}, true)))
	}
}

// stream is one watcher's frames not yet sent. Every watcher of a change
// shares the change's frame, built once (views.Change.StateEvent); the
// frames taken together are written and flushed at once.
type stream struct {
	pending [][]byte
	sent    int64 // the last version sent, for a stream of one customer
}

func (st *stream) add(frame []byte, version int64) {
	st.pending = append(st.pending, frame)
	st.sent = version
}

var heartbeatFrame = []byte(": heartbeat\n\n")

// send writes the pending frames under one deadline and flushes them, so
// a client that stops reading is dropped instead of holding a goroutine
// forever.
func (s *Server) send(w http.ResponseWriter, rc *http.ResponseController, st *stream) error {
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WatchWriteTimeout)) // unsupported writers just have no deadline
	for _, b := range st.pending {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	clear(st.pending)
	st.pending = st.pending[:0]
	return s.flush(rc)
}

func (s *Server) flush(rc *http.ResponseController) error {
	return rc.Flush()
}

// coalesce waits WatchCoalesce for more changes to gather, and reports
// false when the request ended meanwhile.
func (s *Server) coalesce(ctx context.Context) bool {
	if s.cfg.WatchCoalesce <= 0 {
		return true
	}
	return restart.Sleep(ctx, s.cfg.WatchCoalesce)
}

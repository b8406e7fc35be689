package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/eventfold/eventfold/processor"
)

// attemptedEvent is the body of GET
// /customers/{id}/decisions/{event_id}/event: a recent decision and the
// event it decided, read back from the log. For a rejection, that is what
// the event attempted, which the decision does not keep.
type attemptedEvent struct {
	ID       string             `json:"id"`
	Decision processor.Decision `json:"decision"`
	// Partition and Offset are where the event is in the events topic;
	// Time is its time, or the record's when it has none.
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Time      time.Time       `json:"time"`
	Event     json.RawMessage `json:"event"`
}

// decisionEvent answers GET /customers/{id}/decisions/{event_id}/event,
// for any id with decisions, registered or not, as listDecisions does. It
// reads one record, at most the contract's 64 KiB, in a history-read
// slot, and opens its personal data as history does.
func (s *Server) decisionEvent(w http.ResponseWriter, r *http.Request) {
	id, eventID := r.PathValue("id"), r.PathValue("event_id")
	if !checkID(w, id) {
		return
	}
	if len(eventID) > processor.MaxIDBytes {
		writeError(w, http.StatusBadRequest, "invalid_parameter", fmt.Sprintf("an event id has at most %d bytes", processor.MaxIDBytes))
		return
	}
	if s.history == nil {
		writeError(w, http.StatusNotImplemented, "no_history", "this server does not read history")
		return
	}
	c, ok := s.decidedEntry(w, id)
	if !ok {
		return
	}
	d, ok := c.Decision(eventID)
	if !ok {
		writeError(w, http.StatusNotFound, "decision_not_found",
			fmt.Sprintf("event %q is not among the last %d decisions on events of %s", eventID, processor.RecentDecisions, id))
		return
	}
	ctx, done, ok := s.startHistoryRead(w, r)
	if !ok {
		return
	}
	defer done()
	ev, err := s.history.Attempted(ctx, id, d)
	if err != nil {
		s.historyFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, attemptedEvent{ID: id, Decision: d, Partition: ev.Partition, Offset: ev.Offset, Time: ev.Time,
		Event: s.openAttempted(c, ev.Event)})
}

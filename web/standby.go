package web

import (
	"context"
	"errors"
	"net/http"
	"slices"
)

// HeaderStandby is set, to "true", on an answer a standby copy served:
// the customer's owner was not known (a rebalance) or did not answer, and
// an instance that keeps a warm copy of its partition answered instead
// (serve --standby-replicas). Such an answer is at most ?max_lag= records
// behind the table when the read set it, and never older than
// ?min_version=.
const HeaderStandby = "Eventfold-Standby"

// Copies tells which copy of a customer's partition this instance reads
// (views.View.Holds): its own, as the partition's owner, or a standby
// copy of a partition another instance owns.
type Copies interface {
	Holds(id string) (owned, standby bool)
}

// errOwnerNotServing makes the proxy hand a forwarded read to its
// fallback when the owner answered 503.
var errOwnerNotServing = errors.New("the owner cannot serve the customer right now")

// fallback serves a forwarded read another way when its owner does not
// answer, and reports whether it did.
type fallback func(w http.ResponseWriter, r *http.Request) bool

type fallbackKey struct{}

// fallbackOf returns the fallback of a forwarded request, if it has one
// left: a fallback runs once.
func fallbackOf(r *http.Request) fallback {
	f, _ := r.Context().Value(fallbackKey{}).(fallback)
	return f
}

// holdsStandby reports whether this instance serves id from a standby
// copy now.
func (s *Server) holdsStandby(id string) bool {
	if s.copies == nil {
		return false
	}
	_, standby := s.copies.Holds(id)
	return standby
}

// readStandby serves a read from a standby copy of its partition, here
// when this instance keeps one, else at the first other standby: one hop,
// marked as forwarded, so the standby serves it from its copy or answers
// 503 itself. It reports false when no standby is known.
func (s *Server) readStandby(w http.ResponseWriter, r *http.Request, local http.HandlerFunc) bool {
	id := r.PathValue("id")
	self := s.AdvertisedURL()
	if s.holdsStandby(id) {
		w.Header().Set(HeaderServedBy, self) // a failed forward took it away
		local(w, r)
		return true
	}
	urls := s.otherStandbys(id)
	if len(urls) == 0 {
		return false
	}
	s.forward.results.WithLabelValues("standby").Inc()
	// No fallback after this one.
	s.forward.forward(w, r.WithContext(context.WithValue(r.Context(), fallbackKey{}, fallback(nil))), urls[0])
	return true
}

// markCopy sets HeaderStandby on the answers h gives from a standby copy.
func (s *Server) markCopy(h http.HandlerFunc) http.HandlerFunc {
	if s.copies == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if s.holdsStandby(r.PathValue("id")) {
			w.Header().Set(HeaderStandby, "true")
		}
		h(w, r)
	}
}

// otherStandbys returns the standbys of id's partition but this instance.
func (s *Server) otherStandbys(id string) []string {
	self := s.AdvertisedURL()
	return slices.DeleteFunc(slices.Clone(s.forward.router.Standbys(id)), func(u string) bool { return u == self })
}

// withStandby gives a read forwarded to its owner a standby to fall back
// on, when its partition has one: the owner not answering, or answering
// 503, then sends the read to the standby instead.
func (s *Server) withStandby(r *http.Request, local http.HandlerFunc) *http.Request {
	id := r.PathValue("id")
	if !s.holdsStandby(id) && len(s.otherStandbys(id)) == 0 {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), fallbackKey{}, fallback(func(w http.ResponseWriter, r *http.Request) bool {
		return s.readStandby(w, r, local)
	})))
}

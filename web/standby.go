package web

import (
	"context"
	"errors"
	"net/http"
	"slices"
)

// HeaderStandby is set, to "true", on an answer a standby copy served:
// the customer's owner was not known (a rebalance) or did not answer, and
// an instance that keeps a warm copy of its partition, or that owned it
// before the rebalance, answered instead (serve --standby-replicas). Such an answer is at most ?max_lag= records
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

// recovering reports whether this instance owns id's partition but does
// not serve it yet, and keeps no standby copy of it.
func (s *Server) recovering(id string) bool {
	if s.copies == nil {
		return false
	}
	owned, standby := s.copies.Holds(id)
	return !owned && !standby
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
// when this instance keeps one, else at the other fallbacks in turn: one
// hop each, marked as forwarded, so each serves it from its copy or
// answers 503, and the next is asked when one does not answer or answers
// 503. It reports false when no fallback is known.
func (s *Server) readStandby(w http.ResponseWriter, r *http.Request, local http.HandlerFunc) bool {
	return s.readFallback(w, r, local, s.otherFallbacks(r.PathValue("id")))
}

func (s *Server) readFallback(w http.ResponseWriter, r *http.Request, local http.HandlerFunc, urls []string) bool {
	if s.holdsStandby(r.PathValue("id")) {
		w.Header().Set(HeaderServedBy, s.AdvertisedURL()) // a failed forward took it away
		local(w, r)
		return true
	}
	return s.forwardInTurn(w, r, urls)
}

// forwardInTurn forwards a read to the first of urls, falling back on the
// rest.
func (s *Server) forwardInTurn(w http.ResponseWriter, r *http.Request, urls []string) bool {
	if len(urls) == 0 {
		return false
	}
	var next fallback // none after the last: its answer passes through
	if rest := urls[1:]; len(rest) > 0 {
		next = func(w http.ResponseWriter, r *http.Request) bool { return s.forwardInTurn(w, r, rest) }
	}
	s.forward.results.WithLabelValues("standby").Inc()
	s.forward.forward(w, r.WithContext(context.WithValue(r.Context(), fallbackKey{}, next)), urls[0])
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

// otherFallbacks returns the fallbacks of id's partition but this
// instance.
func (s *Server) otherFallbacks(id string) []string {
	self := s.AdvertisedURL()
	return slices.DeleteFunc(slices.Clone(s.forward.router.Fallbacks(id)), func(u string) bool { return u == self })
}

// withStandby gives a read forwarded to its owner a standby to fall back
// on, when its partition has one: the owner not answering, or answering
// 503, then sends the read to the standby instead.
func (s *Server) withStandby(r *http.Request, local http.HandlerFunc, owner string) *http.Request {
	id := r.PathValue("id")
	urls := slices.DeleteFunc(s.otherFallbacks(id), func(u string) bool { return u == owner })
	if !s.holdsStandby(id) && len(urls) == 0 {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), fallbackKey{}, fallback(func(w http.ResponseWriter, r *http.Request) bool {
		return s.readFallback(w, r, local, urls)
	})))
}

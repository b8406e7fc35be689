package web

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// access says who may call a route.
type access int

const (
	// open routes need no token: health and readiness probes, metrics
	// scrapes, and the page shell.
	open access = iota
	// read routes need a read or write token when read tokens are set.
	read
	// write routes need a write token when write tokens are set.
	write
)

// authorize enforces bearer tokens: 401 without one, 403 with one that
// does not grant the access. With no tokens configured for a level, that
// level is open.
func (s *Server) authorize(level access, next http.HandlerFunc) http.HandlerFunc {
	var allowed []string
	switch level {
	case read:
		if len(s.cfg.ReadTokens) > 0 {
			allowed = append(append(allowed, s.cfg.ReadTokens...), s.cfg.WriteTokens...)
		}
	case write:
		allowed = s.cfg.WriteTokens
	}
	if len(allowed) == 0 {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="eventfold"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <token>")
			return
		}
		for _, t := range allowed {
			if subtle.ConstantTimeCompare([]byte(token), []byte(t)) == 1 {
				next(w, r)
				return
			}
		}
		writeError(w, http.StatusForbidden, "forbidden", "the token does not grant this access")
	}
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"mime"
	"net/http"
	"strings"
)

// Access says who may call a route. The API's routes and the Pages beside
// them all pass through Server.authorize, the one place tokens are checked.
type Access int

const (
	// Read routes need a read or write token when read tokens are set. It
	// is the zero value, so that a Page mounted without a level is not left
	// open.
	Read Access = iota
	// Open routes need no token: health and readiness probes, metrics
	// scrapes (counts by route, type, reason and partition: no customer
	// data), this API's document, and the page shell and its static files.
	Open
	// Write routes need a write token as soon as any token is set, read or
	// write: a server whose reads are guarded must not take anonymous
	// writes. With read tokens alone no one may write (serve refuses to
	// start that way). Writes are also refused from browser pages of
	// another origin, whatever the token.
	Write
)

// authorize enforces bearer tokens: 401 without one, 403 with one that
// does not grant the access. Writes then pass the cross-origin check.
func (s *Server) authorize(level Access, next http.HandlerFunc) http.HandlerFunc {
	if level == Write {
		next = s.sameOrigin(next)
	}
	var (
		guarded bool
		allowed []string
	)
	switch level {
	case Read:
		guarded = len(s.cfg.ReadTokens) > 0
		allowed = append(append(allowed, s.cfg.ReadTokens...), s.cfg.WriteTokens...)
	case Write:
		guarded = len(s.cfg.ReadTokens)+len(s.cfg.WriteTokens) > 0
		allowed = s.cfg.WriteTokens
	}
	if !guarded {
		return next
	}
	sums := make([][sha256.Size]byte, len(allowed))
	for i, t := range allowed {
		sums[i] = sha256.Sum256([]byte(t))
	}
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="eventfold"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <token>")
			return
		}
		if !matches(sums, token) {
			writeError(w, http.StatusForbidden, "forbidden", "the token does not grant this access")
			return
		}
		next(w, r)
	}
}

// matches compares the token with every allowed one in constant time.
// Comparing SHA-256 sums, all of the same length, keeps the time from
// telling the length of a token either, which subtle.ConstantTimeCompare
// of the tokens themselves would.
func matches(sums [][sha256.Size]byte, token string) bool {
	sum := sha256.Sum256([]byte(token))
	found := 0
	for i := range sums {
		found |= subtle.ConstantTimeCompare(sum[:], sums[i][:])
	}
	return found == 1
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// sameOrigin refuses writes that a browser sends from a page of another
// origin: a hostile page could otherwise make the browser of anyone on
// the operator's network post a form to a server whose writes are open.
// The standard library's check reads Sec-Fetch-Site, which every browser
// has sent since 2023, and otherwise compares Origin with Host. Clients
// that send neither, such as curl and the SDKs, are not browsers and pass.
func (s *Server) sameOrigin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.origins.Check(r); err != nil {
			writeError(w, http.StatusForbidden, "cross_origin", "a browser page of another origin may not write here")
			return
		}
		next(w, r)
	}
}

// isJSON reports whether a write's Content-Type is JSON: application/json
// or CloudEvents' structured mode, application/cloudevents+json, in UTF-8.
// Both are outside the three types (text/plain and the two form encodings)
// that a page of another origin can post without a CORS preflight, which
// this server never grants.
func isJSON(contentType string) bool {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || (mediaType != "application/json" && mediaType != "application/cloudevents+json") {
		return false
	}
	charset, ok := params["charset"]
	return !ok || strings.EqualFold(charset, "utf-8")
}

package web

import (
	"context"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfold/eventfold/processor"
)

// Headers of partitioned serving.
const (
	// HeaderServedBy names, on every answer, the advertised URL of the
	// instance that served it.
	HeaderServedBy = "Eventfold-Served-By"
	// HeaderForwarded marks a request one instance forwarded to another,
	// with the forwarder's URL: it is served where it lands, never
	// forwarded again.
	HeaderForwarded = "Eventfold-Forwarded-By"
)

// Router says which instance serves a customer when the instances split
// the table between them (a cluster.Members); nil serves every request
// here.
type Router interface {
	// Owner returns the advertised URL of the instance that owns id;
	// ok is false when no owner is known, during a rebalance.
	Owner(id string) (owner string, ok bool)
	// Instances returns the URLs of the instances that own partitions,
	// and whether every partition has an owner.
	Instances() (urls []string, complete bool)
	// Poke asks for the membership to be read again: an owner did not
	// answer.
	Poke()
	// Fallbacks returns the URLs of the instances that may answer a read
	// of id while its owner is unknown or does not answer, in order:
	// those that keep a warm copy of its partition (serve
	// --standby-replicas), then its last known owner; none without
	// standbys.
	Fallbacks(id string) []string
}

// forwarder sends a request to the instance that owns its customer.
type forwarder struct {
	router  Router
	self    func() string
	proxy   *httputil.ReverseProxy
	client  *http.Client
	results *prometheus.CounterVec
	latency prometheus.Histogram
}

// forwardOutcomes are the labels of eventfold_http_forwarded_total.
var forwardOutcomes = []string{"forwarded", "failed", "no_owner", "loop", "standby"}

func newForwarder(router Router, self func() string, reg prometheus.Registerer) (*forwarder, error) {
	f := &forwarder{router: router, self: self,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfold_http_forwarded_total",
			Help: "Requests for a customer another instance owns, by outcome: forwarded (the owner answered), failed (it did not), no_owner (a rebalance: 503), loop (a forwarded request this instance does not own: 503), standby (sent to a standby copy's instance because the owner was unknown or did not answer).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventfold_http_forward_seconds",
			Help:    "Time from forwarding a request to the owner's answer headers (or failure).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	for _, c := range []prometheus.Collector{f.results, f.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, o := range forwardOutcomes {
		f.results.WithLabelValues(o)
	}
	transport := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
		ResponseHeaderTimeout: 0, TLSHandshakeTimeout: 10 * time.Second}
	f.client = &http.Client{Transport: transport, Timeout: 30 * time.Second}
	f.proxy = &httputil.ReverseProxy{
		Transport: transport,
		// Watch streams and long waits pass through as they are written.
		FlushInterval: -1,
		Rewrite: func(r *httputil.ProxyRequest) {
			target := r.In.Context().Value(ownerKey{}).(*url.URL) // set by forward
			r.SetURL(target)
			r.Out.Host = target.Host
			// The original request's token goes along: the owner checks
			// it again. X-Forwarded-For tells it the client.
			r.SetXForwarded()
			r.Out.Header.Set(HeaderForwarded, self())
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusServiceUnavailable && fallbackOf(resp.Request) != nil {
				// The owner cannot serve it (yet): a standby may.
				return errOwnerNotServing
			}
			f.results.WithLabelValues("forwarded").Inc()
			f.observe(resp.Request)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			f.results.WithLabelValues("failed").Inc()
			f.observe(r)
			router.Poke()
			if r.Context().Err() != nil {
				return // the client went away
			}
			if fallback := fallbackOf(r); fallback != nil && fallback(w, r) {
				return
			}
			w.Header().Set(HeaderServedBy, self())
			unavailable(w, "owner_unavailable", "the instance that owns this customer did not answer; retry")
		},
	}
	return f, nil
}

// ownerKey carries the owner's URL from forward to the proxy's Rewrite,
// and startKey the time the forward started.
type (
	ownerKey struct{}
	startKey struct{}
)

func (f *forwarder) observe(r *http.Request) {
	if start, ok := r.Context().Value(startKey{}).(time.Time); ok {
		f.latency.Observe(time.Since(start).Seconds())
	}
}

// forward hands the request to owner and passes its answer through:
// status, headers (the owner's Eventfold-Served-By among them) and body.
func (f *forwarder) forward(w http.ResponseWriter, r *http.Request, owner string) {
	target, err := url.Parse(owner)
	if err != nil {
		f.results.WithLabelValues("failed").Inc()
		unavailable(w, "owner_unavailable", "the owner's advertised address is not a URL; retry")
		return
	}
	ctx := context.WithValue(context.WithValue(r.Context(), ownerKey{}, target), startKey{}, time.Now())
	w.Header().Del(HeaderServedBy) // the owner's comes back with its answer
	f.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// routed serves a request for the customer {id} here when this instance
// owns it, and forwards it to the owner otherwise: one hop at most, as a
// forwarded request is served where it lands.
func (s *Server) routed(h http.HandlerFunc) http.HandlerFunc { return s.route(h, false) }

// routedRead is routed for a read a standby copy may answer when the
// owner cannot (standby.go).
func (s *Server) routedRead(h http.HandlerFunc) http.HandlerFunc { return s.route(h, true) }

func (s *Server) route(h http.HandlerFunc, standby bool) http.HandlerFunc {
	if s.forward == nil {
		return h
	}
	f := s.forward
	local := s.markCopy(h)
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if processor.ValidateKey(id) != nil {
			h(w, r) // answers 400
			return
		}
		owner, ok := f.router.Owner(id)
		self := s.AdvertisedURL()
		switch {
		case r.Header.Get(HeaderForwarded) != "":
			if standby && (!ok || owner != self) && s.holdsStandby(id) {
				local(w, r) // sent to this instance as a standby
				return
			}
			if ok && owner != self {
				// The forwarder and this instance disagree on the owner:
				// forwarding again could loop while the membership settles.
				f.results.WithLabelValues("loop").Inc()
				unavailable(w, "forward_loop", "this instance does not own the customer it was forwarded; retry")
				return
			}
			local(w, r)
		case !ok:
			if standby && s.readStandby(w, r, local) {
				return
			}
			f.results.WithLabelValues("no_owner").Inc()
			unavailable(w, "rebalancing", "no instance owns this customer right now (a rebalance); retry")
		case owner == self:
			if standby && s.recovering(id) && s.readStandby(w, r, local) {
				return // the partition moved here and is still being recovered
			}
			local(w, r)
		case standby:
			f.forward(w, s.withStandby(r, local, owner), owner)
		default:
			f.forward(w, r, owner)
		}
	}
}

// unavailable answers 503 with Retry-After: the client should retry the
// same request, here or at any instance, in a second.
func unavailable(w http.ResponseWriter, code, message string) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, code, message)
}

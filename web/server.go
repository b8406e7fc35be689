package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfold/eventfold/processor"
)

// Lookups is what the server reads customers from: a views.View.
type Lookups interface {
	// Lookup returns a registered customer, or an error that is
	// views.ErrNotFound when the id is unknown.
	Lookup(id string) (*processor.Customer, error)
	// LookupJSON returns the body of a lookup, the state without its
	// history as processor.PublicJSON gives it, and the version; an error
	// that is views.ErrNotFound when the id is unknown.
	LookupJSON(id string) ([]byte, int64, error)
	// Entry returns the table entry of id, also one that holds only
	// decisions, or nil when there is none.
	Entry(id string) (*processor.Customer, error)
	// List returns a page of registered customers in id order, those
	// that match when match is not nil (views.View.List).
	List(after string, limit int, match func(*processor.Customer) bool) (customers []*processor.Customer, next string, err error)
	WaitForVersion(ctx context.Context, id string, minVersion int64) (*processor.Customer, error)
	WaitForDecision(ctx context.Context, id, eventID string) (processor.Decision, *processor.Customer, error)
	Recovered() bool
}

// Deps are the parts the server serves from.
type Deps struct {
	Lookups Lookups
	// Publisher accepts writes; nil makes the server read-only.
	Publisher Publisher
	// History reads events back; nil disables history and time travel.
	History HistoryReader
	// Subscriber streams changes; nil disables the watch routes.
	Subscriber Subscriber
	// Changes streams every change of the table for GET /watch when
	// Subscriber sees only this instance's partitions (partitioned mode);
	// nil streams Subscriber's.
	Changes ChangeFeed
	// Checks decide readiness.
	Checks []Check
	// Pages are further handlers mounted beside the API, such as the web
	// page; their patterns must not clash with the API's.
	Pages []Page
	// Personal seals the personal data of writes and opens it for reads
	// (a keys.Keyring); nil leaves personal data as it is written.
	Personal Personal
	// Router, when the instances split the table (partitioned mode),
	// says which instance owns a customer: requests for customers owned
	// elsewhere are forwarded there, and lists merge every owner's page.
	// Nil serves everything here.
	Router Router
	// Lag tells how far behind the copy that serves a customer is, for
	// ?max_lag=; nil answers such reads as if nothing lagged.
	Lag Lagger
	// Copies, with a Router, tells whether this instance reads a
	// customer from a standby copy (standby.go); nil keeps none.
	Copies Copies
	// Cluster serves GET /cluster and GET /cluster/instance (cluster.go);
	// nil leaves them out.
	Cluster ClusterStatus
}

// Lagger tells how far behind the copy that serves a customer is: the
// records of its partition the copy has not applied yet.
type Lagger interface {
	Lag(ctx context.Context, id string) (int64, error)
}

// Page is a handler mounted at a ServeMux pattern, answering GET, behind
// the API's token check for its Access (Read when left out).
type Page struct {
	Pattern string
	Handler http.Handler
	Access  Access
	// Method is the one method the page answers, GET when empty. A Write
	// page passes the cross-origin check like the API's writes.
	Method string
}

// Route describes one route of the API, for documentation and tests.
type Route struct {
	Pattern string
	Methods []string
}

// Check is one readiness condition: its name and whether it holds.
type Check struct {
	Name  string
	Ready func() bool
}

// Config configures the HTTP server.
type Config struct {
	// Addr is the listen address, such as ":8080".
	Addr string
	// MaxWait bounds ?wait= on reads.
	MaxWait time.Duration
	// ShutdownTimeout bounds the graceful shutdown of open requests.
	ShutdownTimeout time.Duration
	// MaxWatchers bounds the open change streams.
	MaxWatchers int
	// MaxWaiters bounds the requests waiting for a version (?min_version=)
	// or a decision (POST) at a time.
	MaxWaiters int
	// MaxWatchersPerClient and MaxWaitersPerClient bound them per client
	// IP address; 0 leaves clients bounded by the totals alone (see
	// limits.go).
	MaxWatchersPerClient int
	MaxWaitersPerClient  int
	// MaxConnections and MaxConnectionsPerClient bound the open
	// connections, idle ones included (see connlimit.go); 0 per client
	// leaves clients bounded by the total alone.
	MaxConnections          int
	MaxConnectionsPerClient int
	// MaxHistoryReads bounds the history and time-travel reads (GET
	// /customers/{id}/events, ?version=, ?at=, the event of a decision) at
	// a time, and
	// MaxHistoryReadsPerClient bounds them per client IP (0: no
	// per-client bound). Each holds up to a page (views.MaxPageBytes) or
	// one fetch response in memory.
	MaxHistoryReads          int
	MaxHistoryReadsPerClient int
	// BodyReadTimeout bounds reading one request body.
	BodyReadTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's headers, so that a
	// client that sends them a byte at a time cannot hold a connection.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle that long.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers; more gets 431.
	MaxHeaderBytes int
	// WatchHeartbeat is the interval of comments that keep idle change
	// streams alive through proxies.
	WatchHeartbeat time.Duration
	// WatchWriteTimeout drops a change stream whose client stops reading.
	WatchWriteTimeout time.Duration
	// WatchCoalesce is how long a change stream, woken by a change, waits
	// for more before it writes them together: a burst of changes then
	// costs each stream one wake-up and one write, not one per change.
	// It is the most a change can be delayed on its way to a watcher.
	WatchCoalesce time.Duration
	// ReadTokens, when set, are the bearer tokens that may read; write
	// tokens may read too. Empty leaves reads open.
	ReadTokens []string
	// WriteTokens are the bearer tokens that may append events. Writes
	// are open only when no token at all is set (see Write).
	WriteTokens []string
	// TLSCertFile and TLSKeyFile, when both set, serve HTTPS.
	TLSCertFile string
	TLSKeyFile  string
	// AdvertisedURL is the base URL other instances and clients reach
	// this server at, such as http://eventfold-0.eventfold:8080; empty
	// derives it from the bound listen address (AdvertisedURL).
	AdvertisedURL string
	Logger        *slog.Logger
}

// DefaultConfig returns the defaults of the HTTP server.
func DefaultConfig() Config {
	return Config{Addr: ":8080", MaxWait: 30 * time.Second, ShutdownTimeout: 10 * time.Second,
		MaxWatchers: 1000, WatchHeartbeat: 15 * time.Second, WatchWriteTimeout: 10 * time.Second, WatchCoalesce: 5 * time.Millisecond,
		MaxWaiters: 4096, MaxWatchersPerClient: 100, MaxWaitersPerClient: 512, BodyReadTimeout: 10 * time.Second,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		MaxConnections: 10000, MaxConnectionsPerClient: 1024,
		MaxHistoryReads: 32, MaxHistoryReadsPerClient: 8}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.Addr == "" {
		return errors.New("no listen address")
	}
	if c.MaxWait <= 0 {
		return fmt.Errorf("max wait %s must be positive", c.MaxWait)
	}
	if c.MaxWatchers < 0 || c.WatchHeartbeat <= 0 || c.WatchWriteTimeout <= 0 {
		return errors.New("watch limits must be positive")
	}
	if c.MaxWaiters < 0 || c.MaxWatchersPerClient < 0 || c.MaxWaitersPerClient < 0 || c.BodyReadTimeout <= 0 ||
		c.MaxHistoryReads < 0 || c.MaxHistoryReadsPerClient < 0 {
		return errors.New("request limits must not be negative, and the body read timeout must be positive")
	}
	if c.MaxConnections <= 0 || c.MaxConnectionsPerClient < 0 {
		return errors.New("the connection bound must be positive, and the per-client one not negative")
	}
	if c.ReadHeaderTimeout <= 0 || c.IdleTimeout <= 0 || c.MaxHeaderBytes <= 0 {
		return errors.New("the header read timeout, idle timeout and header size bound must be positive")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("HTTPS needs both a certificate and a key file")
	}
	if c.AdvertisedURL != "" {
		if u, err := url.Parse(c.AdvertisedURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" && u.Path != "/" {
			return fmt.Errorf("advertised URL %q must be http(s)://host:port without a path", c.AdvertisedURL)
		}
	}
	for _, t := range append(append([]string{}, c.ReadTokens...), c.WriteTokens...) {
		if len(t) < 16 {
			return errors.New("bearer tokens must be at least 16 characters")
		}
	}
	return nil
}

// Server serves eventfold's HTTP API.
type Server struct {
	cfg        Config
	log        *slog.Logger
	lookups    Lookups
	publisher  Publisher
	personal   Personal
	history    HistoryReader
	subscriber Subscriber
	changes    ChangeFeed
	checks     []Check
	watchers   *slots
	waiters    *slots
	histories  *slots // history and time-travel reads
	routes     []Route
	origins    *http.CrossOriginProtection
	handler    http.Handler
	listener   net.Listener
	conns      *connLimit
	lag        Lagger
	forward    *forwarder // nil serves every request here
	copies     Copies
	advertised string // set by Listen
}

// New builds a server. The registry receives the HTTP metrics; gatherer
// is what /metrics exposes.
func New(cfg Config, deps Deps, reg prometheus.Registerer, gatherer prometheus.Gatherer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("failed to validate web config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if deps.Lookups == nil {
		return nil, errors.New("web server needs lookups")
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "web"), lookups: deps.Lookups, publisher: deps.Publisher, personal: deps.Personal, lag: deps.Lag, copies: deps.Copies, history: deps.History, subscriber: deps.Subscriber, changes: deps.Changes, checks: deps.Checks,
		watchers: newSlots("watchers", cfg.MaxWatchers, cfg.MaxWatchersPerClient), waiters: newSlots("waiters", cfg.MaxWaiters, cfg.MaxWaitersPerClient),
		origins:   http.NewCrossOriginProtection(),
		histories: newSlots("history reads", cfg.MaxHistoryReads, cfg.MaxHistoryReadsPerClient)}
	m, err := newMetrics(reg, s.watchers.open, s.waiters.open, s.histories.open, func() bool { ready, _ := s.ready(); return ready })
	if err != nil {
		return nil, err
	}
	if s.conns, err = newConnLimit(cfg, reg); err != nil {
		return nil, err
	}
	if deps.Router != nil {
		if s.forward, err = newForwarder(deps.Router, s.AdvertisedURL, reg); err != nil {
			return nil, fmt.Errorf("failed to register forwarding metrics: %w", err)
		}
	}
	routes := []route{
		{"/customers/{id}", map[string]http.HandlerFunc{http.MethodGet: s.authorize(Read, s.routedRead(s.getCustomer))}},
		{"/customers/{id}/events", map[string]http.HandlerFunc{
			http.MethodPost: s.authorize(Write, s.routed(s.appendEvent)), http.MethodGet: s.authorize(Read, s.routed(s.listEvents))}},
		{"/customers", map[string]http.HandlerFunc{http.MethodGet: s.authorize(Read, s.listCustomers)}},
		{"/customers/{id}/decisions", map[string]http.HandlerFunc{http.MethodGet: s.authorize(Read, s.routed(s.listDecisions))}},
		{"/customers/{id}/decisions/{event_id}/event", map[string]http.HandlerFunc{http.MethodGet: s.authorize(Read, s.routed(s.decisionEvent))}},
		{"/customers/{id}/watch", map[string]http.HandlerFunc{http.MethodGet: s.authorize(Read, s.admitWatch(s.routed(s.watchCustomer)))}},
		{"/watch", map[string]http.HandlerFunc{http.MethodGet: s.authorize(Read, s.watchAll)}},
		{"/healthz", map[string]http.HandlerFunc{http.MethodGet: s.healthz}},
		{"/readyz", map[string]http.HandlerFunc{http.MethodGet: s.readyz}},
		{"/metrics", map[string]http.HandlerFunc{http.MethodGet: metricsHandler(gatherer, s.log).ServeHTTP}},
		{"/openapi.yaml", map[string]http.HandlerFunc{http.MethodGet: serveOpenAPI}},
		{"/asyncapi.yaml", map[string]http.HandlerFunc{http.MethodGet: serveAsyncAPI}},
		{"/schemas/{name}", map[string]http.HandlerFunc{http.MethodGet: serveJSONSchema}},
	}
	if deps.Cluster != nil {
		c := &clusterRoutes{s: s, status: deps.Cluster}
		routes = append(routes, route{"/cluster", map[string]http.HandlerFunc{http.MethodGet: s.authorize(Read, c.cluster)}},
			route{"/cluster/instance", map[string]http.HandlerFunc{http.MethodGet: s.authorize(Read, c.instance)}})
	}
	for _, p := range deps.Pages {
		routes = append(routes, route{p.Pattern, map[string]http.HandlerFunc{cmp.Or(p.Method, http.MethodGet): s.authorize(p.Access, p.Handler.ServeHTTP)}})
	}
	mux := http.NewServeMux()
	for _, r := range routes {
		mux.Handle(r.pattern, m.instrument(r.pattern, r.methods))
		methods := make([]string, 0, len(r.methods))
		for method := range r.methods {
			methods = append(methods, method)
		}
		sort.Strings(methods)
		s.routes = append(s.routes, Route{Pattern: r.pattern, Methods: methods})
	}
	mux.Handle("/", m.instrument("other", map[string]http.HandlerFunc{}))
	s.handler = recoverPanics(s.log, s.servedBy(mux))
	return s, nil
}

// servedBy names this instance on every answer; a forwarded answer
// carries its owner's name instead (forwarder.forward).
func (s *Server) servedBy(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if self := s.AdvertisedURL(); self != "" {
			w.Header().Set(HeaderServedBy, self)
		}
		next.ServeHTTP(w, r)
	})
}

// AdvertisedURL returns the base URL other instances and clients reach
// this server at: Config.AdvertisedURL, or else the bound listen address,
// with the host name for a listener on every interface. It is empty
// before Listen.
func (s *Server) AdvertisedURL() string { return s.advertised }

// advertise sets advertised once the listener is bound.
func (s *Server) advertise(addr net.Addr) string {
	if s.cfg.AdvertisedURL != "" {
		return strings.TrimSuffix(s.cfg.AdvertisedURL, "/")
	}
	scheme := "http"
	if s.cfg.TLSCertFile != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if host, err = os.Hostname(); err != nil {
			host = "localhost"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// Routes lists the server's routes and their methods.
func (s *Server) Routes() []Route { return s.routes }

// Handler returns the server's HTTP handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Listen binds the listen address. Run calls it when it was not called.
func (s *Server) Listen() (net.Addr, error) {
	if s.listener != nil {
		return s.listener.Addr(), nil
	}
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", s.cfg.Addr, err)
	}
	s.listener = s.conns.wrap(l)
	s.advertised = s.advertise(l.Addr())
	return l.Addr(), nil
}

// Run serves until ctx is cancelled, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	addr, err := s.Listen()
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	s.log.Info("http server listening", "addr", addr.String())
	errc := make(chan error, 1)
	go func() {
		if s.cfg.TLSCertFile != "" {
			errc <- srv.ServeTLS(s.listener, s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
			return
		}
		errc <- srv.Serve(s.listener)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("failed to serve http: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("failed to shut down http server: %w", err)
	}
	return nil
}

// route maps a path pattern to its handlers by method, so that a wrong
// method gets a JSON 405 rather than the mux's plain-text one.
type route struct {
	pattern string
	methods map[string]http.HandlerFunc
}

func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("handler panicked", "panic", v, "method", r.Method, "path", r.URL.Path)
				writeError(w, http.StatusInternalServerError, "internal", "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

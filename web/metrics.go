package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, watchers, waiters, histories func() int64, ready func() bool) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfold_http_requests_total",
			Help: "HTTP requests served, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventfold_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route and method.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
	}
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventfold_watchers",
		Help: "Open change streams (GET /watch and /customers/{id}/watch).",
	}, func() float64 { return float64(watchers()) })
	waiting := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventfold_waiters",
		Help: "Requests waiting for a version or a decision (GET ?min_version=, POST events).",
	}, func() float64 { return float64(waiters()) })
	reading := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventfold_history_reads",
		Help: "History and time-travel reads in progress (GET /customers/{id}/events, ?version=, ?at=).",
	}, func() float64 { return float64(histories()) })
	readyGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventfold_ready",
		Help: "1 when /readyz answers 200 (view recovered, processor running), 0 otherwise.",
	}, func() float64 {
		if ready() {
			return 1
		}
		return 0
	})
	for _, c := range []prometheus.Collector{m.requests, m.duration, open, waiting, reading, readyGauge} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("failed to register http metrics: %w", err)
		}
	}
	return m, nil
}

// instrument dispatches by method and records every request under its
// route pattern, never under the raw path: ids must not become labels.
func (m *metrics) instrument(pattern string, methods map[string]http.HandlerFunc) http.Handler {
	allowed := make([]string, 0, len(methods))
	for method := range methods {
		allowed = append(allowed, method)
	}
	sort.Strings(allowed)
	allow := strings.Join(allowed, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		method := r.Method
		h, ok := methods[method]
		if !ok && method == http.MethodHead {
			h, ok = methods[http.MethodGet]
		}
		switch {
		case len(methods) == 0:
			writeError(rec, http.StatusNotFound, "not_found", "no such route: "+r.URL.Path)
		case !ok:
			method = "other" // unbounded client input must not become a label
			rec.Header().Set("Allow", allow)
			writeError(rec, http.StatusMethodNotAllowed, "method_not_allowed", "allowed: "+allow)
		default:
			h(rec, r)
		}
		m.requests.WithLabelValues(pattern, method, strconv.Itoa(rec.status)).Inc()
		m.duration.WithLabelValues(pattern, method).Observe(time.Since(start).Seconds())
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

// Flush lets streaming handlers flush through the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// metricsHandler serves the gatherer's metrics. A collector that cannot
// read Kafka (the lag gauges, while a broker is away or before a group's
// first commit) leaves its metric out and is logged; the rest of the
// scrape is served, rather than a 500 that would hide every metric.
func metricsHandler(g prometheus.Gatherer, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slogPrinter{log},
	})
}

// slogPrinter is promhttp's error log on slog, at debug level: a missing
// lag reading repeats at every scrape while Kafka is away.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Debug("metrics scrape incomplete", "error", fmt.Sprint(v...))
}

package ui

import (
	"net/http"
	"regexp"
	"strconv"

	"github.com/gorilla/mux"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/web/index"
	"github.com/lovoo/goka/web/monitor"
	"github.com/lovoo/goka/web/query"

	"github.com/eventfold/eventfold/internal/kafka"
)

// Where goka's pages are mounted.
const (
	gokaBase    = "/goka"
	monitorBase = gokaBase + "/monitor"
	queryBase   = gokaBase + "/query"
)

// gokaPages serves goka's own index, monitor and query pages. The goka
// processor and view are rebuilt after a failure, so the pages are built
// for each request around the ones running then: goka's servers keep
// what is attached to them forever. Building them is cheap; goka parses
// its templates on every request anyway.
type gokaPages struct {
	processor Processor
	view      View
	table     string
	log       goka.Logger
}

func newGokaPages(cfg Config) *gokaPages {
	return &gokaPages{
		processor: cfg.Processor,
		view:      cfg.View,
		table:     cfg.Topics.Table(),
		log:       kafka.GokaLogger(cfg.Logger, "goka-web"),
	}
}

func (g *gokaPages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var (
		processors []*goka.Processor
		views      []*goka.View
	)
	if g.processor != nil {
		if p := g.processor.GokaProcessor(); p != nil {
			processors = append(processors, p)
		}
	}
	if g.view != nil {
		if v := g.view.GokaView(); v != nil {
			views = append(views, v)
		}
	}
	// goka's monitor indexes its lists without checking the upper bound
	// and would panic on one past the end.
	if !monitorIndexInRange(r.URL.Path, len(processors), len(views)) {
		writeError(w, http.StatusNotFound, "not_found", "no such goka processor or view: "+r.URL.Path)
		return
	}
	router := mux.NewRouter()
	router.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such goka page: "+r.URL.Path)
	})
	mon := monitor.NewServer(monitorBase, router, monitor.WithLogger(g.log))
	for _, p := range processors {
		mon.AttachProcessor(p)
	}
	for _, v := range views {
		mon.AttachView(v)
	}
	qry := query.NewServer(queryBase, router, query.WithLogger(g.log))
	if g.view != nil {
		// The query page reads through the eventfold view, which always
		// reads the goka view running at the time.
		_ = qry.AttachSource(g.table, g.entry) // the only source of a new server: no name clash
	}
	idx := index.NewServer(gokaBase, router)
	idx.AddComponent(mon, "Monitor: the processor and the view")
	idx.AddComponent(qry, "Query: look up keys of "+g.table)
	localAssets(w, r, router)
}

// entry is the query page's getter: a nil value is goka's "not found".
func (g *gokaPages) entry(key string) (any, error) {
	c, err := g.view.Entry(key)
	if err != nil || c == nil {
		return nil, err
	}
	return c, nil
}

var monitorIndexPath = regexp.MustCompile(`^` + monitorBase + `/(processor|view|data/processor|data/view)/([^/]+)$`)

// monitorIndexInRange reports whether a monitor path's index, if any,
// names an attached processor or view.
func monitorIndexInRange(path string, processors, views int) bool {
	m := monitorIndexPath.FindStringSubmatch(path)
	if m == nil {
		return true
	}
	idx, err := strconv.Atoi(m[2])
	if err != nil {
		return true // goka answers 404 itself
	}
	n := views
	if m[1] == "processor" || m[1] == "data/processor" {
		n = processors
	}
	return idx >= 0 && idx < n
}

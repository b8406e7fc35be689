// Package ui serves eventfold's web page: a customer lookup with its event
// timeline and live updates, an operations view, and goka's own monitor
// and query pages under /goka/.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary
// (static/), with no framework and nothing fetched from elsewhere; it reads
// the service's own HTTP API, so it holds no business rules and adds no
// way to change state that the API does not have. The one endpoint of its
// own, GET /ui/api/dead-letters, reads the latest records of the
// dead-letter topic, which the API does not serve.
//
// It must not touch the fold, the table or the API's routes: it only adds
// web.Pages beside them.
package ui

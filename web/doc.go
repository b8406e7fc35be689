// Package web is eventfold's HTTP interface: customer lookups, listings,
// health, readiness and Prometheus metrics.
//
// It turns requests into calls on the views package and holds no business
// rules. Every error is JSON {"error": "<code>", "message": "..."} with a
// 4xx status; a handler never panics into a 500 by design, and a recovered
// panic is still answered with JSON.
package web

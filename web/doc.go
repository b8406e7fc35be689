// Package web is eventfold's HTTP interface: customer lookups, listings
// and search, writes of events, history and time travel, change streams,
// health, readiness, the cluster's status (cluster.go), Prometheus metrics
// and the API's documents, with the bearer-token check (auth.go) that the
// pages mounted beside the API (Deps.Pages) pass through too.
//
// It turns requests into calls on the views package and a producer, and
// holds no business rules. Every error is JSON {"error": "<code>",
// "message": "..."}: 4xx for the request, 503 for a dependency that cannot
// answer (Kafka, a view still recovering); a handler never panics into a
// 500 by design, and a recovered panic is still answered with JSON.
package web

// Package soak drives eventfold with a steady mixed load for a long time
// and samples what the process holds: goroutines, heap and resident set.
// It runs in the service's own process (the e2e tests start the service
// in process), so the figures are the service's plus the load's; the load
// is stopped before the figures that are compared are taken.
//
// # Load
//
//   - a producer appends a generated stream of customer events straight
//     to the events topic at a fixed rate, and folds the same stream with
//     the pure fold, so that the expected state of every customer it
//     writes is known;
//   - lookup clients read states, histories, lists and metrics;
//   - writers POST events with If-Match to customers of their own;
//   - watchers open change streams, read them for a while, hang up and
//     connect again.
//
// # Phases
//
// A warm-up runs the load once, so that connections, pools and caches the
// service builds lazily exist. Then the load stops, the goroutines settle
// and a baseline is taken after a forced GC. The measured load runs, with a
// sample every few seconds; it stops, the goroutines settle again, and the
// final figures are taken the same way as the baseline.
//
// The package talks to the service only over HTTP and Kafka, as any
// client would; it holds no business rules beyond the fold it imports.
package soak

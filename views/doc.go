// Package views serves reads of the customer table.
//
// A [View] replicates eventfold's goka group table into local storage and
// answers lookups and listings from it. It reports readiness (the table is
// recovered), and announces every change of a customer through a [Hub], so
// that readers can wait for a version (read-your-writes) or watch changes.
//
// It knows the state type of the processor package and nothing of the
// fold's rules, and it never writes to Kafka.
package views

// Package processor owns eventfold's event contract and its fold.
//
// # Event contract
//
// Every record on the events topic is keyed by a customer id and carries a
// CloudEvents 1.0 event in JSON structured mode. [Decode] turns a record
// into an [Event] or a malformed error; it never looks at state.
//
// # The fold
//
// [Apply] is a pure, deterministic function from a [Customer] and an
// [Event] to the next Customer and a [Decision]. It knows nothing of Kafka,
// goka or clocks, so replaying the same log always yields the same table,
// and history and time travel use the very same function.
//
// # The goka processor
//
// [Processor] is a thin goka adapter around Apply: it consumes the events
// topic, folds each key into the group table, and sends malformed and
// wrong-partition records to the dead-letter topic. It never writes a
// state over [MaxStateBytes]: the contract's bounds keep every state under
// it (bounds.go), and an event whose state would not fit is dead-lettered.
// It must not serve reads: that is the views package's job.
package processor

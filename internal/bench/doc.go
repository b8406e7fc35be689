// Package bench measures eventfold end to end, like Kafka's producer and
// consumer perf tools: it runs the service in process (the processor, a
// view and the HTTP server) against a broker, loads it, and measures each
// scenario beside a baseline taken in the same run on the same data, so
// that a noisy machine shows up in both.
//
// # Scenarios
//
//   - fold: produce the events with a fast kgo producer (baseline 1), read
//     them back with a bare consumer (baseline 2: the client's limit), and
//     time a fresh processor group folding all of them, from its first
//     record to its last table write.
//   - recover: time fresh views (leveldb, like serve, and in memory) to
//     Recovered, beside a bare consumer of the table topic. With a serve
//     binary it also restarts `eventfold serve` as a child process and
//     reads its peak RSS.
//   - lookup: GET /customers/{id} from concurrent clients, beside a
//     fixed-body handler mounted on the same http.Server.
//   - write: POST /customers/{id}/events from concurrent writers, beside
//     the bare publish of the same events to Kafka.
//
// The package drives the service only through the public constructors of
// processor, views and web, as main wires them; it must not reach into
// their internals, and it holds no business rules.
package bench

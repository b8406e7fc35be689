// Package crash runs the parts of a crash campaign against eventfold and
// judges what the campaign left behind. e2e/crash_test.go decides what to
// kill and when; this package holds what does not depend on that:
//
//   - ingest.go, writers.go: the load. A paced producer of generated
//     events, and HTTP writers that rename customers with If-Match and
//     retry an uncertain answer with the same event id.
//   - process.go, group.go, kill.go: the faults. A process that can be
//     SIGKILLed and started again on the same arguments, probes of the
//     consumer group's progress, and the record of each kill's recovery.
//   - log.go, fold.go, table.go: the reference. The events topic and the
//     group table read back from Kafka, and the log folded with the
//     service's own pure fold, per partition in offset order.
//   - audit.go, compare.go, diverge.go, service.go, report.go: the
//     judgement. Acknowledged writes against the fold, served and stored
//     states against it, and the figures of a campaign.
//
// A lost event shows as a customer behind the fold, an event applied twice
// as one ahead of it or as an id the fold accepted twice.
package crash

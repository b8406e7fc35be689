// Package e2e holds eventfold's end-to-end tests: the pipeline in process
// against kfake, the built binary with its embedded broker and real
// clients (kcat), and the service beside real Apache Kafka.
package e2e

#!/usr/bin/env bash
# The whole eventfold test suite, real Apache Kafka included. This is the
# README's test command and what CI runs.
#
#   1. installs the third-party tools the tests use (kcat, confluent-kafka,
#      prometheus) from Debian and PyPI: scripts/install-tools.sh
#   2. starts a fresh single-node Apache Kafka 4 from Maven Central on
#      127.0.0.1:19092: deploy/kafka/kafka.sh
#   3. vets and runs every Go test against it (kfake in process, the built
#      binary, real Kafka), then every Go benchmark once so none can rot
#   4. stops the broker, whatever happened
#
# Environment: GO_TEST_FLAGS adds flags to `go test` (e.g. -run, -v).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

start=$(date +%s)
scripts/install-tools.sh

echo "==> go vet"
go vet ./...

echo "==> starting Apache Kafka"
deploy/kafka/kafka.sh reset >/dev/null
trap 'deploy/kafka/kafka.sh stop >/dev/null 2>&1 || true' EXIT
deploy/kafka/kafka.sh start
export EVENTFOLD_TEST_KAFKA
EVENTFOLD_TEST_KAFKA=$(deploy/kafka/kafka.sh bootstrap)
export PATH="$PWD/.build/venv/bin:$PATH" # python with confluent-kafka

echo "==> go test (Kafka at $EVENTFOLD_TEST_KAFKA)"
# shellcheck disable=SC2086 # GO_TEST_FLAGS is a list of flags
go test -count=1 -timeout 20m ${GO_TEST_FLAGS:-} ./...

echo "==> go benchmarks, once each"
go test -count=1 -run '^$' -bench . -benchtime=1x ./...

echo "==> suite passed in $(( $(date +%s) - start ))s"

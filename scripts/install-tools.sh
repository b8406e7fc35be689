#!/usr/bin/env bash
# Install the third-party tools the eventfold test suite needs on a Debian
# machine (run as root). Idempotent: anything already present is skipped, so a
# second run only prints versions.
#
# Usage: scripts/install-tools.sh [kcat] [python] [prometheus] [dockerlint] [ui] [asyncapi] [java] [all]
#   (no argument = all)
#
#   kcat        Debian package `kcat` (Kafka CLI producer/consumer)
#   python      virtualenv in <repo>/.build/venv with confluent-kafka,
#               schemathesis and cloudevents, the Python CloudEvents SDK (pinned)
#   prometheus  Debian package `prometheus` (provides `prometheus`, `promtool`)
#   dockerlint  Dockerfile linters under .build/ (scripts/lint-dockerfile.sh --install)
#   ui          Debian package `chromium`, the headless browser of e2e/ui_test.go
#   asyncapi    npm @asyncapi/parser (pinned) in <repo>/.build/asyncapi, which
#               validates web/asyncapi.yaml (e2e/asyncapi_test.go)
#   java        Debian packages `maven` and `default-jdk-headless`, which build
#               and run the Java CloudEvents SDK producer (e2e/cesdk_test.go)
#               and the bench's Kafka Streams baseline (internal/bench/kstreams,
#               its jars from Maven Central into .build/m2 on first use)
#
# Environment:
#   PYTHON      interpreter used to create the venv (default: python3 on PATH)
#
# `apt-get update` is only run when a Debian package is actually missing.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
VENV_DIR="$REPO_ROOT/.build/venv"

# confluent-kafka: has manylinux cp311 binary wheels (bundled librdkafka).
CONFLUENT_KAFKA_VERSION="2.16.1"
# schemathesis: checks the live HTTP API against web/openapi.yaml
# (e2e/openapi_test.go); its 4.x command line differs from 3.x.
SCHEMATHESIS_VERSION="4.32.5"
# cloudevents: the Python CloudEvents SDK, a producer of e2e/cesdk_test.go;
# 2.x has the Kafka binding in cloudevents.core.bindings.kafka.
CLOUDEVENTS_VERSION="2.2.0"
# @asyncapi/parser: the AsyncAPI project's own parser and validator.
ASYNCAPI_PARSER_VERSION="3.6.3"
ASYNCAPI_DIR="$REPO_ROOT/.build/asyncapi"

export DEBIAN_FRONTEND=noninteractive

log() { printf '==> %s\n' "$*"; }
die() { printf 'install-tools: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# ---------------------------------------------------------------- arguments
want_kcat=0 want_python=0 want_prometheus=0 want_lint=0 want_ui=0 want_asyncapi=0 want_java=0
if [[ $# -eq 0 ]]; then
    set -- all
fi
for arg in "$@"; do
    case "$arg" in
        kcat) want_kcat=1 ;;
        python) want_python=1 ;;
        prometheus) want_prometheus=1 ;;
        dockerlint) want_lint=1 ;;
        ui) want_ui=1 ;;
        asyncapi) want_asyncapi=1 ;;
        java) want_java=1 ;;
        all) want_kcat=1; want_python=1; want_prometheus=1; want_lint=1; want_ui=1; want_asyncapi=1; want_java=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown tool group: $arg" ;;
    esac
done

# ---------------------------------------------------------------- apt helpers
APT_UPDATED=0
INSTALLED=()   # what this run actually installed

pkg_installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == "installed" ]]
}

# apt_ensure PKG... : install the given Debian packages that are missing.
apt_ensure() {
    local missing=() p
    for p in "$@"; do
        pkg_installed "$p" || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    [[ $EUID -eq 0 ]] || die "need root to apt-get install: ${missing[*]}"
    if [[ $APT_UPDATED -eq 0 ]]; then
        log "apt-get update"
        apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install ${missing[*]}"
    # Don't let package maintainer scripts start daemons (e.g. prometheus);
    # tests start what they need themselves. Only add a policy if none exists.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        added_policy=1
    fi
    # apt/debconf chatter goes to a log that is shown only on failure.
    local rc=0 aptlog
    aptlog="$(mktemp)"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$aptlog" 2>&1 || rc=$?
    if [[ $added_policy -eq 1 ]]; then rm -f "$policy"; fi
    if [[ $rc -ne 0 ]]; then
        cat "$aptlog" >&2
        rm -f "$aptlog"
        die "apt-get install ${missing[*]} failed (exit $rc)"
    fi
    rm -f "$aptlog"
    INSTALLED+=("${missing[@]}")
}

# ---------------------------------------------------------------- groups
# command_ensure CMD PACKAGE: installs PACKAGE unless CMD is on PATH, and
# dies unless it is then.
command_ensure() {
    if ! command -v "$1" >/dev/null 2>&1; then
        apt_ensure "$2"
    fi
    command -v "$1" >/dev/null 2>&1 || die "$1 not on PATH after install"
}

install_kcat() {
    command_ensure kcat kcat
}

install_prometheus() {
    if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
        apt_ensure prometheus
    fi
    command -v promtool >/dev/null 2>&1 || die "promtool not on PATH after install"
}

venv_ok() {
    [[ -x "$VENV_DIR/bin/python" ]] &&
        "$VENV_DIR/bin/python" - "$CONFLUENT_KAFKA_VERSION" "$SCHEMATHESIS_VERSION" "$CLOUDEVENTS_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
import confluent_kafka  # noqa: F401  (checks the native extension loads)
import schemathesis  # noqa: F401
import cloudevents.core.bindings.kafka  # noqa: F401
sys.exit(0 if (version("confluent-kafka"), version("schemathesis"), version("cloudevents")) == tuple(sys.argv[1:4]) else 1)
EOF
}

install_python() {
    if venv_ok; then
        return 0
    fi
    local py="${PYTHON:-}"
    if [[ -z $py ]]; then
        if command -v python3 >/dev/null 2>&1; then
            py="$(command -v python3)"
        else
            apt_ensure python3 python3-venv
            py=/usr/bin/python3
        fi
    fi
    # Debian's own python3 needs python3-venv for `-m venv` (ensurepip).
    if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        if [[ "$py" == /usr/bin/python3* ]]; then
            apt_ensure python3-venv
        else
            die "$py cannot create virtualenvs (no venv/ensurepip module)"
        fi
    fi
    # Recreate a broken venv (e.g. its base interpreter was removed).
    if [[ -d "$VENV_DIR" ]] && ! "$VENV_DIR/bin/python" -c 'pass' >/dev/null 2>&1; then
        log "removing broken venv $VENV_DIR"
        rm -rf "$VENV_DIR"
    fi
    if [[ ! -x "$VENV_DIR/bin/python" ]]; then
        log "creating venv .build/venv with $("$py" --version 2>&1)"
        mkdir -p "$(dirname "$VENV_DIR")"
        "$py" -m venv "$VENV_DIR"
    fi
    log "pip install confluent-kafka==$CONFLUENT_KAFKA_VERSION schemathesis==$SCHEMATHESIS_VERSION cloudevents==$CLOUDEVENTS_VERSION"
    "$VENV_DIR/bin/python" -m pip install -q --disable-pip-version-check \
        --only-binary=confluent-kafka "confluent-kafka==$CONFLUENT_KAFKA_VERSION" \
        "schemathesis==$SCHEMATHESIS_VERSION" "cloudevents==$CLOUDEVENTS_VERSION"
    venv_ok || die "confluent-kafka $CONFLUENT_KAFKA_VERSION, schemathesis $SCHEMATHESIS_VERSION or cloudevents $CLOUDEVENTS_VERSION does not import in $VENV_DIR"
    INSTALLED+=("confluent-kafka==$CONFLUENT_KAFKA_VERSION schemathesis==$SCHEMATHESIS_VERSION cloudevents==$CLOUDEVENTS_VERSION (.build/venv)")
}

# Debian's Chromium: test tools' own browser downloads cannot be fetched here.
install_ui() {
    command_ensure chromium chromium
}

install_java() {
    if ! command -v mvn >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1; then
        apt_ensure maven default-jdk-headless
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not on PATH after install"
}

asyncapi_ok() {
    [[ "$(node -p 'require(process.argv[1]).version' "$ASYNCAPI_DIR/node_modules/@asyncapi/parser/package.json" 2>/dev/null)" == "$ASYNCAPI_PARSER_VERSION" ]]
}

# The parser as an npm package under .build/, not a global install, so the
# repository's tests find the pinned version wherever they run.
install_asyncapi() {
    if asyncapi_ok; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 || apt_ensure nodejs npm
    mkdir -p "$ASYNCAPI_DIR"
    [[ -f "$ASYNCAPI_DIR/package.json" ]] || printf '{"private": true}\n' >"$ASYNCAPI_DIR/package.json"
    log "npm install @asyncapi/parser@$ASYNCAPI_PARSER_VERSION (.build/asyncapi)"
    (cd "$ASYNCAPI_DIR" && npm install --no-audit --no-fund --loglevel=error "@asyncapi/parser@$ASYNCAPI_PARSER_VERSION")
    asyncapi_ok || die "@asyncapi/parser $ASYNCAPI_PARSER_VERSION is not in $ASYNCAPI_DIR after npm install"
    INSTALLED+=("@asyncapi/parser@$ASYNCAPI_PARSER_VERSION (.build/asyncapi)")
}

# ---------------------------------------------------------------- main
[[ $want_kcat -eq 1 ]] && install_kcat
[[ $want_python -eq 1 ]] && install_python
[[ $want_prometheus -eq 1 ]] && install_prometheus
[[ $want_ui -eq 1 ]] && install_ui
[[ $want_asyncapi -eq 1 ]] && install_asyncapi
[[ $want_java -eq 1 ]] && install_java
# Dockerfile linters (npm dockerfile-utils, PyPI hadolint) under .build/.
[[ $want_lint -eq 1 ]] && "$SCRIPT_DIR/lint-dockerfile.sh" --install

if [[ ${#INSTALLED[@]} -eq 0 ]]; then
    log "installed: nothing (already present)"
else
    log "installed: ${INSTALLED[*]}"
fi

if [[ $want_kcat -eq 1 ]]; then
    # `kcat -V` prints a banner; keep its "Version ..." line.
    printf 'kcat:       %s\n' "$(kcat -V 2>&1 | grep -m1 '^Version' || kcat -V 2>&1 | head -n 1)"
fi
if [[ $want_python -eq 1 ]]; then
    printf 'python:     %s (.build/venv)\n' "$("$VENV_DIR/bin/python" --version 2>&1)"
    printf 'confluent_kafka: %s\n' "$("$VENV_DIR/bin/python" -c \
        'import confluent_kafka; print(confluent_kafka.version(), confluent_kafka.libversion())')"
    printf 'schemathesis: %s\n' "$("$VENV_DIR/bin/schemathesis" --version 2>&1)"
fi
if [[ $want_prometheus -eq 1 ]]; then
    printf 'prometheus: %s\n' "$(prometheus --version 2>&1 | head -n 1)"
    printf 'promtool:   %s\n' "$(promtool --version 2>&1 | head -n 1)"
fi
if [[ $want_ui -eq 1 ]]; then
    # Debian's launcher script warns on stderr; the version is on stdout.
    printf 'chromium:   %s\n' "$(chromium --version 2>/dev/null | head -n 1)"
fi

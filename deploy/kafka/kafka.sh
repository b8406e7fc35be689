#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, broker+controller in one JVM) on loopback,
# for tests and developers. Kafka comes from Maven Central via deploy/kafka/pom.xml;
# no docker, no tarball download. Run `deploy/kafka/kafka.sh help` for the commands.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
POM="$SCRIPT_DIR/pom.xml"

# ---- settings (environment) -------------------------------------------------------------
KAFKA_HOME_DIR="${KAFKA_HOME_DIR:-$REPO_ROOT/.build/kafka}"
# Jars are shared by every home dir (a second broker in a temp dir needs no second fetch).
KAFKA_LIBS_DIR="${KAFKA_LIBS_DIR:-$REPO_ROOT/.build/kafka/libs}"
KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"
PORT_FROM_ENV="${KAFKA_PORT:+yes}"
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_HEAP="${KAFKA_HEAP:--Xms128m -Xmx512m}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}"
KAFKA_TOOL_OPTS="${KAFKA_TOOL_OPTS:--Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC}"
KAFKA_WAIT_TIMEOUT="${KAFKA_WAIT_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
KAFKA_LOG_LEVEL="${KAFKA_LOG_LEVEL:-INFO}"
# Extra server.properties lines (newline separated), appended last so they win.
KAFKA_EXTRA_CONFIG="${KAFKA_EXTRA_CONFIG:-}"

if [[ -n "${JAVA:-}" ]]; then :
elif [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then JAVA="$JAVA_HOME/bin/java"
else JAVA="java"; fi

DATA_DIR="$KAFKA_HOME_DIR/data"
PID_FILE="$KAFKA_HOME_DIR/kafka.pid"
SERVER_LOG="$KAFKA_HOME_DIR/server.log"
SERVER_PROPS="$KAFKA_HOME_DIR/server.properties"
LOG4J_SERVER="$KAFKA_HOME_DIR/log4j2.properties"
LOG4J_TOOLS="$KAFKA_HOME_DIR/tools-log4j2.properties"
PROBE_PROPS="$KAFKA_HOME_DIR/probe-admin.properties"
STAMP="$KAFKA_LIBS_DIR/.fetched"
BOOTSTRAP="$KAFKA_HOST:$KAFKA_PORT"
# Commands other than `start` talk to the broker this home dir last started: unless KAFKA_PORT
# is set, take its address from the server.properties that `start` wrote.
if [[ -z "$PORT_FROM_ENV" && "${1:-}" != start && -f "$SERVER_PROPS" ]]; then
  _listener="$(sed -n 's|^listeners=.*PLAINTEXT://\([^,]*\).*|\1|p' "$SERVER_PROPS" | head -n1)"
  [[ -n "$_listener" ]] && BOOTSTRAP="$_listener"
  unset _listener
fi

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

now_ms() { date +%s%3N; }
secs_since() { # $1 = start in ms -> "12.3"
  local d=$(( $(now_ms) - $1 ))
  printf '%d.%d' $((d / 1000)) $(((d % 1000) / 100))
}

# The Kafka version: $KAFKA_VERSION, else the kafka.version property in pom.xml.
kafka_version() {
  if [[ -n "${KAFKA_VERSION:-}" ]]; then echo "$KAFKA_VERSION"; return; fi
  sed -n 's:.*<kafka.version>\([^<]*\)</kafka.version>.*:\1:p' "$POM" | head -n1
}

# What the stamp records: the version plus a checksum of pom.xml (so editing the pom refetches).
stamp_content() {
  echo "kafka.version=$(kafka_version)"
  echo "pom.sha256=$(sha256sum "$POM" | cut -d' ' -f1)"
}

fetched() {
  [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$(stamp_content)" ]] \
    && compgen -G "$KAFKA_LIBS_DIR/kafka_2.13-*.jar" >/dev/null
}

cmd_fetch() {
  mkdir -p "$(dirname "$KAFKA_LIBS_DIR")"
  # One fetch at a time (parallel test runs may all call `start`).
  exec 8>"$(dirname "$KAFKA_LIBS_DIR")/.fetch.lock"
  flock -w 600 8 || die "timed out waiting for another fetch (lock $(dirname "$KAFKA_LIBS_DIR")/.fetch.lock)"
  if fetched; then
    [[ "${1:-}" == "--quiet" ]] || log "Kafka $(kafka_version) jars already in $KAFKA_LIBS_DIR"
    exec 8>&-
    return 0
  fi
  command -v mvn >/dev/null || die "mvn (Maven) not found on PATH; it is needed to fetch Kafka"
  local version start tmp
  version="$(kafka_version)"
  start="$(now_ms)"
  tmp="$KAFKA_LIBS_DIR.tmp.$$"
  rm -rf "$tmp"
  log "fetching Kafka $version jars from Maven Central into $KAFKA_LIBS_DIR ..."
  local -a mvn_args=(-B -q -Dstyle.color=never -f "$POM" -Dkafka.libs.dir="$tmp")
  [[ -n "${KAFKA_VERSION:-}" ]] && mvn_args+=(-Dkafka.version="$KAFKA_VERSION")
  # Debian's Maven 3.8 prints stray ANSI resets even with -B -q: strip them (pipefail keeps mvn's status).
  # shellcheck disable=SC2086  # MAVEN_ARGS is a word list on purpose
  if ! mvn "${mvn_args[@]}" ${MAVEN_ARGS:-} dependency:copy-dependencies 2>&1 \
       | sed -u 's/\x1b\[[0-9;]*m//g' >&2; then
    rm -rf "$tmp"
    die "Maven could not fetch Kafka $version (see the output above)"
  fi
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || { rm -rf "$tmp"; die "fetch produced no kafka_2.13 jar"; }
  stamp_content >"$tmp/.fetched"
  rm -rf "$KAFKA_LIBS_DIR"
  mv "$tmp" "$KAFKA_LIBS_DIR"
  log "fetched Kafka $version: $(find "$KAFKA_LIBS_DIR" -name '*.jar' | wc -l) jars, $(du -sh "$KAFKA_LIBS_DIR" | cut -f1) in $(secs_since "$start") s"
  exec 8>&-
}

ensure_fetched() { fetched || cmd_fetch; }

check_java() {
  command -v "$JAVA" >/dev/null || die "java not found (set JAVA or JAVA_HOME); Kafka 4 needs Java 17+"
  local v
  v="$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  [[ -n "$v" && "$v" -ge 17 ]] || die "Kafka 4 needs Java 17 or newer; '$JAVA' is version '${v:-unknown}'"
}

# write_file PATH < content: atomic (tmp + rename), and only when the content changed, so that
# tools running in parallel never read a half-written file.
write_file() {
  local content
  content="$(cat)"
  [[ -f "$1" && "$(cat "$1")" == "$content" ]] && return 0
  printf '%s\n' "$content" >"$1.tmp.$$"
  mv -f "$1.tmp.$$" "$1"
}

write_tool_files() {
  mkdir -p "$KAFKA_HOME_DIR"
  write_file "$PROBE_PROPS" <<'EOF'
# Admin client settings of the readiness probe run by `kafka.sh wait`: fail fast, then retry.
request.timeout.ms=5000
default.api.timeout.ms=8000
socket.connection.setup.timeout.ms=2000
socket.connection.setup.timeout.max.ms=2000
EOF
  write_file "$LOG4J_TOOLS" <<'EOF'
# log4j2 config for the command-line tools run by kafka.sh (warnings to stderr only).
status = warn
shutdownHook = disable
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
EOF
}

# Run a Java main class with the Kafka classpath: run_class CLASS args...
run_class() {
  ensure_fetched >&2
  check_java
  write_tool_files
  # shellcheck disable=SC2086  # option lists are word lists on purpose
  "$JAVA" $KAFKA_TOOL_OPTS -Dlog4j2.configurationFile="$LOG4J_TOOLS" \
    -cp "$KAFKA_LIBS_DIR/*" "$@"
}

# ---- process handling ---------------------------------------------------------------------

# Is $1 a live broker started by this script for this home dir? (guards against pid reuse)
is_our_broker() {
  local pid="$1" cmdline
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *kafka.Kafka* && "$cmdline" == *"$SERVER_PROPS"* ]]
}

# Prints the pid of the running broker; returns 1 when it is not running.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$PID_FILE")"
  is_our_broker "$pid" || return 1
  echo "$pid"
}

# not_running forgets a stale pid file and says there is no broker to stop.
not_running() {
  rm -f "$PID_FILE"
  echo "Kafka not running"
}

port_open() { # $1 host $2 port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

lock_home() {
  mkdir -p "$KAFKA_HOME_DIR"
  exec 9>"$KAFKA_HOME_DIR/.lock"
  flock -w 120 9 || die "another kafka.sh is busy with $KAFKA_HOME_DIR (lock $KAFKA_HOME_DIR/.lock)"
}

show_log_tail() {
  if [[ -f "$SERVER_LOG" ]]; then
    log "last lines of $SERVER_LOG:"
    tail -n "${1:-40}" "$SERVER_LOG" >&2
  fi
}

write_config() {
  mkdir -p "$KAFKA_HOME_DIR" "$DATA_DIR"
  cat >"$SERVER_PROPS" <<EOF
# Written by deploy/kafka/kafka.sh on every start; edits here are overwritten.
# Use KAFKA_EXTRA_CONFIG for extra settings.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$DATA_DIR

# Single node: every internal topic with replication factor 1.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Tests: no rebalance delay, topics only when asked for, compaction runs promptly.
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.cleaner.backoff.ms=1000
# After a SIGKILL the restarted broker cannot register until the controller has expired the old
# registration (broker.session.timeout.ms, default 9 s); shorter here so kill + start is quick.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
num.network.threads=2
num.io.threads=4
EOF
  if [[ -n "$KAFKA_EXTRA_CONFIG" ]]; then
    printf '\n# KAFKA_EXTRA_CONFIG\n%s\n' "$KAFKA_EXTRA_CONFIG" >>"$SERVER_PROPS"
  fi
  cat >"$LOG4J_SERVER" <<EOF
# log4j2 config of the broker started by kafka.sh: everything to stdout (= server.log).
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = $KAFKA_LOG_LEVEL
rootLogger.appenderRef.stdout.ref = STDOUT
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.netclient.name = org.apache.kafka.clients.NetworkClient
logger.netclient.level = WARN
EOF
  write_tool_files
}

format_storage() {
  [[ -f "$DATA_DIR/meta.properties" ]] && return 0
  # A Kafka Uuid: 16 random bytes, URL-safe base64 without padding (22
  # chars). A base64url id can start with "-", which kafka-storage's argument
  # parser takes for an option (1 start in 32 failed so); Kafka's own
  # Uuid.randomUuid draws again in that case, and so does this.
  local cluster_id="-"
  while [[ "$cluster_id" == -* ]]; do
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  done
  log "formatting KRaft storage in $DATA_DIR (cluster id $cluster_id)"
  # shellcheck disable=SC2086
  "$JAVA" $KAFKA_TOOL_OPTS -Dlog4j2.configurationFile="$LOG4J_TOOLS" -cp "$KAFKA_LIBS_DIR/*" \
    kafka.tools.StorageTool format --config "$SERVER_PROPS" --cluster-id "$cluster_id" --ignore-formatted \
    >>"$KAFKA_HOME_DIR/format.log" 2>&1 \
    || { tail -n 20 "$KAFKA_HOME_DIR/format.log" >&2; die "formatting storage failed (see $KAFKA_HOME_DIR/format.log)"; }
}

cmd_start() {
  BOOTSTRAP="$KAFKA_HOST:$KAFKA_PORT"
  lock_home
  local pid
  if pid="$(running_pid)"; then
    echo "Kafka already running (pid $pid) on $BOOTSTRAP"
    exec 9>&-
    cmd_wait
    return 0
  fi
  rm -f "$PID_FILE"
  ensure_fetched
  check_java
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_open "$KAFKA_HOST" "$p"; then
      die "port $KAFKA_HOST:$p is already in use by another process (not the broker of $KAFKA_HOME_DIR); set KAFKA_PORT / KAFKA_CONTROLLER_PORT"
    fi
  done
  write_config
  format_storage
  [[ -f "$SERVER_LOG" ]] && mv -f "$SERVER_LOG" "$SERVER_LOG.1"
  START_MS="$(now_ms)"
  log "starting Kafka $(kafka_version) on $BOOTSTRAP (controller $KAFKA_HOST:$KAFKA_CONTROLLER_PORT), log $SERVER_LOG"
  # setsid: own session, so Ctrl-C in the calling terminal or the end of the calling test's
  # process group leaves it alone; 8>&- 9>&-: the broker must not inherit (and hold) our locks.
  # shellcheck disable=SC2086
  nohup setsid "$JAVA" $KAFKA_HEAP $KAFKA_JVM_OPTS \
    -Dlog4j2.configurationFile="$LOG4J_SERVER" \
    -Dkafka.logs.dir="$KAFKA_HOME_DIR" \
    -cp "$KAFKA_LIBS_DIR/*" kafka.Kafka "$SERVER_PROPS" \
    </dev/null >>"$SERVER_LOG" 2>&1 8>&- 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
  exec 9>&-
  cmd_wait
}

# Ready = the process is alive, the port accepts connections and a metadata request
# (list topics through the admin client) succeeds.
cmd_wait() {
  local start="${START_MS:-$(now_ms)}" deadline pid out=""
  deadline=$(( $(now_ms) + KAFKA_WAIT_TIMEOUT * 1000 ))
  ensure_fetched
  check_java
  write_tool_files
  while :; do
    if [[ -f "$PID_FILE" ]] && ! pid="$(running_pid)"; then
      log "the broker process exited before it became ready"
      rm -f "$PID_FILE"
      show_log_tail 40
      return 1
    fi
    if port_open "${BOOTSTRAP%:*}" "${BOOTSTRAP##*:}"; then
      # shellcheck disable=SC2086
      if out="$(timeout 30 "$JAVA" $KAFKA_TOOL_OPTS -Dlog4j2.configurationFile="$LOG4J_TOOLS" \
                 -cp "$KAFKA_LIBS_DIR/*" org.apache.kafka.tools.TopicCommand \
                 --bootstrap-server "$BOOTSTRAP" --command-config "$PROBE_PROPS" --list 2>&1)"; then
        echo "Kafka ready on $BOOTSTRAP after $(secs_since "$start") s"
        return 0
      fi
    fi
    if (( $(now_ms) >= deadline )); then
      log "Kafka not ready on $BOOTSTRAP after ${KAFKA_WAIT_TIMEOUT} s"
      [[ -n "$out" ]] && { log "last metadata check said:"; tail -n 5 <<<"$out" >&2; }
      show_log_tail 40
      return 1
    fi
    sleep 0.3
  done
}

cmd_stop() {
  lock_home
  local pid
  pid="$(running_pid)" || { not_running; return 0; }
  local start i
  start="$(now_ms)"
  kill -TERM "$pid" 2>/dev/null || true
  for (( i = 0; i < KAFKA_STOP_TIMEOUT * 10; i++ )); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "broker (pid $pid) still alive after ${KAFKA_STOP_TIMEOUT} s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PID_FILE"
  echo "Kafka stopped (pid $pid) in $(secs_since "$start") s"
}

cmd_kill() {
  lock_home
  local pid
  pid="$(running_pid)" || { not_running; return 0; }
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$PID_FILE"
  echo "Kafka killed (pid $pid, SIGKILL); data kept in $DATA_DIR"
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    echo "running"
    echo "pid:       $pid"
  else
    echo "not running"
  fi
  echo "bootstrap: $BOOTSTRAP"
  echo "version:   $(kafka_version)"
  echo "home:      $KAFKA_HOME_DIR"
  [[ -n "${pid:-}" ]]  || return 3
}

cmd_reset() {
  cmd_stop
  lock_home
  rm -rf "$DATA_DIR" "$KAFKA_HOME_DIR/format.log"
  echo "Kafka data deleted ($DATA_DIR)"
}

# Tool short names -> main classes (Kafka 4.x).
tool_class() {
  case "$1" in
    topics)               echo org.apache.kafka.tools.TopicCommand ;;
    console-producer)     echo org.apache.kafka.tools.ConsoleProducer ;;
    console-consumer)     echo org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    consumer-groups)      echo org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    configs)              echo org.apache.kafka.tools.ConfigCommand ;;
    get-offsets)          echo org.apache.kafka.tools.GetOffsetShell ;;
    delete-records)       echo org.apache.kafka.tools.DeleteRecordsCommand ;;
    producer-perf-test)   echo org.apache.kafka.tools.ProducerPerformance ;;
    consumer-perf-test)   echo org.apache.kafka.tools.ConsumerPerformance ;;
    broker-api-versions)  echo org.apache.kafka.tools.BrokerApiVersionsCommand ;;
    metadata-quorum)      echo org.apache.kafka.tools.MetadataQuorumCommand ;;
    transactions)         echo org.apache.kafka.tools.TransactionsCommand ;;
    dump-log)             echo org.apache.kafka.tools.DumpLogSegments ;;
    storage)              echo kafka.tools.StorageTool ;;
    *.*)                  echo "$1" ;;
    *)                    return 1 ;;
  esac
}

# `tool NAME|CLASS args...`: adds --bootstrap-server for the local broker unless given
# (or unless the tool takes no such option).
cmd_tool() {
  [[ $# -ge 1 ]] || die "usage: kafka.sh tool NAME|MAIN_CLASS [args...]"
  local name="$1" class
  shift
  class="$(tool_class "$name")" || die "unknown tool '$name' (give a main class, e.g. org.apache.kafka.tools.TopicCommand)"
  local -a args=("$@")
  case "$name" in
    topics|console-producer|console-consumer|consumer-groups|configs|get-offsets|delete-records|\
    producer-perf-test|consumer-perf-test|broker-api-versions|metadata-quorum|transactions)
      local a has=0
      for a in "${args[@]}"; do
        [[ "$a" == --bootstrap-server* || "$a" == --bootstrap-controller* ]] && has=1
      done
      (( has )) || args=(--bootstrap-server "$BOOTSTRAP" "${args[@]}")
      ;;
  esac
  run_class "$class" "${args[@]}"
}

usage() {
  cat <<EOF
usage: deploy/kafka/kafka.sh COMMAND [args]

Single-node Apache Kafka $(kafka_version) (KRaft) on $BOOTSTRAP, jars from Maven Central.

  fetch               download the Kafka jars with Maven (once; skipped when present)
  start               fetch if needed, format storage on first start, start, wait until ready
  wait                wait until the broker answers a metadata request (KAFKA_WAIT_TIMEOUT s)
  stop                SIGTERM the broker (SIGKILL after KAFKA_STOP_TIMEOUT s); data kept
  kill                SIGKILL the broker (fault tests); data kept
  status              running / not running (exit 0 / 3), pid, bootstrap, version
  reset               stop and delete the data (topics, offsets, cluster id)
  version             print the configured Kafka version
  bootstrap           print the bootstrap address ($BOOTSTRAP)
  logs                tail -f the server log
  tool NAME|CLASS ... run a Kafka tool with the fetched classpath
  topics | console-producer | console-consumer | consumer-groups | configs | get-offsets |
  delete-records | producer-perf-test | consumer-perf-test | broker-api-versions |
  metadata-quorum | transactions | dump-log | storage ...
                      shortcuts for 'tool NAME ...' (--bootstrap-server added when missing)

Environment: KAFKA_PORT ($KAFKA_PORT), KAFKA_CONTROLLER_PORT ($KAFKA_CONTROLLER_PORT),
KAFKA_HOME_DIR ($KAFKA_HOME_DIR), KAFKA_LIBS_DIR, KAFKA_HEAP ($KAFKA_HEAP),
KAFKA_JVM_OPTS, KAFKA_TOOL_OPTS, KAFKA_WAIT_TIMEOUT ($KAFKA_WAIT_TIMEOUT),
KAFKA_STOP_TIMEOUT ($KAFKA_STOP_TIMEOUT), KAFKA_EXTRA_CONFIG, KAFKA_LOG_LEVEL, KAFKA_VERSION, JAVA.
EOF
}

main() {
  local cmd="${1:-help}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    fetch)     cmd_fetch "$@" ;;
    start)     cmd_start ;;
    wait)      cmd_wait ;;
    stop)      cmd_stop ;;
    kill)      cmd_kill ;;
    status)    cmd_status ;;
    reset)     cmd_reset ;;
    restart)   cmd_stop; cmd_start ;;
    version)   kafka_version ;;
    bootstrap) echo "$BOOTSTRAP" ;;
    logs)      exec tail -n 100 -F "$SERVER_LOG" ;;
    tool|bin|run) cmd_tool "$@" ;;
    help|-h|--help) usage ;;
    *)
      if tool_class "$cmd" >/dev/null && [[ "$cmd" != *.* ]]; then
        cmd_tool "$cmd" "$@"
      else
        usage >&2
        exit 2
      fi
      ;;
  esac
}

main "$@"

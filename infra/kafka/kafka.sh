#!/usr/bin/env bash
# Local single-node Kafka (KRaft, broker + controller in one JVM) on loopback,
# for running and testing the sportsbook. Jars come from Maven Central through
# infra/kafka/pom.xml; nothing is installed system-wide.
#
# Usage: infra/kafka/kafka.sh <command>
#   fetch      resolve the Kafka jars into .build/libs (no-op when present)
#   start      fetch if needed, format storage if new, start, wait until ready
#   topics     create the sportsbook topics (existing ones are left alone; a
#              warning when their partitions or configs differ)
#   up         start + topics
#   restart    stop + start
#   describe   describe the sportsbook topics
#   stop       SIGTERM, wait up to KAFKA_STOP_TIMEOUT (30 s), then SIGKILL
#   status     print state; exit 0 when running, 3 when stopped
#   reset      stop and delete the state dir (data, logs, cluster id)
#   bootstrap  print the bootstrap address (127.0.0.1:$KAFKA_PORT)
#   logs       print the tail of the broker log
#
# Environment (defaults in brackets):
#   KAFKA_PORT [19092]  KAFKA_CONTROLLER_PORT [19093]
#   KAFKA_STATE_DIR [infra/kafka/.state]  KAFKA_BUILD_DIR [infra/kafka/.build]
#   KAFKA_VERSION [the pom's kafka.version]  KAFKA_HEAP_OPTS [-Xms128m -Xmx512m]
#   KAFKA_START_TIMEOUT [120]  KAFKA_STOP_TIMEOUT [30]
#   For `topics` / `describe` against an existing cluster instead of the local one:
#   KAFKA_BOOTSTRAP [unset: 127.0.0.1:$KAFKA_PORT]  KAFKA_REPLICATION_FACTOR [1]
#   KAFKA_COMMAND_CONFIG [unset]: admin client properties (TLS/SASL) for the tools
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"

abspath() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$PWD/$1" ;;
  esac
}

KAFKA_HOST=127.0.0.1
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_STATE_DIR="$(abspath "${KAFKA_STATE_DIR:-$HERE/.state}")"
KAFKA_BUILD_DIR="$(abspath "${KAFKA_BUILD_DIR:-$HERE/.build}")"
KAFKA_VERSION="${KAFKA_VERSION:-}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

LIBS="$KAFKA_BUILD_DIR/libs"
STAMP="$LIBS/.fetched"
CONF="$KAFKA_STATE_DIR/server.properties"
ADMIN_CONF="$KAFKA_STATE_DIR/admin.properties"
DATA_DIR="$KAFKA_STATE_DIR/data"
LOG_DIR="$KAFKA_STATE_DIR/logs"
PID_FILE="$KAFKA_STATE_DIR/kafka.pid"
LOCK_FILE="$KAFKA_STATE_DIR/.lock"
OUT_FILE="$LOG_DIR/kafka.out"
LOCAL_BOOTSTRAP="$KAFKA_HOST:$KAFKA_PORT"
BOOTSTRAP="${KAFKA_BOOTSTRAP:-$LOCAL_BOOTSTRAP}"
KAFKA_REPLICATION_FACTOR="${KAFKA_REPLICATION_FACTOR:-1}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

# The sportsbook topics: partitions and configs per topic (replication is
# KAFKA_REPLICATION_FACTOR). sportsbook.prices has ONE partition on purpose:
# every server reads every partition anyway, and one partition is a total order,
# so a client's `clk` is a single offset that means the same to every server
# process. Records are keyed by marketId, so per-market order survives a later
# move to more partitions. min.compaction.lag.ms keeps recent deltas (resume);
# segment.ms rolls a segment hourly so compaction can act on closed segments.
TOPIC_NAMES=(sportsbook.prices sportsbook.results sportsbook.bets)
RETENTION_7D=604800000
RETENTION_30D=2592000000
declare -A TOPIC_PARTITIONS=(
  [sportsbook.prices]=1
  [sportsbook.results]=6
  [sportsbook.bets]=6
)
# key=value pairs, space-separated
declare -A TOPIC_CONFIGS=(
  [sportsbook.prices]="cleanup.policy=compact,delete retention.ms=$RETENTION_7D min.compaction.lag.ms=60000 segment.ms=3600000"
  [sportsbook.results]="cleanup.policy=delete retention.ms=$RETENTION_30D"
  [sportsbook.bets]="cleanup.policy=delete retention.ms=$RETENTION_30D"
)

T0="${EPOCHREALTIME}"
say() { printf 'kafka: %s\n' "$*" >&2; }
die() { printf 'kafka: ERROR: %s\n' "$*" >&2; exit 1; }
elapsed() { awk -v a="$T0" -v b="${EPOCHREALTIME}" 'BEGIN { printf "%.1fs", b - a }'; }

lock() {
  mkdir -p "$KAFKA_STATE_DIR"
  exec 9>"$LOCK_FILE"
  flock -w 120 9 || die "another kafka.sh holds $LOCK_FILE"
}

# --- jars -------------------------------------------------------------------

wanted_stamp() {
  local pom_sum
  pom_sum="$(sha256sum "$HERE/pom.xml" | cut -d' ' -f1)"
  printf 'pom=%s version=%s\n' "$pom_sum" "${KAFKA_VERSION:-default}"
}

have_jars() {
  [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$(wanted_stamp)" ]]
}

cmd_fetch() {
  if have_jars; then
    say "jars present ($(kafka_version)) in $LIBS"
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (Debian: apt-get install -y maven)"
  say "resolving Kafka jars from Maven Central (mvn) ..."
  mkdir -p "$KAFKA_BUILD_DIR"
  local tmp="$KAFKA_BUILD_DIR/libs.tmp.$$" mvn_log="$KAFKA_BUILD_DIR/mvn.log"
  local -a mvn_args=(-B -q -Dstyle.color=never -f "$HERE/pom.xml")
  if [[ -n "$KAFKA_VERSION" ]]; then mvn_args+=("-Dkafka.version=$KAFKA_VERSION"); fi
  rm -rf "$tmp"
  if ! mvn "${mvn_args[@]}" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
    rm -rf "$tmp"
    tail -n 30 "$mvn_log" >&2 || true
    die "mvn failed (full output: $mvn_log)"
  fi
  wanted_stamp >"$tmp/.fetched"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  say "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars ($(kafka_version)) in $(elapsed)"
}

kafka_version() {
  local jar
  jar="$(find "$LIBS" -maxdepth 1 -name 'kafka_2.13-*.jar' | head -n 1)"
  jar="${jar##*/kafka_2.13-}"
  printf '%s\n' "${jar%.jar}"
}

# --- processes --------------------------------------------------------------

# Prints the broker's pid if it is running, from the pid file or, when that is
# missing, by looking for a JVM started with this state dir's config.
broker_pid() {
  local pid=""
  if [[ -f "$PID_FILE" ]]; then
    pid="$(cat "$PID_FILE")"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $CONF"; then
      printf '%s\n' "$pid"
      return 0
    fi
  fi
  pid="$(pgrep -f -x ".*kafka\.Kafka $CONF" | head -n 1 || true)"
  [[ -n "$pid" ]] || return 1
  printf '%s\n' "$pid"
}

port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$KAFKA_HOST/$1" 2>/dev/null
}

run_tool() {
  # A short-lived JVM for Kafka's command-line tools: small heap, fast start.
  # Bounded by KAFKA_TOOL_TIMEOUT seconds (default 60).
  local main="$1"
  shift
  timeout "${KAFKA_TOOL_TIMEOUT:-60}" "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HERE/log4j2-tools.properties" \
    -cp "$LIBS/*" "$main" "$@"
}

topic_cmd() {
  run_tool org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONF" "$@"
}

# Admin client settings for the tools: fail fast instead of retrying for 60 s,
# plus KAFKA_COMMAND_CONFIG (e.g. TLS/SASL for an existing cluster) if given.
write_admin_config() {
  mkdir -p "$KAFKA_STATE_DIR"
  {
    printf '%s\n' 'request.timeout.ms=10000' 'default.api.timeout.ms=15000' 'retries=3'
    if [[ -n "${KAFKA_COMMAND_CONFIG:-}" ]]; then cat "$KAFKA_COMMAND_CONFIG"; fi
  } >"$ADMIN_CONF"
}

# topics/describe: the local broker must be running, unless KAFKA_BOOTSTRAP
# points at another cluster.
need_cluster() {
  if [[ -z "${KAFKA_BOOTSTRAP:-}" ]]; then
    broker_pid >/dev/null || die "not running; run '$0 start' first (or set KAFKA_BOOTSTRAP)"
  fi
  have_jars || cmd_fetch
  write_admin_config
}

write_config() {
  mkdir -p "$DATA_DIR" "$LOG_DIR"
  local managed='^[[:space:]]*(listeners|advertised\.listeners|controller\.quorum\.voters|log\.dirs)[[:space:]]*='
  {
    grep -Ev "$managed" "$HERE/server.properties"
    printf '\n# ---- written by kafka.sh from the environment ----\n'
    printf 'listeners=PLAINTEXT://%s:%s,CONTROLLER://%s:%s\n' \
      "$KAFKA_HOST" "$KAFKA_PORT" "$KAFKA_HOST" "$KAFKA_CONTROLLER_PORT"
    printf 'advertised.listeners=PLAINTEXT://%s:%s\n' "$KAFKA_HOST" "$KAFKA_PORT"
    printf 'controller.quorum.voters=1@%s:%s\n' "$KAFKA_HOST" "$KAFKA_CONTROLLER_PORT"
    printf 'log.dirs=%s\n' "$DATA_DIR"
  } >"$CONF.tmp"
  mv "$CONF.tmp" "$CONF"
  write_admin_config
}

format_storage() {
  [[ -f "$DATA_DIR/meta.properties" ]] && return 0
  local cluster_id
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  say "formatting storage in $DATA_DIR (cluster id $cluster_id)"
  local out
  if ! out="$(run_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$CONF" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "storage format failed"
  fi
}

check_java() {
  command -v "$JAVA" >/dev/null || die "java not found (Kafka 4 needs Java 17+)"
  local v
  v="$("$JAVA" -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ { print $2 }')"
  [[ "${v%%.*}" -ge 17 ]] || die "Java $v found; Kafka 4 needs Java 17+"
}

show_log_tail() {
  local f
  for f in "$LOG_DIR/server.log" "$OUT_FILE"; do
    if [[ -s "$f" ]]; then
      printf -- '--- last lines of %s ---\n' "$f" >&2
      tail -n 40 "$f" >&2
    fi
  done
}

cmd_start() {
  BOOTSTRAP="$LOCAL_BOOTSTRAP" # start (and `up`) is about the local broker only
  lock
  local pid
  if pid="$(broker_pid)"; then
    say "already running (pid $pid) on $LOCAL_BOOTSTRAP"
    return 0
  fi
  local p
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_open "$p"; then
      die "port $KAFKA_HOST:$p is taken by another process; set KAFKA_PORT / KAFKA_CONTROLLER_PORT"
    fi
  done
  check_java
  cmd_fetch
  write_config
  format_storage
  say "starting Kafka $(kafka_version) on $LOCAL_BOOTSTRAP (controller :$KAFKA_CONTROLLER_PORT, state $KAFKA_STATE_DIR)"
  local -a heap
  read -r -a heap <<<"$KAFKA_HEAP_OPTS"
  # setsid: the broker outlives this script and its caller's process group.
  # 9>&-: the broker must not inherit (and so hold forever) the lock fd.
  setsid nohup "$JAVA" "${heap[@]}" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.shutdownHookEnabled=false \
    -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
    -Dkafka.logs.dir="$LOG_DIR" \
    -cp "$LIBS/*" kafka.Kafka "$CONF" >"$OUT_FILE" 2>&1 </dev/null 9>&- &
  pid=$!
  printf '%s\n' "$pid" >"$PID_FILE"
  wait_ready "$pid"
  say "ready on $LOCAL_BOOTSTRAP (pid $pid) in $(elapsed)"
}

wait_ready() {
  local pid="$1" deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      show_log_tail
      die "broker exited during start-up (logs in $LOG_DIR)"
    fi
    if port_open "$KAFKA_PORT"; then
      # Port open is not enough: the admin client must get metadata back.
      if KAFKA_TOOL_TIMEOUT=30 topic_cmd --list >/dev/null 2>&1; then
        return 0
      fi
    fi
    sleep 0.5
  done
  show_log_tail
  die "broker not ready after ${KAFKA_START_TIMEOUT}s (pid $pid still running; logs in $LOG_DIR)"
}

# Prints a describe "Configs: a=1,b=x,y" list as one key=value per line (a value
# may itself contain commas, as cleanup.policy=compact,delete does).
config_lines() {
  printf '%s' "$1" | awk -v RS=',' '
    /=/ { if (e != "") print e; e = $0; next }
    { e = e "," $0 }
    END { if (e != "") print e }'
}

# An existing topic is left as it is; warn when its partition count or one of
# our configs differs from what `topics` would create (never fails).
check_existing_topic() {
  local name="$1" header="$2" count configs want have key
  count="$(sed -nE 's/.*PartitionCount: ([0-9]+).*/\1/p' <<<"$header")"
  configs="$(sed -nE 's/.*Configs: ?(.*)$/\1/p' <<<"$header")"
  if [[ "$count" != "${TOPIC_PARTITIONS[$name]}" ]]; then
    say "WARNING: topic $name has ${count:-?} partitions, expected ${TOPIC_PARTITIONS[$name]}; left as is (to recreate it: delete the topic, or 'reset' a local broker, then run 'topics')"
  fi
  local -a wanted diffs=()
  read -r -a wanted <<<"${TOPIC_CONFIGS[$name]}"
  for want in "${wanted[@]}"; do
    key="${want%%=*}"
    have="$(config_lines "$configs" | grep -m 1 "^${key//./\\.}=" || true)"
    if [[ -z "$have" ]]; then
      diffs+=("$key=(default) (wanted ${want#*=})")
    elif [[ "$have" != "$want" ]]; then
      diffs+=("$have (wanted ${want#*=})")
    fi
  done
  if ((${#diffs[@]})); then
    local joined
    joined="$(printf '%s, ' "${diffs[@]}")"
    say "WARNING: topic $name configs differ: ${joined%, }; left as is (kafka-configs --alter to change them)"
  fi
  return 0
}

cmd_topics() {
  T0="${EPOCHREALTIME}"
  need_cluster
  # One describe (one JVM) tells which topics exist, with partitions and configs.
  local pattern="" name described header
  for name in "${TOPIC_NAMES[@]}" __consumer_offsets; do pattern+="${pattern:+|}${name//./\\.}"; done
  described="$(topic_cmd --describe --if-exists --topic "$pattern")" ||
    die "cannot describe topics on $BOOTSTRAP"
  for name in "${TOPIC_NAMES[@]}"; do
    header="$(grep -m 1 -E "^Topic: ${name//./\\.}[[:space:]]" <<<"$described" || true)"
    if [[ -n "$header" ]]; then
      say "topic $name exists"
      check_existing_topic "$name" "$header"
      continue
    fi
    local -a kvs cfg=()
    local kv
    read -r -a kvs <<<"${TOPIC_CONFIGS[$name]}"
    for kv in "${kvs[@]}"; do cfg+=(--config "$kv"); done
    topic_cmd --create --if-not-exists --topic "$name" \
      --partitions "${TOPIC_PARTITIONS[$name]}" --replication-factor "$KAFKA_REPLICATION_FACTOR" \
      "${cfg[@]}" >/dev/null
    say "topic $name created (partitions=${TOPIC_PARTITIONS[$name]} ${TOPIC_CONFIGS[$name]})"
  done
  # The first consumer group otherwise meets GroupCoordinatorNotAvailable (which
  # aiokafka logs as an error) while __consumer_offsets is created on demand:
  # a FindCoordinator from the group tool creates it now.
  if ! grep -qE '^Topic: __consumer_offsets[[:space:]]' <<<"$described"; then
    run_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
      --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONF" \
      --describe --group sportsbook.infra-warmup >/dev/null 2>&1 || true
    say "group coordinator warmed up (__consumer_offsets)"
  fi
  say "topics done in $(elapsed)"
}

cmd_describe() {
  need_cluster
  topic_cmd --describe --topic 'sportsbook\..*'
}

cmd_stop() {
  lock
  local pid
  if ! pid="$(broker_pid)"; then
    rm -f "$PID_FILE"
    say "not running"
    return 0
  fi
  warn_other_port "$(configured_bootstrap)"
  say "stopping pid $pid on $(configured_bootstrap) (SIGTERM) ..."
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "still running after ${KAFKA_STOP_TIMEOUT}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PID_FILE"
  say "stopped in $(elapsed)"
}

# The address the state dir's broker was configured with (it may differ from
# $KAFKA_PORT when that was set differently at start).
configured_bootstrap() {
  local line
  line="$(grep -m1 '^advertised.listeners=' "$CONF" 2>/dev/null || true)"
  [[ -n "$line" ]] && printf '%s\n' "${line##*://}" || printf '%s\n' "$LOCAL_BOOTSTRAP"
}

warn_other_port() {
  local actual="$1"
  [[ "$actual" == "$LOCAL_BOOTSTRAP" ]] ||
    say "note: the broker of state $KAFKA_STATE_DIR listens on $actual, not $LOCAL_BOOTSTRAP (set KAFKA_STATE_DIR to pick another broker)"
}

cmd_status() {
  local pid actual
  if pid="$(broker_pid)"; then
    actual="$(configured_bootstrap)"
    printf 'running pid=%s bootstrap=%s version=%s state=%s\n' \
      "$pid" "$actual" "$(kafka_version)" "$KAFKA_STATE_DIR"
    warn_other_port "$actual"
    return 0
  fi
  printf 'stopped (bootstrap would be %s, state %s)\n' "$LOCAL_BOOTSTRAP" "$KAFKA_STATE_DIR"
  return 3
}

cmd_reset() {
  cmd_stop
  case "$KAFKA_STATE_DIR" in
    "" | / | "$HOME" | "$HERE") die "refusing to delete '$KAFKA_STATE_DIR'" ;;
  esac
  rm -rf "$KAFKA_STATE_DIR"
  say "deleted $KAFKA_STATE_DIR"
}

cmd_logs() {
  tail -n "${1:-60}" "$LOG_DIR/server.log"
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    fetch) cmd_fetch ;;
    start) cmd_start ;;
    topics) cmd_topics ;;
    up) cmd_start; cmd_topics ;;
    restart) cmd_stop; T0="${EPOCHREALTIME}"; cmd_start ;;
    describe) cmd_describe ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    reset) cmd_reset ;;
    bootstrap) printf '%s\n' "$BOOTSTRAP" ;;
    logs) cmd_logs "$@" ;;
    *)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
      exit 2 ;;
  esac
}

main "$@"

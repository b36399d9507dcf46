#!/usr/bin/env bash
# Sluice test services: real Kafka (KRaft), Redis and a MongoDB-wire server, all on 127.0.0.1.
#
#   bash scripts/services.sh up [kafka|redis|mongo ...]   start what is not running, wait until ready
#   bash scripts/services.sh down [kafka|redis|mongo ...] stop (all by default)
#   bash scripts/services.sh status [name ...]            one line per service; exit 1 if any is down
#   bash scripts/services.sh restart <name ...>           stop, start, wait ready (Kafka keeps its data)
#   bash scripts/services.sh env                          print export lines:  eval "$(... env)"
#
# Addresses (also written to $SLUICE_SERVICES_DIR/services.env as KEY=VALUE lines):
#   SLUICE_KAFKA_BROKERS=127.0.0.1:9092  SLUICE_REDIS_URL=redis://127.0.0.1:6390
#   SLUICE_MONGO_URL=mongodb://127.0.0.1:27018
#
# Servers:
#   kafka  Apache Kafka 3.9.1, single node KRaft (broker+controller), jars from Maven Central
#   redis  Debian's redis-server (installed with apt-get when missing), no persistence
#   mongo  de.bwaldvogel:mongo-java-server 1.47.0, in-memory, oplog on (change streams work)
#
# Every cold `up` starts empty servers (Kafka's data dir is reset; Redis and Mongo are in-memory);
# `restart` keeps Kafka's data. SLUICE_SERVICES_KEEP_DATA=1 keeps Kafka's data on `up` too.
#
# Knobs (environment): SLUICE_CACHE_DIR (default ~/.cache/sluice: jars, Maven repo),
# SLUICE_SERVICES_DIR (default $SLUICE_CACHE_DIR/run: pids, logs, data, services.env),
# SLUICE_KAFKA_PORT (9092), SLUICE_KAFKA_CONTROLLER_PORT (9093), SLUICE_REDIS_PORT (6390),
# SLUICE_MONGO_PORT (27018), SLUICE_KAFKA_JVM_OPTS, SLUICE_MONGO_JVM_OPTS,
# SLUICE_SERVICES_TIMEOUT (seconds to wait for each server to be ready, default 120).
set -euo pipefail

readonly HOST=127.0.0.1
readonly KAFKA_VERSION=3.9.1
readonly MONGO_SERVER_VERSION=1.47.0
readonly ALL_SERVICES=(kafka redis mongo)

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HOME="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
CACHE_DIR="${SLUICE_CACHE_DIR:-$HOME/.cache/sluice}"
RUN_DIR="${SLUICE_SERVICES_DIR:-$CACHE_DIR/run}"
KAFKA_PORT="${SLUICE_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${SLUICE_KAFKA_CONTROLLER_PORT:-9093}"
REDIS_PORT="${SLUICE_REDIS_PORT:-6390}"
MONGO_PORT="${SLUICE_MONGO_PORT:-27018}"
TIMEOUT="${SLUICE_SERVICES_TIMEOUT:-120}"
# Full JIT on purpose: -XX:TieredStopAtLevel=1 saved no measurable start time (~2.5 s either way)
# and would slow the brokers down in benchmarks.
KAFKA_JVM_OPTS="${SLUICE_KAFKA_JVM_OPTS:--Xms256m -Xmx512m -XX:+UseSerialGC}"
# mongo-java-server keeps every written document in its in-memory oplog (change streams need it)
# until it restarts, so a whole test run needs room to spare.
MONGO_JVM_OPTS="${SLUICE_MONGO_JVM_OPTS:--Xmx3g -XX:+UseSerialGC}"

say() { printf '%s\n' "$*"; }
die() {
  printf 'services.sh: error: %s\n' "$*" >&2
  exit 1
}

# --- small helpers -----------------------------------------------------------------------------

now() { date +%s; }

# ensure_cmd CMD DEBIAN_PACKAGE: install the package with apt-get when CMD is missing.
ensure_cmd() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "$cmd is missing and I am not root: apt-get install $pkg"
    sudo=(sudo -n)
  fi
  say "$cmd: not found, installing Debian package $pkg ..." >&2
  local log="$RUN_DIR/apt-$pkg.log"
  # 9>&-: a daemon that a package's postinst may start must not inherit (and hold) our lock.
  if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "$pkg" </dev/null >"$log" 2>&1 9>&-; then
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -q </dev/null >>"$log" 2>&1 9>&- || true
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "$pkg" </dev/null >>"$log" 2>&1 9>&- ||
      { tail -n 20 "$log" >&2; die "apt-get install $pkg failed (log: $log)"; }
  fi
  command -v "$cmd" >/dev/null 2>&1 || die "$pkg installed but $cmd is still not on PATH"
}

# port_open PORT: something accepts TCP connections on HOST:PORT.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# alive PID: the process exists and is not a zombie.
alive() {
  local pid=$1 state
  [[ -n $pid && -r /proc/$pid/stat ]] || return 1
  state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]]
}

svc_dir() { printf '%s/%s' "$RUN_DIR" "$1"; }
pid_file() { printf '%s/%s/%s.pid' "$RUN_DIR" "$1" "$1"; }
log_file() { printf '%s/%s/%s.log' "$RUN_DIR" "$1" "$1"; }

# What every process of ours carries on its command line (checked against /proc/PID/cmdline so a
# recycled pid never counts as ours).
marker() {
  case $1 in
    kafka) printf 'sluice.service=kafka' ;;
    mongo) printf 'sluice.service=mongo' ;;
    redis) printf 'redis-server' ;;
  esac
}

# service_pid NAME: print the pid when our process for NAME is alive, else fail.
service_pid() {
  local f pid
  f=$(pid_file "$1")
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$(marker "$1")" || return 1
  printf '%s' "$pid"
}

service_port() {
  case $1 in
    kafka) printf '%s' "$KAFKA_PORT" ;;
    redis) printf '%s' "$REDIS_PORT" ;;
    mongo) printf '%s' "$MONGO_PORT" ;;
  esac
}

service_addr() {
  case $1 in
    kafka) printf '%s:%s' "$HOST" "$KAFKA_PORT" ;;
    redis) printf 'redis://%s:%s' "$HOST" "$REDIS_PORT" ;;
    mongo) printf 'mongodb://%s:%s' "$HOST" "$MONGO_PORT" ;;
  esac
}

# --- readiness probes ---------------------------------------------------------------------------

# A Kafka Metadata v0 request (all topics, client id "sluice-probe"); ready when the answer carries
# our correlation id and at least one broker.
probe_kafka() {
  local out b
  out=$(timeout 5 bash -c '
    exec 3<>/dev/tcp/'"$HOST/$KAFKA_PORT"' || exit 1
    printf "\x00\x00\x00\x1a\x00\x03\x00\x00\x00\x00\x00\x07\x00\x0csluice-probe\x00\x00\x00\x00" >&3
    od -An -tu1 -N 12 <&3' 2>/dev/null) || return 1
  read -r -a b <<<"$out"
  [[ ${#b[@]} -eq 12 && ${b[7]} -eq 7 ]] || return 1
  ((b[8] + b[9] + b[10] + b[11] > 0))
}

probe_redis() {
  local out
  out=$(timeout 3 bash -c '
    exec 3<>/dev/tcp/'"$HOST/$REDIS_PORT"' || exit 1
    printf "PING\r\n" >&3
    head -c 7 <&3' 2>/dev/null) || return 1
  [[ $out == +PONG* ]]
}

probe_mongo() {
  grep -q 'sluice-mongo ready on' "$(log_file mongo)" 2>/dev/null && port_open "$MONGO_PORT"
}

ready() {
  case $1 in
    kafka) grep -q 'Kafka Server started' "$(log_file kafka)" 2>/dev/null && probe_kafka ;;
    redis) probe_redis ;;
    mongo) probe_mongo ;;
  esac
}

# fail_start NAME PID WHY: one-line error, then the tail of the server's log.
fail_start() {
  local name=$1 pid=$2 why=$3 log
  log=$(log_file "$name")
  say "services.sh: error: $name (pid $pid) $why; log: $log" >&2
  tail -n 30 "$log" >&2 2>/dev/null || true
  exit 1
}

# wait_ready NAME:PID:STARTED_AT ...: poll all of them until each is ready (or fail).
wait_ready() {
  local pending=("$@") next entry name pid t0
  while ((${#pending[@]} > 0)); do
    next=()
    for entry in "${pending[@]}"; do
      IFS=: read -r name pid t0 <<<"$entry"
      if ready "$name"; then
        say "$name: started (pid $pid) at $(service_addr "$name") in $(($(now) - t0))s"
      elif ! alive "$pid"; then
        rm -f "$(pid_file "$name")"
        fail_start "$name" "$pid" "exited while starting"
      elif (($(now) - t0 >= TIMEOUT)); then
        kill_pid "$pid" 10
        rm -f "$(pid_file "$name")"
        fail_start "$name" "$pid" "was not ready within ${TIMEOUT}s (stopped it)"
      else
        next+=("$entry")
      fi
    done
    pending=("${next[@]+"${next[@]}"}")
    ((${#pending[@]} == 0)) || sleep 0.2
  done
}

# --- runtime jars from Maven Central ------------------------------------------------------------

# fetch_jars NAME DEPENDENCIES_XML: print a directory holding the runtime jars (cached).
fetch_jars() {
  local name=$1 deps=$2 key dir tmp pom
  pom="<project xmlns=\"http://maven.apache.org/POM/4.0.0\"><modelVersion>4.0.0</modelVersion>
  <groupId>dev.sluice.services</groupId><artifactId>$name</artifactId><version>1</version>
  <packaging>pom</packaging><dependencies>$deps</dependencies></project>"
  key=$(printf '%s' "$pom" | sha256sum | cut -c1-10)
  dir="$CACHE_DIR/jars/$name-$key"
  if [[ ! -f $dir/.complete ]]; then
    ensure_cmd java openjdk-17-jre-headless
    ensure_cmd mvn maven
    mkdir -p "$CACHE_DIR/jars"
    tmp=$(mktemp -d "$CACHE_DIR/jars/.fetch-$name.XXXXXX")
    printf '%s\n' "$pom" >"$tmp/pom.xml"
    say "$name: fetching runtime jars from Maven Central into $dir ..." >&2
    if ! mvn -B -q -f "$tmp/pom.xml" -Dmaven.repo.local="$CACHE_DIR/m2" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DoutputDirectory="$tmp/jars" </dev/null >"$tmp/mvn.log" 2>&1 9>&-; then
      tail -n 30 "$tmp/mvn.log" >&2
      die "mvn could not fetch the $name jars (log: $tmp/mvn.log)"
    fi
    rm -rf "$dir"
    mv "$tmp/jars" "$dir"
    touch "$dir/.complete"
    rm -rf "$tmp"
  fi
  printf '%s' "$dir"
}

dep() { printf '<dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>' "$1" "$2" "$3"; }

kafka_jars() {
  fetch_jars "kafka-$KAFKA_VERSION" "$(dep org.apache.kafka kafka_2.13 "$KAFKA_VERSION")$(
    dep org.slf4j slf4j-reload4j 1.7.36
  )$(dep ch.qos.reload4j reload4j 1.2.25)"
}

mongo_jars() {
  fetch_jars "mongo-java-server-$MONGO_SERVER_VERSION" "$(
    dep de.bwaldvogel mongo-java-server "$MONGO_SERVER_VERSION"
  )$(dep de.bwaldvogel mongo-java-server-memory-backend "$MONGO_SERVER_VERSION")$(
    dep org.slf4j slf4j-simple 2.0.17
  )"
}

# --- starting ------------------------------------------------------------------------------------

# Start a detached process (own session, no inherited stdio or lock fd) and record its pid.
launch() {
  local name=$1
  shift
  local log
  log=$(log_file "$name")
  [[ -f $log ]] && mv -f "$log" "$log.1"
  setsid "$@" </dev/null >"$log" 2>&1 9>&- &
  printf '%s' "$!" >"$(pid_file "$name")"
}

start_kafka() {
  local jars dir
  jars=$(kafka_jars)
  dir=$(svc_dir kafka)
  mkdir -p "$dir"
  cat >"$dir/server.properties" <<EOF
# Generated by scripts/services.sh: single-node KRaft test broker.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
num.recovery.threads.per.data.dir=1
log.retention.hours=24
EOF
  cat >"$dir/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.log=WARN
log4j.logger.org.apache.kafka.storage=WARN
log4j.logger.kafka.cluster=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.server.ReplicaFetcherManager=WARN
log4j.logger.kafka.server.ReplicaAlterLogDirsManager=WARN
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN
log4j.logger.org.apache.kafka.common.config=WARN
log4j.logger.kafka.server.KafkaConfig=WARN
EOF
  # A formatted, empty data dir is made once and copied: a cold `up` starts from a clean broker
  # without paying for a second JVM run.
  local cp=("$jars/*")
  local opts
  read -r -a opts <<<"$KAFKA_JVM_OPTS"
  local java=(java "${opts[@]}" -Djava.awt.headless=true -XX:+ExitOnOutOfMemoryError
    "-Dlog4j.configuration=file:$dir/log4j.properties")
  if [[ ! -f $dir/template/meta.properties || $(cat "$dir/template.port" 2>/dev/null) != "$KAFKA_CONTROLLER_PORT" ]]; then
    rm -rf "$dir/template" "$dir/format.tmp.properties"
    local cid
    cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    sed "s|^log.dirs=.*|log.dirs=$dir/template|" "$dir/server.properties" >"$dir/format.tmp.properties"
    if ! "${java[@]}" -cp "${cp[*]}" kafka.tools.StorageTool format -t "$cid" \
      -c "$dir/format.tmp.properties" >"$dir/format.log" 2>&1; then
      tail -n 20 "$dir/format.log" >&2
      die "kafka storage format failed (log: $dir/format.log)"
    fi
    printf '%s' "$KAFKA_CONTROLLER_PORT" >"$dir/template.port"
    rm -f "$dir/format.tmp.properties"
  fi
  if [[ ${KAFKA_KEEP_DATA:-${SLUICE_SERVICES_KEEP_DATA:-0}} != 1 || ! -f $dir/data/meta.properties ]]; then
    rm -rf "$dir/data"
    cp -a "$dir/template" "$dir/data"
  fi
  launch kafka "${java[@]}" -Dsluice.service=kafka -cp "${cp[*]}" kafka.Kafka "$dir/server.properties"
}

start_redis() {
  ensure_cmd redis-server redis-server
  local dir
  dir=$(svc_dir redis)
  mkdir -p "$dir"
  local log
  log=$(log_file redis)
  [[ -f $log ]] && mv -f "$log" "$log.1"
  rm -f "$(pid_file redis)"
  redis-server --bind "$HOST" --port "$REDIS_PORT" --dir "$dir" --save '' --appendonly no \
    --daemonize yes --pidfile "$(pid_file redis)" --logfile "$log" \
    </dev/null >"$dir/redis.out" 2>&1 9>&- || die "redis-server did not start; see $dir/redis.out"
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s $(pid_file redis) ]] && break
    sleep 0.1
  done
  [[ -s $(pid_file redis) ]] || die "redis-server wrote no pid file; log: $log"
}

start_mongo() {
  local jars dir classes src
  jars=$(mongo_jars)
  dir=$(svc_dir mongo)
  mkdir -p "$dir"
  # MongoServer.java is compiled once per content (single-file `java X.java` would recompile on
  # every start, which costs seconds on a restart).
  src="$SCRIPT_DIR/MongoServer.java"
  classes="$CACHE_DIR/jars/mongo-launcher-$(sha256sum "$src" | cut -c1-10)"
  if [[ ! -f $classes/MongoServer.class ]]; then
    ensure_cmd javac openjdk-17-jdk-headless
    rm -rf "$classes.tmp"
    mkdir -p "$classes.tmp"
    javac -nowarn -cp "$jars/*" -d "$classes.tmp" "$src" >"$dir/javac.log" 2>&1 ||
      { cat "$dir/javac.log" >&2; die "could not compile $src"; }
    rm -rf "$classes"
    mv "$classes.tmp" "$classes"
  fi
  local opts
  read -r -a opts <<<"$MONGO_JVM_OPTS"
  launch mongo java "${opts[@]}" -Djava.awt.headless=true -XX:+ExitOnOutOfMemoryError \
    -Dsluice.service=mongo -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$classes:$jars/*" MongoServer "$HOST" "$MONGO_PORT" 5.0
}

# --- stopping ------------------------------------------------------------------------------------

# kill_pid PID GRACE_SECONDS: SIGTERM, then SIGKILL when it is still alive after the grace time.
kill_pid() {
  local pid=$1 grace=$2 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  say "services.sh: pid $pid still alive after ${grace}s, sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
}

stop_one() {
  local name=$1 pid grace i
  if ! pid=$(service_pid "$name"); then
    rm -f "$(pid_file "$name")"
    say "$name: not running"
    return 0
  fi
  case $name in kafka) grace=60 ;; *) grace=15 ;; esac
  kill_pid "$pid" "$grace"
  # The ports must be free before a restart binds them again.
  for ((i = 0; i < 100; i++)); do
    port_open "$(service_port "$name")" || break
    sleep 0.1
  done
  rm -f "$(pid_file "$name")"
  say "$name: stopped (was pid $pid)"
}

# --- commands -----------------------------------------------------------------------------------

write_env() {
  local f="$RUN_DIR/services.env"
  {
    printf 'SLUICE_KAFKA_BROKERS=%s\n' "$(service_addr kafka)"
    printf 'SLUICE_REDIS_URL=%s\n' "$(service_addr redis)"
    printf 'SLUICE_MONGO_URL=%s\n' "$(service_addr mongo)"
  } >"$f.tmp"
  mv -f "$f.tmp" "$f"
}

lock() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"
  flock -w 900 9 || die "another services.sh holds $RUN_DIR/.lock for more than 900s"
}

check_names() {
  local n
  for n in "$@"; do
    case $n in kafka | redis | mongo) ;; *) die "unknown service '$n' (kafka|redis|mongo)" ;; esac
  done
}

# up_many NAME...: start all that are not running, then wait for each to be ready.
up_many() {
  local name pid port t0 started=()
  for name in "$@"; do
    mkdir -p "$(svc_dir "$name")"
    if pid=$(service_pid "$name"); then
      if ready "$name"; then
        say "$name: already running (pid $pid) at $(service_addr "$name")"
        continue
      fi
      started+=("$name:$pid:$(now)") # alive but not ready yet: wait for it below
      continue
    fi
    port=$(service_port "$name")
    if port_open "$port"; then
      die "$name: port $HOST:$port is taken by a process services.sh did not start (set SLUICE_${name^^}_PORT or stop it)"
    fi
    if [[ $name == kafka ]] && port_open "$KAFKA_CONTROLLER_PORT"; then
      die "kafka: controller port $HOST:$KAFKA_CONTROLLER_PORT is taken (set SLUICE_KAFKA_CONTROLLER_PORT)"
    fi
    t0=$(now)
    "start_$name"
    pid=$(<"$(pid_file "$name")")
    started+=("$name:$pid:$t0")
  done
  wait_ready "${started[@]+"${started[@]}"}"
}

cmd_up() {
  lock
  up_many "$@"
  write_env
  say "services: up (env: $RUN_DIR/services.env)"
}

cmd_down() {
  lock
  local name
  for name in "$@"; do stop_one "$name"; done
  if [[ $# -eq ${#ALL_SERVICES[@]} ]]; then rm -f "$RUN_DIR/services.env"; fi
}

cmd_restart() {
  [[ $# -gt 0 ]] || die "usage: services.sh restart <kafka|redis|mongo> ..."
  lock
  local name
  for name in "$@"; do stop_one "$name"; done
  KAFKA_KEEP_DATA=1 up_many "$@"
  write_env
}

cmd_status() {
  local name pid rc=0
  for name in "$@"; do
    if pid=$(service_pid "$name") && ready "$name"; then
      say "$name: running (pid $pid) at $(service_addr "$name")"
    elif pid=$(service_pid "$name"); then
      say "$name: starting or unhealthy (pid $pid) at $(service_addr "$name"); log: $(log_file "$name")"
      rc=1
    else
      say "$name: stopped"
      rc=1
    fi
  done
  return "$rc"
}

cmd_env() {
  printf 'export SLUICE_KAFKA_BROKERS=%s\n' "$(service_addr kafka)"
  printf 'export SLUICE_REDIS_URL=%s\n' "$(service_addr redis)"
  printf 'export SLUICE_MONGO_URL=%s\n' "$(service_addr mongo)"
}

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
  local cmd=${1:-}
  [[ $# -gt 0 ]] && shift
  [[ $cmd == up || $cmd == down || $cmd == status ]] && [[ $# -eq 0 ]] && set -- "${ALL_SERVICES[@]}"
  check_names "$@"
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    restart) cmd_restart "$@" ;;
    env) cmd_env ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"

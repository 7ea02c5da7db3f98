#!/usr/bin/env bash
# Load test of the example server (examples/server/) on loopback, end to end
# (issue 8): requests per second and p50/p99 latency for `GET /api/me/` and for
# `POST /api/token/refresh/`, on SQLite and on PostgreSQL, with the error count;
# and the server's memory (VmRSS) over a run of a million `GET /api/me/`.
#
#   scripts/loadtest.sh 2>&1 | tee loadtest.out
#
# What it does, for each backend in BACKENDS:
#   1. starts the release build of the server on 127.0.0.1 (a free port), with a
#      temporary SQLite file, or PostgreSQL at TEST_POSTGRES_URL with a table
#      prefix of its own (its tables are dropped at the end);
#   2. registers a user and logs in with curl;
#   3. GET /api/me/: wrk (Debian's, installed when missing) for DURATION
#      seconds over CONNECTIONS connections, after a 5 s warm-up that is not
#      counted; any answer but 2xx/3xx and any socket error is an error;
#   4. refresh: examples/loadgen.rs, CONNECTIONS workers, each with a session of
#      its own that it rotates in a loop (each refresh spends the token the next
#      one needs, which wrk cannot do), DURATION seconds after a 2 s warm-up;
#   5. on the backends in MILLION_ON: MILLION requests of GET /api/me/
#      (loadgen, exact count) while the server's VmRSS is sampled every 5 s:
#      at start, after warm-up (before the run), during it, and at the end.
# Everything it starts (servers, samplers) is stopped on exit, Ctrl-C included.
# Only 127.0.0.1 is ever a target; every loop is bounded in count and time.
#
# Settings (environment):
#   BACKENDS      "sqlite postgres"   which backends
#   DURATION      20                  seconds of each timed run (3 to 600)
#   CONNECTIONS   16                  concurrent connections / workers
#   WRK_THREADS   2                   wrk threads
#   MILLION       1000000             requests of the memory run (at most 100 million)
#   MILLION_ON    "sqlite postgres"   backends that get the memory run ("" for none)
#   MILLION_LIMIT 900                 seconds a memory run may take at most
#   TEST_POSTGRES_URL  postgres://postgres@127.0.0.1:5432/test
set -euo pipefail
cd "$(dirname "$0")/.."

BACKENDS=${BACKENDS:-"sqlite postgres"}
DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-16}
WRK_THREADS=${WRK_THREADS:-2}
MILLION=${MILLION:-1000000}
MILLION_ON=${MILLION_ON-sqlite postgres}
MILLION_LIMIT=${MILLION_LIMIT:-900}
PG_URL=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
USERNAME=loadtest
PASSWORD="load test password $RANDOM$RANDOM"

die() { echo "loadtest: $*" >&2; exit 1; }
is_number() { [[ $1 =~ ^[0-9]+$ ]]; }
for v in DURATION CONNECTIONS WRK_THREADS MILLION MILLION_LIMIT; do
  is_number "${!v}" || die "$v must be a number (it is '${!v}')"
done
((DURATION >= 3 && DURATION <= 600)) || die "DURATION: 3 to 600 seconds"
((CONNECTIONS >= 1 && CONNECTIONS <= 1024)) || die "CONNECTIONS: 1 to 1024"
((MILLION >= 1 && MILLION <= 100000000)) || die "MILLION: 1 to 100000000"
((MILLION_LIMIT >= 10 && MILLION_LIMIT <= 3600)) || die "MILLION_LIMIT: 10 to 3600 seconds"

# ------------------------------------------------------------------ tools
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v curl >/dev/null || need_apt+=(curl)
if ((${#need_apt[@]})); then
  echo "== installing ${need_apt[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq "${need_apt[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
fi
command -v wrk >/dev/null || die "wrk is not installed and could not be"

echo "== building the example server and the load generator (release)"
cargo build --release --quiet --example server --example loadgen
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | sed -E 's/.*"target_directory":"([^"]+)".*/\1/')
SERVER_BIN="$TARGET_DIR/release/examples/server"
LOADGEN_BIN="$TARGET_DIR/release/examples/loadgen"
[[ -x $SERVER_BIN && -x $LOADGEN_BIN ]] || die "the release binaries are missing under $TARGET_DIR"

# ------------------------------------------------------------------ cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tower-jwt-auth-loadtest.XXXXXX")
SERVER_PID=""
SAMPLER_PID=""
PG_PREFIXES=()

stop_pid() { # pid: TERM, up to 10 s, then KILL
  local pid=$1
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

drop_pg_tables() { # prefix
  command -v psql >/dev/null || { echo "   (psql missing: tables $1* left in place)"; return 0; }
  local t tables=""
  for t in jwt_auth_refresh_tokens jwt_auth_sessions jwt_auth_user_cutoffs jwt_auth_schema_versions users; do
    tables+="${tables:+, }$1$t"
  done
  psql -q "$PG_URL" -c "DROP TABLE IF EXISTS $tables CASCADE" >/dev/null 2>&1 || true
}

cleanup() {
  stop_pid "$SAMPLER_PID"
  stop_pid "$SERVER_PID"
  local p
  for p in "${PG_PREFIXES[@]}"; do drop_pg_tables "$p"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ helpers
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }

start_server() { # backend -> sets SERVER_PID, BASE
  local backend=$1 url prefix=""
  case $backend in
    sqlite) url="sqlite://$WORK/loadtest.db" ;;
    postgres)
      url=$PG_URL
      prefix="lt_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')_"
      PG_PREFIXES+=("$prefix")
      ;;
    *) die "unknown backend $backend (sqlite or postgres)" ;;
  esac
  : >"$WORK/server.out"
  : >"$WORK/server.err"
  # Request logging off (RUST_LOG=warn): a log line per request would be the
  # bottleneck. Access tokens live an hour so none expires during the runs.
  env -u REDIS_URL -u JWT_ALG -u JWT_PRIVATE_KEY_FILE -u METRICS_BIND \
    BIND=127.0.0.1:0 DATABASE_URL="$url" TABLE_PREFIX="$prefix" \
    JWT_SECRET="$(head -c 48 /dev/urandom | base64 | tr -d '\n')" \
    ACCESS_TTL_SECS=3600 RUST_LOG=warn \
    "$SERVER_BIN" >"$WORK/server.out" 2>"$WORK/server.err" &
  SERVER_PID=$!
  BASE=""
  for _ in $(seq 1 600); do
    BASE=$(grep -o 'listening on http://[0-9.:]*' "$WORK/server.out" | head -n1 | sed 's/listening on //' || true)
    [[ -n $BASE ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $BASE ]]; then
    echo "   the server did not start:"
    sed 's/^/   | /' "$WORK/server.err"
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    return 1
  fi
  [[ $BASE == http://127.0.0.1:* ]] || die "the server is not on loopback: $BASE"
}

json_field() { sed -E "s/.*\"$1\":\"([^\"]+)\".*/\\1/"; }

# One result row per run, printed again in the summary.
SUMMARY=()
row() { SUMMARY+=("$*"); }
load1() { cut -d' ' -f1 /proc/loadavg; }

run_wrk_me() { # backend
  local out="$WORK/wrk.txt" load
  load=$(load1)
  wrk --latency -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s \
    -H "Authorization: Bearer $ACCESS" "$BASE/api/me/" | tee "$out"
  local rps p50 p99 reqs non2xx sock
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p50=$(awk '$1 == "50%" {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  reqs=$(awk '/requests in/ {print $1}' "$out")
  non2xx=$(awk -F: '/Non-2xx or 3xx responses/ {gsub(/ /, "", $2); print $2}' "$out")
  sock=$(awk '/Socket errors/ {n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i; print n}' "$out")
  local errors=$((${non2xx:-0} + ${sock:-0}))
  row "| $1 | GET /api/me/ | wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s | $reqs | $rps | $p50 | $p99 | $errors | $load |"
}

loadgen_field() { # line key
  sed -E "s/.* $2=([^ ]+).*/\\1/" <<<"$1"
}

run_loadgen() { # backend mode label extra-args...
  local backend=$1 mode=$2 label=$3
  shift 3
  local line load
  load=$(load1)
  line=$("$LOADGEN_BIN" --base "$BASE" --mode "$mode" --username "$USERNAME" \
    --password "$PASSWORD" --workers "$CONNECTIONS" "$@")
  echo "$line"
  row "| $backend | $label | loadgen $mode, $CONNECTIONS workers | $(loadgen_field "$line" requests) | $(loadgen_field "$line" rps) | $(loadgen_field "$line" p50) | $(loadgen_field "$line" p99) | $(loadgen_field "$line" errors) | $load |"
  LAST_LOADGEN=$line
}

MEMORY=()

memory_run() { # backend
  local backend=$1 start_kb=$2 warm_kb samples="$WORK/rss.txt"
  warm_kb=$(rss_kb "$SERVER_PID")
  : >"$samples"
  (
    # Bounded: at most MILLION_LIMIT/5 + 2 samples, and only while the server lives.
    for _ in $(seq 1 $((MILLION_LIMIT / 5 + 2))); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      echo "$(date +%s) $(rss_kb "$SERVER_PID")" >>"$samples"
      sleep 5
    done
  ) &
  SAMPLER_PID=$!
  echo "-- $backend: $MILLION x GET /api/me/ (loadgen, exact count), VmRSS sampled every 5 s"
  run_loadgen "$backend" me "GET /api/me/ x $MILLION (memory run)" \
    --requests "$MILLION" --duration "$MILLION_LIMIT"
  local end_kb
  end_kb=$(rss_kb "$SERVER_PID")
  stop_pid "$SAMPLER_PID"
  SAMPLER_PID=""
  local n min max
  n=$(wc -l <"$samples")
  min=$(awk 'NR == 1 || $2 < m {m = $2} END {print m + 0}' "$samples")
  max=$(awk '$2 > m {m = $2} END {print m + 0}' "$samples")
  echo "   VmRSS samples (unix time, kB):"
  sed 's/^/   | /' "$samples"
  MEMORY+=("| $backend | $(loadgen_field "$LAST_LOADGEN" requests) | $(mib "$start_kb") | $(mib "$warm_kb") | $(mib "$min") / $(mib "$max") ($n samples) | $(mib "$end_kb") | $(mib $((end_kb - warm_kb))) |")
}

# ------------------------------------------------------------------ the runs
echo "== machine: $(nproc) CPUs, $(lscpu 2>/dev/null | awk -F: '/^Model name/ {gsub(/^ +/, "", $2); print $2; exit}'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $(rustc --version), $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
echo "== settings: BACKENDS='$BACKENDS' DURATION=$DURATION CONNECTIONS=$CONNECTIONS WRK_THREADS=$WRK_THREADS MILLION=$MILLION MILLION_ON='$MILLION_ON'"
SKIPPED=()
for backend in $BACKENDS; do
  echo
  echo "== $backend"
  if ! start_server "$backend"; then
    SKIPPED+=("$backend: the server did not start (database unreachable?)")
    continue
  fi
  start_kb=$(rss_kb "$SERVER_PID")
  echo "   server pid $SERVER_PID at $BASE, VmRSS at start $(mib "$start_kb")"
  curl -fsS -X POST "$BASE/api/users/" -H 'Content-Type: application/json' \
    -d "{\"username\":\"$USERNAME\",\"password\":\"$PASSWORD\"}" >/dev/null
  ACCESS=$(curl -fsS -X POST "$BASE/api/token/" -H 'Content-Type: application/json' \
    -d "{\"username\":\"$USERNAME\",\"password\":\"$PASSWORD\"}" | json_field access)
  [[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE/api/me/" -H "Authorization: Bearer $ACCESS") == 200 ]] ||
    die "$backend: GET /api/me/ does not answer 200 with a fresh token"

  echo "-- $backend: warm-up, 5 s of GET /api/me/ (not counted)"
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d5s -H "Authorization: Bearer $ACCESS" "$BASE/api/me/" >/dev/null
  echo "-- $backend: GET /api/me/, wrk, ${DURATION} s"
  run_wrk_me "$backend"
  echo "-- $backend: POST /api/token/refresh/, loadgen, ${DURATION} s"
  run_loadgen "$backend" refresh "POST /api/token/refresh/" --duration "$DURATION" --warmup 2

  if [[ " $MILLION_ON " == *" $backend "* ]]; then
    memory_run "$backend" "$start_kb"
  fi
  if grep -qiE 'panicked|error' "$WORK/server.err"; then
    echo "   the server's stderr:"
    sed 's/^/   | /' "$WORK/server.err" | head -n 20
  fi
  stop_pid "$SERVER_PID"
  SERVER_PID=""
done

# ------------------------------------------------------------------ summary
echo
echo "== summary ($(nproc) CPUs, load average at the end $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| backend | requests | generator | count | req/s | p50 | p99 | errors | load avg (1 min) at start |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${SUMMARY[@]}"
if ((${#MEMORY[@]})); then
  echo
  echo "| backend | requests | VmRSS at start | after warm-up (before the run) | min / max during the run | at the end | end - before |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${MEMORY[@]}"
fi
for s in "${SKIPPED[@]}"; do echo "skipped: $s"; done
((${#SKIPPED[@]} == 0))

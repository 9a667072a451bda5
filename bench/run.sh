#!/usr/bin/env bash
# `make bench`: PayNotify's benchmarks on this machine, over loopback only, each beside PostgreSQL's
# own ceiling measured with pgbench running the service's webhook transaction (bench/webhook-pipeline.sql,
# bench/webhook.sql, bench/webhook-notify.sql) on the same cluster. This script only runs processes; the figures are
# made by Python (standard library only) beside it:
#   bench/record.py     one run's output -> one JSON line of results.jsonl (and the settings file)
#   bench/summary.py    results.jsonl + settings.json + bench/targets.json -> tables, summary.json
#   bench/targets.json  the targets, each with its value and what it means
#   bench/netutil.py    a free loopback port; an HTTP status when curl is missing
#
#   1. builds the release binaries, one `swift build --product` each (BENCH_SKIP_BUILD=1 skips it);
#   2. starts a dedicated PostgreSQL cluster in .build-bench/postgres, made afresh every run, in
#      scripts/pg-cluster.sh's default mode (durable: fsync and synchronous_commit on, not "test");
#   3. applies the migrations and seeds BENCH_PGBENCH_ORDERS orders for pgbench (bench/seed.sql);
#   4. starts `paynotify serve` on a free 127.0.0.1 port and runs paynotify-loadgen's benchmarks,
#      each webhook one followed by pgbench at the same concurrency (and, for `deliver`, the same
#      rate): webhook-pipeline.sql in -M prepared (the service prepares its statements and pipelines
#      its writes: the ceiling the targets use), webhook.sql (one statement a round trip) in
#      -M prepared and in -M extended (parse and plan every time), and webhook-notify.sql in
#      -M prepared; the fan-out is followed by its floor (bench/fanout-floor.c: the same writes and
#      reads with only the kernel); the server's CPU time (utime + stime, /proc/<pid>/stat) is read
#      around each throughput run, for its CPU per accepted webhook;
#   5. the merchant webhook runs (merchant_phase: intake with and without an endpoint, pgbench with
#      the outbox insert, delivery latency at BENCH_RATE, a hanging endpoint, a backlog's drain);
#   5b. the reconciliation run (reconcile_phase: orders whose callbacks are lost, found by asking the
#      provider emulator, with the queries counted against the schedule and the rate limit); with
#      BENCH_RECONCILE=1 the emulator starts before step 4 and every server reconciles all three
#      providers against it, so the intake and stream figures are measured with the reconciler on;
#      before it, BENCH_AB_PAIRS rounds of intake and stream runs with the reconciler off, on, and
#      with statements unprepared (as behind a transaction-mode pooler);
#   6. pinned (BENCH_PINNED): restarts the cluster under `taskset -c BENCH_PIN_DB_CPU` (the
#      postmaster and every backend on that CPU, checked with `taskset -p`), and runs the throughput
#      runs again with the server, the load generator and pgbench (both scripts) under
#      `taskset -c BENCH_PIN_CLIENT_CPU`: the ratio then shows the database path alone;
#   7. prints the pgbench figures and a summary table against bench/targets.json, PASS or MISS
#      (the pinned rows and CPU per webhook are information, not targets).
#
# Everything lands in .build-bench/ (git-ignored by `.build-*`):
#   results.jsonl       one JSON object a line: each loadgen run's own line (`{"benchmark": …}`) with
#                       "run", "exit_status", "argv", "pinned" added (throughput: also "server_cpu_s"
#                       and "server_cpu_us_per_webhook"), and one `{"benchmark": "pgbench", …}` line
#                       per pgbench run ("mode", "pinned", tps, latency_ms {p50, p99, p999, max,
#                       mean} from its -l log)
#   settings.json       this run's settings (knobs, database settings, CPUs, pinning as checked)
#   summary.json        the settings, the targets, the summary rows and the pgbench lines
#   loadgen_<run>.out/.err, pgbench_<run>.txt, pgbench-logs/, server.log, postgres/
#
# Knobs (environment): BENCH_SECONDS (each timed run, 15), BENCH_RATE (deliver rate and pgbench -R,
# 500), BENCH_CONCURRENCY / BENCH_CONCURRENCY_LOW (throughput, 32 and 8), BENCH_STREAMS (19000),
# BENCH_DELIVER_STREAMS (10000), BENCH_FANOUT (10000), BENCH_RECONNECT (10000),
# BENCH_RECONNECT_RATE, BENCH_POOL (server pool; pgbench -c of the rate runs, 16),
# BENCH_PGBENCH_ORDERS (2000), BENCH_PGBENCH_THREADS (2), BENCH_PGBENCH_NOTIFY (0 skips the
# webhook-notify.sql runs), BENCH_PINNED (auto: the pinned runs when taskset and both CPUs are
# there; 1: required; 0: none), BENCH_PIN_DB_CPU (0), BENCH_PIN_CLIENT_CPU (1), BENCH_BUDGET,
# BENCH_BUILD_TIMEOUT, BENCH_SKIP_BUILD, BENCH_BIN_DIR (.build/release), BENCH_ONLY_PGBENCH,
# BENCH_FAIL_ON_MISS, BENCH_MERCHANT (1, 0, or `only`: the merchant webhook runs and nothing else),
# BENCH_BACKLOG, BENCH_RECONCILE (1, 0, or `only`), BENCH_RECONCILE_ORDERS (10000),
# BENCH_RECONCILE_RATE (200), BENCH_AB_PAIRS (2). The values are in "Knobs" below.
#
# BENCH_ONLY_PGBENCH=1 runs only the cluster, the migrations (applied with psql), the seed and the
# pgbench runs (pinned ones included): no Swift binary is needed. The run is bounded: every step has
# a `timeout`, and the steps after the build share BENCH_BUDGET seconds (a step that would start past
# it is skipped and reported). Whatever it started (server, loadgen, pgbench, the cluster) is
# stopped on exit, by pid.
#
# Exit status: 0 when every benchmark produced its figures (MISS rows included; BENCH_FAIL_ON_MISS=1
# makes a MISS fail the run too), 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# ---- Knobs ----------------------------------------------------------------------------------------
BENCH_SECONDS=${BENCH_SECONDS:-15}                 # duration of each timed run (loadgen and pgbench)
BENCH_RATE=${BENCH_RATE:-500}                      # deliver rate, webhooks/s (pgbench -R)
BENCH_CONCURRENCY=${BENCH_CONCURRENCY:-32}         # throughput concurrency (also run at 8)
BENCH_CONCURRENCY_LOW=${BENCH_CONCURRENCY_LOW:-8}
BENCH_STREAMS=${BENCH_STREAMS:-19000}
BENCH_DELIVER_STREAMS=${BENCH_DELIVER_STREAMS:-10000}
BENCH_FANOUT=${BENCH_FANOUT:-10000}
BENCH_RECONNECT=${BENCH_RECONNECT:-10000}
BENCH_RECONNECT_RATE=${BENCH_RECONNECT_RATE:-$BENCH_RATE}
BENCH_POOL=${BENCH_POOL:-16}                       # PAYNOTIFY_DB_POOL_SIZE; pgbench -c for the rate runs
BENCH_PGBENCH_ORDERS=${BENCH_PGBENCH_ORDERS:-2000} # orders seeded for pgbench
BENCH_PGBENCH_THREADS=${BENCH_PGBENCH_THREADS:-2}
BENCH_PGBENCH_NOTIFY=${BENCH_PGBENCH_NOTIFY:-1}    # 1: also webhook-notify.sql (-M prepared)
BENCH_PINNED=${BENCH_PINNED:-auto}                 # auto | 1 | 0: the pinned throughput runs
BENCH_PIN_DB_CPU=${BENCH_PIN_DB_CPU:-0}            # pinned: PostgreSQL's CPU
BENCH_PIN_CLIENT_CPU=${BENCH_PIN_CLIENT_CPU:-1}    # pinned: the server's, the loadgen's and pgbench's
BENCH_MERCHANT=${BENCH_MERCHANT:-1}                # 1: the merchant webhook runs; 0: none; only: nothing else
BENCH_RECONCILE=${BENCH_RECONCILE:-1}             # 1: the reconciliation run; 0: none; only: nothing else
BENCH_RECONCILE_ORDERS=${BENCH_RECONCILE_ORDERS:-10000} # orders whose callbacks are lost, in that run
BENCH_RECONCILE_RATE=${BENCH_RECONCILE_RATE:-200}  # its WeChat Pay rate limit, queries a second
BENCH_AB_PAIRS=${BENCH_AB_PAIRS:-2}                # rounds of intake and stream runs: reconciler off, on, unprepared (0: none)
BENCH_BACKLOG=${BENCH_BACKLOG:-100000}             # messages in the merchant backlog drain run
# Seconds for everything after the build; by default 1200 + 30 x BENCH_SECONDS: 25 timed runs (30
# leaves some slack), the set-up of the stream runs (their orders), the servers' and the clusters'
# starts, and the merchant runs' drains (the backlog's above all).
BENCH_BUDGET=${BENCH_BUDGET:-}
BENCH_BUILD_TIMEOUT=${BENCH_BUILD_TIMEOUT:-1800}   # seconds for the whole build (both products)
BENCH_SKIP_BUILD=${BENCH_SKIP_BUILD:-0}
BENCH_ONLY_PGBENCH=${BENCH_ONLY_PGBENCH:-0}
BENCH_FAIL_ON_MISS=${BENCH_FAIL_ON_MISS:-0}
BENCH_BIN_DIR=${BENCH_BIN_DIR:-.build/release}     # where paynotify and paynotify-loadgen are
BENCH_NOFILE=20000                                 # open files per process (this machine's hard limit)

# The targets are in bench/targets.json (bench/summary.py reads them).
TARGETS=bench/targets.json

# Server settings (loopback benchmark values, not secrets of any deployment).
API_KEY=bench-merchant-key-0123456789
STREAM_SECRET=bench-stream-secret-0123456789abcdef0123
SANDBOX_SECRET=bench-sandbox-secret
ADMIN_TOKEN=bench-admin-token-0123456789

OUT=$ROOT/.build-bench
PG_DIR=$OUT/postgres
RESULTS=$OUT/results.jsonl
SETTINGS=$OUT/settings.json
PAYNOTIFY=$BENCH_BIN_DIR/paynotify
LOADGEN=$BENCH_BIN_DIR/paynotify-loadgen

say() { printf 'bench: %s\n' "$*"; }
warn() { printf 'bench: %s\n' "$*" >&2; }

for knob in BENCH_SECONDS BENCH_RATE BENCH_CONCURRENCY BENCH_CONCURRENCY_LOW BENCH_STREAMS BENCH_DELIVER_STREAMS \
    BENCH_FANOUT BENCH_RECONNECT BENCH_RECONNECT_RATE BENCH_POOL BENCH_PGBENCH_ORDERS BENCH_PGBENCH_THREADS \
    BENCH_BUILD_TIMEOUT BENCH_PIN_DB_CPU BENCH_PIN_CLIENT_CPU BENCH_BACKLOG BENCH_BUDGET BENCH_RECONCILE_ORDERS \
    BENCH_RECONCILE_RATE BENCH_AB_PAIRS; do
    [ "$knob" = BENCH_BUDGET ] && [ -z "$BENCH_BUDGET" ] && BENCH_BUDGET=$((1200 + 30 * BENCH_SECONDS))
    [[ ${!knob} =~ ^[0-9]+$ ]] || { warn "$knob must be a whole number, not '${!knob}'"; exit 1; }
done
case $BENCH_PINNED in auto | 0 | 1) ;; *) warn "BENCH_PINNED must be auto, 1 or 0, not '$BENCH_PINNED'"; exit 1 ;; esac
case $BENCH_MERCHANT in 0 | 1 | only) ;; *) warn "BENCH_MERCHANT must be 1, 0 or only, not '$BENCH_MERCHANT'"; exit 1 ;; esac
case $BENCH_RECONCILE in 0 | 1 | only) ;; *) warn "BENCH_RECONCILE must be 1, 0 or only, not '$BENCH_RECONCILE'"; exit 1 ;; esac
# The reconciliation run alone: no merchant runs and no pinned pass either.
if [ "$BENCH_RECONCILE" = only ]; then
    BENCH_MERCHANT=0
    BENCH_PINNED=0
fi

# ---- Processes this script started, and their cleanup -----------------------------------------------
CHILD=""          # the bounded step running now (a `timeout` process)
SERVER_PID=""
SERVER_URL=""
RECEIVER_PID=""   # the merchant runs' receiver (`paynotify listen`)
EMULATOR_PID=""   # the provider emulator (`paynotify emulate-providers`)
EMULATOR_URL=""
HANG_PID=""       # and their hanging endpoint (bench/merchant.py hang)
CLUSTER_STARTED=0
FAILED=()         # runs that produced no figures
PIN=()            # in the pinned phase: `taskset -c BENCH_PIN_CLIENT_CPU`, before the server and clients
PINNED_FLAG=()    # in the pinned phase: --pinned, for bench/record.py
DEADLINE=$((SECONDS + BENCH_BUILD_TIMEOUT))

# Alive and not yet a zombie: a child of ours keeps its pid until it is reaped, so the pid is ours.
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    if alive "$SERVER_PID"; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            alive "$SERVER_PID" || break
            sleep 0.2
        done
        if alive "$SERVER_PID"; then
            warn "server (pid $SERVER_PID) still running 20 s after SIGTERM; sending SIGKILL"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# stop_pid VAR: SIGTERM to the process whose pid VAR holds (ours, started in the background), reaped.
stop_pid() {
    local pid=${!1}
    [ -n "$pid" ] || return 0
    alive "$pid" && kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
    printf -v "$1" '%s' ""
}

# shellcheck disable=SC2317  # invoked by the EXIT trap, which shellcheck does not follow
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ -n "$CHILD" ]; then
        # timeout(1) passes the signal on to its command, and SIGKILLs it 10 s later if need be.
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
        CHILD=""
    fi
    stop_server
    stop_pid RECEIVER_PID
    stop_pid EMULATOR_PID
    stop_pid HANG_PID
    if [ "$CLUSTER_STARTED" = 1 ]; then
        scripts/pg-cluster.sh stop "$PG_DIR" || warn "could not stop the cluster in $PG_DIR"
        say "stopped the PostgreSQL cluster in ${PG_DIR#"$ROOT"/}"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# bounded [-o OUT] [-e ERR] [-O BOTH] LIMIT COMMAND…: runs COMMAND under timeout(1), for at most
# LIMIT seconds and never past the deadline, with its output sent where the options say (given here
# rather than as redirections of the call, which would also capture the EXIT trap's messages when a
# signal lands during the step). In the background, so that a signal to this script is handled at
# once rather than when the step ends.
bounded() {
    local out="" err="" both="" limit left
    while :; do
        case $1 in
        -o) out=$2; shift 2 ;;
        -e) err=$2; shift 2 ;;
        -O) both=$2; shift 2 ;;
        *) break ;;
        esac
    done
    limit=$1
    shift
    left=$((DEADLINE - SECONDS))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -le 5 ]; then
        warn "skipped, the time budget is spent (BENCH_BUILD_TIMEOUT=${BENCH_BUILD_TIMEOUT}s for the build, BENCH_BUDGET=${BENCH_BUDGET}s after it): $*"
        return 124
    fi
    (
        if [ -n "$both" ]; then exec >"$both" 2>&1; fi
        if [ -n "$out" ]; then exec >"$out"; fi
        if [ -n "$err" ]; then exec 2>"$err"; fi
        exec timeout --kill-after=10 "$limit" "$@"
    ) &
    CHILD=$!
    local status=0
    wait "$CHILD" || status=$?
    CHILD=""
    [ "$status" -eq 124 ] && warn "timed out after ${limit}s: $*"
    return "$status"
}

http_status() {
    if command -v curl >/dev/null; then
        curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true
    else
        python3 bench/netutil.py http-status "$1"
    fi
}

# utime + stime of process PID in clock ticks, all its threads (fields 14 and 15 of /proc/PID/stat,
# counted after the command name's closing parenthesis, which may hold spaces).
cpu_ticks() {
    local stat fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    read -r -a fields <<<"${stat##*) }"
    echo $((fields[11] + fields[12]))
}

# The CPU list a process may run on (`taskset -cp`), e.g. "0" or "0,1".
affinity() {
    local out
    out=$(taskset -cp "$1" 2>/dev/null) || return 1
    echo "${out##*: }"
}

SERVER_ENV=(
    PAYNOTIFY_HOST=127.0.0.1
    PAYNOTIFY_API_KEYS="$API_KEY"
    PAYNOTIFY_STREAM_SECRET="$STREAM_SECRET"
    PAYNOTIFY_SANDBOX_SECRETS="$SANDBOX_SECRET"
    PAYNOTIFY_ADMIN_TOKEN="$ADMIN_TOKEN"
    PAYNOTIFY_MAX_STREAMS=20000
    PAYNOTIFY_MAX_STREAMS_PER_IP=20000
    PAYNOTIFY_MAX_STREAMS_PER_ORDER=16
    PAYNOTIFY_DB_POOL_SIZE="$BENCH_POOL"
    PAYNOTIFY_LOG_LEVEL=warning
    # The merchant runs' receivers are on loopback.
    PAYNOTIFY_ALLOW_HTTP_WEBHOOKS=true
    PAYNOTIFY_WEBHOOK_ALLOWED_CIDRS=127.0.0.0/8
)

# The reconciler's settings the server starts with, on top of SERVER_ENV: none, or every provider
# against the emulator (start_emulator's PROVIDER_ENV).
RECONCILER_ENV=()

# start_server: `paynotify serve` on a free loopback port (under PIN in the pinned phase); waits for
# GET /readyz. SERVER_PID is paynotify's own pid (taskset and env exec it).
start_server() {
    local port status=""
    port=$(python3 bench/netutil.py free-port) || port=""
    [ -n "$port" ] || { warn "no free port on 127.0.0.1"; return 1; }
    printf '=== %s: paynotify serve on 127.0.0.1:%s%s ===\n' "$(date -u +%FT%TZ)" "$port" \
        "${PIN:+ (${PIN[*]})}" >>"$OUT/server.log"
    "${PIN[@]}" env DATABASE_URL="$DB_URL" PAYNOTIFY_PORT="$port" "${SERVER_ENV[@]}" "${RECONCILER_ENV[@]}" \
        "$PAYNOTIFY" serve </dev/null >>"$OUT/server.log" 2>&1 &
    SERVER_PID=$!
    SERVER_URL=http://127.0.0.1:$port
    for _ in $(seq 1 300); do
        if ! alive "$SERVER_PID"; then
            warn "the server exited during startup; the end of ${OUT#"$ROOT"/}/server.log:"
            tail -n 20 "$OUT/server.log" >&2
            wait "$SERVER_PID" 2>/dev/null || true
            SERVER_PID=""
            return 1
        fi
        status=$(http_status "$SERVER_URL/readyz")
        [ "$status" = 200 ] && break
        if [ $((DEADLINE - SECONDS)) -le 0 ]; then break; fi
        sleep 0.2
    done
    if [ "$status" != 200 ]; then
        warn "the server was not ready within 60 s (GET /readyz: $status)"
        tail -n 20 "$OUT/server.log" >&2
        return 1
    fi
    say "server pid $SERVER_PID ready on $SERVER_URL (pool $BENCH_POOL, CPUs $(affinity "$SERVER_PID" || echo '?'))"
}

restart_server() {
    say "restarting the server (fresh process for clean stream and RSS figures)"
    stop_server
    start_server
}

checkpoint() { bounded -o /dev/null 120 "$PSQL" -X -q -c CHECKPOINT "$DB_URL" || warn "CHECKPOINT failed"; }

# ---- The runs -------------------------------------------------------------------------------------
# loadgen RUN LIMIT SUBCOMMAND ARGS…: one load generator run against the running server (under PIN
# in the pinned phase), recorded by bench/record.py; for throughput, with the server's CPU ticks
# before and after.
loadgen() {
    local run=$1 limit=$2 status=0 before="" after=""
    shift 2
    checkpoint
    say "service: $run ($*)"
    local cpu=()
    [ "$1" = throughput ] && before=$(cpu_ticks "$SERVER_PID" || true)
    bounded -o "$OUT/loadgen_$run.out" -e "$OUT/loadgen_$run.err" "$limit" \
        "${PIN[@]}" "$LOADGEN" "$1" --url "$SERVER_URL" --api-key "$API_KEY" --sandbox-secret "$SANDBOX_SECRET" \
        --admin-token "$ADMIN_TOKEN" --server-pid "$SERVER_PID" "${@:2}" || status=$?
    [ "$1" = throughput ] && after=$(cpu_ticks "$SERVER_PID" || true)
    if [ -n "$before" ] && [ -n "$after" ]; then
        cpu=(--cpu-ticks-before "$before" --cpu-ticks-after "$after" --clk-tck "$CLK_TCK")
    fi
    grep -v '^{"benchmark":' "$OUT/loadgen_$run.out" || true
    if ! python3 bench/record.py loadgen --results "$RESULTS" --run "$run" --status "$status" \
        --output "$OUT/loadgen_$run.out" "${PINNED_FLAG[@]}" "${cpu[@]}" -- "$@" || [ "$status" -ne 0 ]; then
        warn "$run failed (exit status $status); the end of ${OUT#"$ROOT"/}/loadgen_$run.err:"
        tail -n 15 "$OUT/loadgen_$run.err" >&2 || true
        FAILED+=("$run")
    fi
}

# fanout_floor RUN: bench/fanout-floor.c, the fan-out with nothing but the kernel in the way (one
# write to each of BENCH_FANOUT loopback connections, read by another process), compiled with the
# machine's C compiler or the Swift toolchain's clang; the fan-out's own ceiling, as pgbench is the
# webhooks'.
fanout_floor() {
    local run=$1 compiler status=0
    rm -f "$OUT/$run.out"
    compiler=$(command -v cc || command -v clang || true)
    if [ -z "$compiler" ]; then
        warn "no C compiler (cc or clang): the fan-out floor is not measured"
        return 0
    fi
    bounded 120 "$compiler" -O2 -pthread -o "$OUT/fanout-floor" bench/fanout-floor.c || status=$?
    say "floor: $run (fanout-floor $BENCH_FANOUT)"
    [ "$status" -eq 0 ] && { bounded -o "$OUT/$run.out" -e "$OUT/$run.err" 90 "$OUT/fanout-floor" "$BENCH_FANOUT" ||
        status=$?; }
    touch "$OUT/$run.out"
    if ! python3 bench/record.py loadgen --results "$RESULTS" --run "$run" --status "$status" \
        --output "$OUT/$run.out" -- fanout_floor "$BENCH_FANOUT" || [ "$status" -ne 0 ]; then
        warn "$run failed (exit status $status)"
        FAILED+=("$run")
    fi
}

# pgbench_run RUN SCRIPT MODE CLIENTS [RATE]: pgbench -M MODE with the service's transaction (under
# PIN in the pinned phase); bench/record.py turns its summary and per-transaction log into a
# {"benchmark": "pgbench", …} line of results.jsonl.
pgbench_run() {
    local run=$1 script=$2 mode=$3 clients=$4 rate=${5:-} status=0 threads=$BENCH_PGBENCH_THREADS
    [ "$threads" -gt "$clients" ] && threads=$clients
    local logs=$OUT/pgbench-logs
    mkdir -p "$logs"
    rm -f "$logs/$run".*
    local args=(-n -M "$mode" -f "bench/$script" -D "orders=$BENCH_PGBENCH_ORDERS" -c "$clients" -j "$threads"
        -T "$BENCH_SECONDS" -l --log-prefix="$logs/$run")
    local rated=()
    if [ -n "$rate" ]; then
        args+=(-R "$rate")
        rated=(--rate "$rate")
    fi
    checkpoint
    say "pgbench: $run (${PIN[*]:+${PIN[*]} }pgbench ${args[*]})"
    bounded -O "$OUT/$run.txt" $((BENCH_SECONDS + 60)) "${PIN[@]}" "$PGBENCH" "${args[@]}" "$DB_URL" || status=$?
    if ! python3 bench/record.py pgbench --results "$RESULTS" --run "$run" --script "$script" --mode "$mode" \
        --clients "$clients" --threads "$threads" "${rated[@]}" --seconds "$BENCH_SECONDS" --status "$status" \
        --summary "$OUT/$run.txt" --log-prefix "$logs/$run" "${PINNED_FLAG[@]}"; then
        warn "$run failed (exit status $status); the end of ${OUT#"$ROOT"/}/$run.txt:"
        tail -n 8 "$OUT/$run.txt" >&2 || true
        FAILED+=("$run")
    fi
}

# pgbench_set NAME CLIENTS [RATE]: webhook-pipeline.sql in -M prepared (the service's protocol and
# round trips, the ceiling the targets use), webhook.sql in -M prepared and -M extended, then
# webhook-notify.sql in -M prepared (BENCH_PGBENCH_NOTIFY=1).
pgbench_set() {
    pgbench_run "pgbench_$1_pipeline_prepared" webhook-pipeline.sql prepared "$2" "${3:-}"
    pgbench_run "pgbench_$1_plain_prepared" webhook.sql prepared "$2" "${3:-}"
    pgbench_run "pgbench_$1_plain_extended" webhook.sql extended "$2" "${3:-}"
    if [ "$BENCH_PGBENCH_NOTIFY" = 1 ]; then
        pgbench_run "pgbench_$1_notify_prepared" webhook-notify.sql prepared "$2" "${3:-}"
    fi
}

# start_cluster CPUS [PORT]: starts the cluster in PG_DIR (made on first use; PORT "auto" picks a
# free one, none keeps its last), under `taskset -c CPUS` unless CPUS is empty: the postmaster and
# every process it forks then run on CPUS only. Sets DB_URL.
start_cluster() {
    local command=(scripts/pg-cluster.sh start "$PG_DIR")
    [ -n "${2:-}" ] && command+=("$2")
    [ -n "$1" ] && command=(taskset -c "$1" "${command[@]}")
    CLUSTER_STARTED=1
    bounded -o "$OUT/database_url" 120 "${command[@]}" || return
    DB_URL=$(cat "$OUT/database_url")
    [ -n "$DB_URL" ]
}

# check_db_pinning CPUS: the postmaster's and each of its children's CPU list is CPUS (taskset -p).
check_db_pinning() {
    local postmaster child list bad=0 count=0
    postmaster=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null) || postmaster=""
    [[ $postmaster =~ ^[0-9]+$ ]] || { warn "pinned: no postmaster pid in ${PG_DIR#"$ROOT"/}/data/postmaster.pid"; return 1; }
    list=$(affinity "$postmaster") || list="?"
    say "pinned: postmaster pid $postmaster: $(taskset -p "$postmaster" 2>&1) (CPU list $list)"
    [ "$list" = "$1" ] || bad=1
    for child in $(ps -o pid= --ppid "$postmaster"); do
        count=$((count + 1))
        if [ "$(affinity "$child" || echo '?')" != "$1" ]; then
            warn "pinned: postgres process $child runs on CPUs $(affinity "$child" || echo '?'), not $1"
            bad=1
        fi
    done
    say "pinned: $count processes forked by the postmaster, $([ "$bad" = 0 ] && echo "all on CPU $1" || echo "NOT all on CPU $1")"
    return "$bad"
}

# The pinned phase: the cluster restarted under taskset -c BENCH_PIN_DB_CPU, then the server, the
# load generator and pgbench under taskset -c BENCH_PIN_CLIENT_CPU, for the throughput runs.
pinned_phase() {
    local verified=true server_list=""
    say "pinned: PostgreSQL on CPU $BENCH_PIN_DB_CPU; the server, the load generator and pgbench on CPU $BENCH_PIN_CLIENT_CPU"
    stop_server
    bounded 90 scripts/pg-cluster.sh stop "$PG_DIR" || { warn "pinned: could not stop the cluster"; FAILED+=(pinned); return 0; }
    if ! start_cluster "$BENCH_PIN_DB_CPU"; then
        warn "pinned: could not start the cluster again"
        FAILED+=(pinned)
        return 0
    fi
    if ! check_db_pinning "$BENCH_PIN_DB_CPU"; then
        verified=false
        FAILED+=(pinned_database)
    fi
    PIN=(taskset -c "$BENCH_PIN_CLIENT_CPU")
    PINNED_FLAG=(--pinned)
    if [ "$BENCH_ONLY_PGBENCH" != 1 ]; then
        if ! start_server; then
            FAILED+=(pinned_server)
            PIN=()
            PINNED_FLAG=()
            return 0
        fi
        server_list=$(affinity "$SERVER_PID" || echo '?')
        if [ "$server_list" != "$BENCH_PIN_CLIENT_CPU" ]; then
            warn "pinned: the server runs on CPUs $server_list, not $BENCH_PIN_CLIENT_CPU"
            verified=false
            FAILED+=(pinned_server)
        fi
        # Again with the server's connections open: their backends too.
        if [ "$verified" = true ] && ! check_db_pinning "$BENCH_PIN_DB_CPU"; then
            verified=false
            FAILED+=(pinned_database)
        fi
    fi
    python3 bench/record.py settings "$SETTINGS" "pinned={\"enabled\": true, \"db_cpus\": \"$BENCH_PIN_DB_CPU\",
        \"client_cpus\": \"$BENCH_PIN_CLIENT_CPU\", \"postgres_affinity\": \"$(affinity "$(head -n 1 "$PG_DIR/data/postmaster.pid")" || echo '?')\",
        \"server_affinity\": \"${server_list:-n/a}\", \"verified\": $verified}"
    for c in "${concurrencies[@]}"; do
        if [ "$BENCH_ONLY_PGBENCH" != 1 ]; then
            loadgen "pinned_throughput_c$c" $((BENCH_SECONDS + 90)) throughput --concurrency "$c" --seconds "$BENCH_SECONDS"
        fi
        pgbench_run "pgbench_pinned_throughput_c${c}_pipeline_prepared" webhook-pipeline.sql prepared "$c"
        pgbench_run "pgbench_pinned_throughput_c${c}_plain_prepared" webhook.sql prepared "$c"
        pgbench_run "pgbench_pinned_throughput_c${c}_plain_extended" webhook.sql extended "$c"
    done
    stop_server
    PIN=()
    PINNED_FLAG=()
}

# ---- Merchant webhooks ----------------------------------------------------------------------------
# sql QUERY: one psql query on the bench database, unaligned output.
sql() { timeout 120 "$PSQL" -X -Atq -v ON_ERROR_STOP=1 -c "$1" "$DB_URL"; }

pending() { sql "SELECT count(*) FROM webhook_messages WHERE status = 'pending'"; }

# wait_drained LIMIT: waits (polling every 0.2 s) until no message is pending, at most LIMIT seconds
# and never past the deadline; prints the seconds it took, or nothing when it did not drain.
wait_drained() {
    local start=${EPOCHREALTIME/./} now left
    while :; do
        left=$(pending) || left=""
        now=${EPOCHREALTIME/./}
        if [ "$left" = 0 ]; then
            printf '%d.%02d\n' $(((now - start) / 1000000)) $(((now - start) % 1000000 / 10000))
            return 0
        fi
        if [ $(((now - start) / 1000000)) -ge "$1" ] || [ $((DEADLINE - SECONDS)) -le 0 ]; then
            warn "merchant: ${left:-?} messages still pending after ${1}s"
            return 0
        fi
        sleep 0.2
    done
}

# figures RUN NAME=VALUE…: a line of figures measured here (not by the load generator).
figures() {
    local run=$1
    shift
    python3 bench/record.py figures --results "$RESULTS" --run "$run" --benchmark merchant "$@"
}

# backlog_sampler FILE: the pending count every second into FILE, until killed.
backlog_sampler() {
    while :; do
        pending >>"$1" || true
        sleep 1
    done
}

# delivered_latency SINCE: the messages made since SINCE (unix seconds): how many, how many
# delivered, and event committed -> delivery recorded in ms (the event's created_at is its
# transaction's start; delivered_at is set when the receiver's 2xx is recorded: both make the figure
# larger than commit -> received, never smaller).
delivered_latency() {
    sql "SELECT json_build_object('messages', count(*), 'delivered', count(*) FILTER (WHERE status = 'delivered'),
        'p50_ms', round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - created_at)) * 1000)::numeric, 2),
        'p99_ms', round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - created_at)) * 1000)::numeric, 2),
        'p999_ms', round((percentile_cont(0.999) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - created_at)) * 1000)::numeric, 2),
        'max_ms', round((max(extract(epoch FROM delivered_at - created_at)) * 1000)::numeric, 2))
        FROM webhook_messages WHERE created_at >= to_timestamp($1)"
}

# reconcile_phase: BENCH_RECONCILE_ORDERS WeChat Pay orders, each paid at the provider emulator
# (`paynotify emulate-providers`, real signing both ways) with its callback dropped, found by the
# server asking (first step 5 s after creation, BENCH_RECONCILE_RATE queries a second);
# bench/reconcile.py measures creation -> succeeded, counts the queries the emulator received per
# order and in the busiest second, and says whether they stayed within the schedule and the limit.
# start_emulator: `paynotify emulate-providers` on a free loopback port (keys made with openssl in
# .build-bench/keys), and PROVIDER_ENV: the server settings that reconcile all three providers
# against it. Idempotent: a second call finds it running.
PROVIDER_ENV=()
start_emulator() {
    local keys=$OUT/keys port status=""
    [ -n "$EMULATOR_PID" ] && return 0
    mkdir -p "$keys"
    for name in wechatpay-platform alipay wechatpay-merchant alipay-app; do
        [ -f "$keys/$name-private.pem" ] && continue
        if ! openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/$name-private.pem" 2>/dev/null ||
            ! openssl pkey -in "$keys/$name-private.pem" -pubout -out "$keys/$name-public.pem"; then
            warn "the provider emulator: could not make the keys"
            return 1
        fi
    done
    local shared_env=(
        PAYNOTIFY_WECHATPAY_MCHID=1900000000 PAYNOTIFY_WECHATPAY_APIV3_KEY=bench-apiv3-key-0123456789abcdef
        PAYNOTIFY_WECHATPAY_PLATFORM_KEYS="BENCH_PLATFORM=$keys/wechatpay-platform-public.pem"
        PAYNOTIFY_ALIPAY_APP_ID=2021000000000000 PAYNOTIFY_STRIPE_API_KEY=sk_test_bench_0123456789
        PAYNOTIFY_STRIPE_SECRETS=whsec_bench_stripe_secret
    )
    port=$(python3 bench/netutil.py free-port) || return 1
    # Its callbacks are all dropped in the reconciliation run, so where they would go does not matter.
    env "${shared_env[@]}" "$PAYNOTIFY" emulate-providers --port "$port" --keys "$keys" \
        --webhook-url http://127.0.0.1:9 </dev/null >>"$OUT/emulator.log" 2>&1 &
    EMULATOR_PID=$!
    EMULATOR_URL=http://127.0.0.1:$port
    for _ in $(seq 1 100); do
        status=$(http_status "$EMULATOR_URL/control/calls")
        [ "$status" = 200 ] && break
        sleep 0.1
    done
    [ "$status" = 200 ] || { warn "the provider emulator did not start"; stop_pid EMULATOR_PID; return 1; }
    PROVIDER_ENV=(
        "${shared_env[@]}" PAYNOTIFY_WECHATPAY_MERCHANT_SERIAL=BENCH_MERCHANT
        PAYNOTIFY_WECHATPAY_MERCHANT_KEY="$keys/wechatpay-merchant-private.pem"
        PAYNOTIFY_WECHATPAY_API_URL="$EMULATOR_URL" PAYNOTIFY_ALIPAY_PUBLIC_KEY="$keys/alipay-public.pem"
        PAYNOTIFY_ALIPAY_APP_PRIVATE_KEY="$keys/alipay-app-private.pem" PAYNOTIFY_ALIPAY_GATEWAY_URL="$EMULATOR_URL/gateway.do"
        PAYNOTIFY_STRIPE_API_URL="$EMULATOR_URL"
    )
    say "provider emulator pid $EMULATOR_PID on $EMULATOR_URL"
}

reconcile_phase() {
    local line
    say "reconciliation: $BENCH_RECONCILE_ORDERS orders whose callbacks are lost, at $BENCH_RECONCILE_RATE queries/s"
    start_emulator || { FAILED+=(reconcile); return 0; }
    local saved=("${RECONCILER_ENV[@]}")
    RECONCILER_ENV=(
        "${PROVIDER_ENV[@]}" PAYNOTIFY_WECHATPAY_RATE_LIMIT="$BENCH_RECONCILE_RATE" PAYNOTIFY_RECONCILE_AFTER="5s,1m,5m"
    )
    restart_server || { RECONCILER_ENV=("${saved[@]}"); FAILED+=(reconcile); return 0; }
    line=$(bounded 900 python3 bench/reconcile.py run "$SERVER_URL" "$API_KEY" "$EMULATOR_URL" "$DB_URL" \
        "$PSQL" "$BENCH_RECONCILE_ORDERS" "$BENCH_RECONCILE_RATE" 5,60,300 600) || line=""
    RECONCILER_ENV=("${saved[@]}")
    stop_server
    [ -n "$line" ] || { warn "reconciliation: no figures"; FAILED+=(reconcile); return 0; }
    say "reconciliation: $line"
    local fields
    read -ra fields <<<"$(python3 -c 'import json, sys
print(" ".join(k + "=" + json.dumps(v, separators=(",", ":")) for k, v in json.loads(sys.argv[1]).items()))' "$line")"
    python3 bench/record.py figures --results "$RESULTS" --run reconcile_lost_callbacks --benchmark reconcile "${fields[@]}"
}

# ab_phase: intake (throughput at BENCH_CONCURRENCY) and streams (deliver at BENCH_RATE) three ways,
# alternated BENCH_AB_PAIRS times on one cluster and one binary, head to head rather than against
# another day's run: "off" (the reconciler off), "on" (every provider reconciled against the
# emulator: what a configured reconciler costs), and "unprepared" (the reconciler off and
# PAYNOTIFY_DB_PREPARED_STATEMENTS=false: what running behind a transaction-mode pooler costs in
# parsing and planning every statement).
ab_phase() {
    local saved=("${RECONCILER_ENV[@]}") pair mode c=$BENCH_CONCURRENCY
    say "reconciler off / on / statements unprepared, alternated: $BENCH_AB_PAIRS rounds"
    start_emulator || { FAILED+=(ab); return 0; }
    for pair in $(seq 1 "$BENCH_AB_PAIRS"); do
        for mode in off on unprepared; do
            RECONCILER_ENV=()
            [ "$mode" = on ] && RECONCILER_ENV=("${PROVIDER_ENV[@]}")
            [ "$mode" = unprepared ] && RECONCILER_ENV=(PAYNOTIFY_DB_PREPARED_STATEMENTS=false)
            restart_server || { FAILED+=("ab_${mode}_$pair"); continue; }
            loadgen "ab_${mode}_${pair}_throughput_c$c" $((BENCH_SECONDS + 90)) \
                throughput --concurrency "$c" --seconds "$BENCH_SECONDS"
            loadgen "ab_${mode}_${pair}_deliver_r$BENCH_RATE" $((BENCH_SECONDS + 180)) \
                deliver --streams "$BENCH_DELIVER_STREAMS" --rate "$BENCH_RATE" --seconds "$BENCH_SECONDS"
        done
    done
    RECONCILER_ENV=("${saved[@]}")
    stop_server
}

# merchant_phase: the merchant webhook runs on a fresh server, against `paynotify listen --quiet` on
# loopback (it verifies every signature, as a careful merchant's backend would, and prints only its
# counts):
#   merchant_baseline_cC / merchant_throughput_cC   intake without, then with, one endpoint for
#                                                    every event type, back to back
#   pgbench_merchant_cC_pipeline_prepared            the ceiling with the outbox insert (the
#                                                    endpoint enabled, the server stopped so that
#                                                    nothing delivers meanwhile)
#   merchant_deliver_rR                              BENCH_RATE webhooks/s to streams, each event a
#                                                    message: committed -> delivered, backlog sampled
#   hanging_throughput_cC / hanging_deliver_rR       the same two with a second endpoint that hangs
#   merchant_backlog                                 BENCH_BACKLOG messages made with the server
#                                                    stopped, drained by a fresh one
merchant_phase() {
    local c=$BENCH_CONCURRENCY port endpoint secret hang_port hang_id since drained latency
    say "merchant webhooks: intake, delivery latency, a hanging endpoint, a backlog"
    restart_server || { FAILED+=(merchant); return 0; }
    port=$(python3 bench/netutil.py free-port)
    read -r endpoint secret < <(python3 bench/merchant.py endpoint "$SERVER_URL" "$API_KEY" "http://127.0.0.1:$port/hook") \
        || { warn "merchant: could not register the endpoint"; FAILED+=(merchant); return 0; }
    "$PAYNOTIFY" listen --quiet --status 200 --secret "$secret" --port "$port" </dev/null >"$OUT/receiver.log" 2>&1 &
    RECEIVER_PID=$!
    for _ in $(seq 1 100); do [ "$(http_status "http://127.0.0.1:$port/")" != 0 ] && break; sleep 0.1; done
    say "merchant: endpoint $endpoint -> paynotify listen (pid $RECEIVER_PID) on 127.0.0.1:$port"

    sql "UPDATE webhook_endpoints SET enabled = false WHERE id = '$endpoint'" >/dev/null
    loadgen "merchant_baseline_c$c" $((BENCH_SECONDS + 90)) throughput --concurrency "$c" --seconds "$BENCH_SECONDS"
    # Enabled through the API, which tells the dispatcher at once.
    python3 bench/merchant.py enable "$SERVER_URL" "$API_KEY" "$endpoint"
    since=$(date +%s.%N)
    loadgen "merchant_throughput_c$c" $((BENCH_SECONDS + 90)) throughput --concurrency "$c" --seconds "$BENCH_SECONDS"
    drained=$(wait_drained 300)
    figures merchant_throughput_drain "messages=$(sql "SELECT count(*) FROM webhook_messages WHERE created_at >= to_timestamp($since)")" \
        "drain_after_run_s=${drained:-null}"

    stop_server
    pgbench_run "pgbench_merchant_c${c}_pipeline_prepared" webhook-pipeline.sql prepared "$c"
    # pgbench's messages are nobody's: removed before the server could send them.
    say "merchant: removed $(sql "WITH gone AS (DELETE FROM webhook_messages WHERE status = 'pending' RETURNING 1)
        SELECT count(*) FROM gone") messages pgbench's transactions made"
    start_server || { FAILED+=(merchant); return 0; }

    since=$(date +%s.%N)
    : >"$OUT/backlog_merchant_deliver.txt"
    backlog_sampler "$OUT/backlog_merchant_deliver.txt" &
    local sampler=$!
    loadgen "merchant_deliver_r$BENCH_RATE" $((BENCH_SECONDS + 180)) \
        deliver --streams "$BENCH_DELIVER_STREAMS" --rate "$BENCH_RATE" --seconds "$BENCH_SECONDS"
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
    drained=$(wait_drained 120)
    latency=$(delivered_latency "$since")
    figures "merchant_latency_r$BENCH_RATE" "latency=$latency" "drain_after_run_s=${drained:-null}" \
        "backlog=[$(paste -sd, "$OUT/backlog_merchant_deliver.txt")]"

    python3 bench/merchant.py hang "$OUT/hang.port" &
    HANG_PID=$!
    for _ in $(seq 1 50); do [ -s "$OUT/hang.port" ] && break; sleep 0.1; done
    hang_port=$(cat "$OUT/hang.port")
    read -r hang_id _ < <(python3 bench/merchant.py endpoint "$SERVER_URL" "$API_KEY" "http://127.0.0.1:$hang_port/hook")
    say "merchant: a second endpoint $hang_id that hangs (pid $HANG_PID, 127.0.0.1:$hang_port)"
    loadgen "hanging_throughput_c$c" $((BENCH_SECONDS + 90)) throughput --concurrency "$c" --seconds "$BENCH_SECONDS"
    loadgen "hanging_deliver_r$BENCH_RATE" $((BENCH_SECONDS + 180)) \
        deliver --streams "$BENCH_DELIVER_STREAMS" --rate "$BENCH_RATE" --seconds "$BENCH_SECONDS"
    # Removed with SQL, not the API: under this load the API may answer 503 (the main pool busy),
    # and the backlog run below must not make messages for it.
    sql "DELETE FROM webhook_endpoints WHERE id = '$hang_id'" >/dev/null
    stop_pid HANG_PID
    wait_drained 120 >/dev/null

    stop_server
    sql "INSERT INTO order_events (order_id, event, data)
        SELECT 'ord_bench_' || lpad((1 + n % $BENCH_PGBENCH_ORDERS)::text, 22, '0'), 'progress',
            jsonb_build_object('progress', n % 100, 'stage', 'paying')
        FROM generate_series(1, $BENCH_BACKLOG) AS n" >/dev/null
    say "merchant: $(pending) messages pending; a fresh server drains them"
    start_server || { FAILED+=(merchant); return 0; }
    drained=$(wait_drained 600)
    figures merchant_backlog "messages=$BENCH_BACKLOG" "drain_s=${drained:-null}"
    stop_server
    stop_pid RECEIVER_PID
    say "merchant: the receiver $(tail -n 1 "$OUT/receiver.log")"
}

# ---- Preparation ----------------------------------------------------------------------------------
PG_BIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
PGBENCH=$PG_BIN/pgbench
PSQL=$PG_BIN/psql
[ -x "$PGBENCH" ] || PGBENCH=$(command -v pgbench || true)
[ -x "$PSQL" ] || PSQL=$(command -v psql || true)
if [ -z "$PGBENCH" ] || [ -z "$PSQL" ]; then
    warn "pgbench and psql are needed: apt-get install -y postgresql postgresql-contrib (or make deps)"
    exit 1
fi
command -v python3 >/dev/null || { warn "python3 is needed"; exit 1; }
CLK_TCK=$(getconf CLK_TCK)

# Pinned runs: taskset (util-linux) and both CPUs allowed to this process, and two different CPUs.
pin_ok=1
if ! command -v taskset >/dev/null; then
    pin_why="taskset (util-linux) is missing"
    pin_ok=0
elif [ "$BENCH_PIN_DB_CPU" = "$BENCH_PIN_CLIENT_CPU" ]; then
    pin_why="BENCH_PIN_DB_CPU and BENCH_PIN_CLIENT_CPU are both $BENCH_PIN_DB_CPU"
    pin_ok=0
elif ! taskset -c "$BENCH_PIN_DB_CPU" true 2>/dev/null || ! taskset -c "$BENCH_PIN_CLIENT_CPU" true 2>/dev/null; then
    pin_why="CPU $BENCH_PIN_DB_CPU or $BENCH_PIN_CLIENT_CPU is not available here ($(nproc) CPUs)"
    pin_ok=0
fi
PINNED=0
case $BENCH_PINNED in
1)
    [ "$pin_ok" = 1 ] || { warn "BENCH_PINNED=1, but $pin_why"; exit 1; }
    PINNED=1
    ;;
auto)
    if [ "$pin_ok" = 1 ]; then PINNED=1; else say "no pinned runs: $pin_why"; fi
    ;;
esac

hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$BENCH_NOFILE" ]; then
    warn "open files: the hard limit is $hard, below $BENCH_NOFILE; the stream benchmarks may fall short"
    ulimit -Sn "$hard"
else
    ulimit -Sn "$BENCH_NOFILE"
fi

mkdir -p "$OUT"
rm -rf "$OUT/pgbench-logs"
rm -f "$RESULTS" "$SETTINGS" "$OUT/summary.json" "$OUT"/loadgen_*.out "$OUT"/loadgen_*.err "$OUT"/pgbench_*.txt
: >"$OUT/server.log"

if [ "$BENCH_ONLY_PGBENCH" = 1 ]; then
    say "BENCH_ONLY_PGBENCH=1: the cluster, the seed and pgbench only (no build, no server, no load generator)"
elif [ "$BENCH_SKIP_BUILD" = 1 ]; then
    say "BENCH_SKIP_BUILD=1: using the binaries in $BENCH_BIN_DIR as they are"
else
    # One product a command: given several --product options, SwiftPM builds only the last.
    for product in paynotify paynotify-loadgen; do
        say "building (release): swift build -c release --product $product"
        bounded "$BENCH_BUILD_TIMEOUT" swift build -c release --product "$product"
    done
fi
if [ "$BENCH_ONLY_PGBENCH" != 1 ]; then
    for binary in "$PAYNOTIFY" "$LOADGEN"; do
        [ -x "$binary" ] || { warn "$binary is missing (build it, or unset BENCH_SKIP_BUILD)"; exit 1; }
    done
fi
DEADLINE=$((SECONDS + BENCH_BUDGET))
say "time budget: ${BENCH_BUDGET}s from now; runs of ${BENCH_SECONDS}s$([ "$PINNED" = 1 ] && echo ", pinned runs after the others")"

# A fresh cluster every run, so that no earlier run's tables weigh on this one.
if [ -e "$PG_DIR" ]; then
    scripts/pg-cluster.sh stop "$PG_DIR" || true
    rm -rf "$PG_DIR"
fi
start_cluster "" auto
durability=$(timeout 30 "$PSQL" -X -Atc "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings
    WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'max_connections')" "$DB_URL")
pg_version=$(timeout 30 "$PSQL" -X -Atc 'SHOW server_version' "$DB_URL")
say "database: $DB_URL in ${PG_DIR#"$ROOT"/}, scripts/pg-cluster.sh default (durable) mode, not \"test\": $durability"
say "PostgreSQL $pg_version, $(nproc) CPUs, $("$PGBENCH" --version)"

concurrencies=("$BENCH_CONCURRENCY")
[ "$BENCH_CONCURRENCY_LOW" != "$BENCH_CONCURRENCY" ] && concurrencies+=("$BENCH_CONCURRENCY_LOW")

only_pgbench=false
[ "$BENCH_ONLY_PGBENCH" = 1 ] && only_pgbench=true
python3 bench/record.py settings "$SETTINGS" seconds="$BENCH_SECONDS" rate="$BENCH_RATE" \
    concurrency="[$(IFS=,; echo "${concurrencies[*]}")]" streams="$BENCH_STREAMS" \
    deliver_streams="$BENCH_DELIVER_STREAMS" fanout="$BENCH_FANOUT" reconnect="$BENCH_RECONNECT" \
    reconnect_rate="$BENCH_RECONNECT_RATE" pool="$BENCH_POOL" pgbench_orders="$BENCH_PGBENCH_ORDERS" \
    pgbench_threads="$BENCH_PGBENCH_THREADS" pgbench_modes='["prepared", "extended"]' \
    pgbench_notify="$([ "$BENCH_PGBENCH_NOTIFY" = 1 ] && echo true || echo false)" \
    database="$durability" postgresql="$pg_version" cpus="$(nproc)" clk_tck="$CLK_TCK" \
    only_pgbench="$only_pgbench" budget_s="$BENCH_BUDGET" merchant="\"$BENCH_MERCHANT\"" backlog="$BENCH_BACKLOG" \
    reconcile="\"$BENCH_RECONCILE\"" reconciler_in_runs="$([ "$BENCH_RECONCILE" = 1 ] && echo true || echo false)" reconcile_orders="$BENCH_RECONCILE_ORDERS" reconcile_rate="$BENCH_RECONCILE_RATE" ab_pairs="$BENCH_AB_PAIRS" \
    pinned="{\"enabled\": $([ "$PINNED" = 1 ] && echo true || echo false), \"db_cpus\": \"$BENCH_PIN_DB_CPU\",
        \"client_cpus\": \"$BENCH_PIN_CLIENT_CPU\", \"verified\": false}"

if [ "$BENCH_ONLY_PGBENCH" = 1 ]; then
    for migration in migrations/*.sql; do
        bounded -o /dev/null 60 "$PSQL" -X -q -v ON_ERROR_STOP=1 -1 -f "$migration" "$DB_URL"
    done
    say "applied migrations/*.sql with psql"
else
    bounded 120 env "${SERVER_ENV[@]}" "$PAYNOTIFY" migrate --database-url "$DB_URL" --migrations migrations
fi
bounded 120 "$PSQL" -X -q -v ON_ERROR_STOP=1 -v orders="$BENCH_PGBENCH_ORDERS" -f bench/seed.sql "$DB_URL"
say "seeded $BENCH_PGBENCH_ORDERS orders for pgbench"

# ---- The runs -------------------------------------------------------------------------------------
if [ "$BENCH_ONLY_PGBENCH" = 1 ]; then
    for c in "${concurrencies[@]}"; do
        pgbench_set "throughput_c$c" "$c"
    done
    pgbench_set "rate_r$BENCH_RATE" "$BENCH_POOL" "$BENCH_RATE"
elif [ "$BENCH_MERCHANT" = only ] || [ "$BENCH_RECONCILE" = only ]; then
    say "BENCH_MERCHANT=only or BENCH_RECONCILE=only: that phase only"
else
    # With the reconciliation run in this benchmark, the intake and stream runs have every provider
    # reconciled against the emulator too: their figures are the service's with its reconciler on.
    if [ "$BENCH_RECONCILE" = 1 ]; then
        if start_emulator; then RECONCILER_ENV=("${PROVIDER_ENV[@]}"); else FAILED+=(emulator); fi
    fi
    # pgbench runs while the server is up and idle: its LISTEN connection receives the notify
    # variant's notifications, as it would in production.
    start_server
    for c in "${concurrencies[@]}"; do
        loadgen "throughput_c$c" $((BENCH_SECONDS + 90)) throughput --concurrency "$c" --seconds "$BENCH_SECONDS"
        pgbench_set "throughput_c$c" "$c"
    done
    loadgen "deliver_r$BENCH_RATE" $((BENCH_SECONDS + 180)) \
        deliver --streams "$BENCH_DELIVER_STREAMS" --rate "$BENCH_RATE" --seconds "$BENCH_SECONDS"
    # The service's transactions run on its pool's connections: pgbench gets as many.
    pgbench_set "rate_r$BENCH_RATE" "$BENCH_POOL" "$BENCH_RATE"

    restart_server
    loadgen streams 240 streams --count "$BENCH_STREAMS"
    restart_server
    loadgen fanout 180 fanout --streams "$BENCH_FANOUT"
    fanout_floor fanout_floor
    restart_server
    loadgen reconnect 180 reconnect --streams "$BENCH_RECONNECT" --rate "$BENCH_RECONNECT_RATE"
    stop_server
fi
if [ "$BENCH_RECONCILE" != 0 ] && [ "$BENCH_ONLY_PGBENCH" != 1 ]; then
    [ "$BENCH_AB_PAIRS" -gt 0 ] && ab_phase
    reconcile_phase
fi
if [ "$BENCH_MERCHANT" != 0 ] && [ "$BENCH_ONLY_PGBENCH" != 1 ]; then merchant_phase; fi
if [ "$PINNED" = 1 ] && [ "$BENCH_MERCHANT" != only ]; then pinned_phase; fi

# ---- Summary --------------------------------------------------------------------------------------
summary_status=0
python3 bench/summary.py --results "$RESULTS" --settings "$SETTINGS" --targets "$TARGETS" \
    --out "$OUT/summary.json" || summary_status=$?
echo
say "results: ${RESULTS#"$ROOT"/} (one JSON line a run), ${OUT#"$ROOT"/}/summary.json"
if [ ${#FAILED[@]} -gt 0 ]; then
    warn "runs without figures: ${FAILED[*]}"
    exit 1
fi
if [ "$summary_status" -ne 0 ] && [ "$summary_status" -ne 2 ]; then
    warn "the summary could not be made"
    exit 1
fi
if [ "$summary_status" -eq 2 ] && [ "$BENCH_FAIL_ON_MISS" = 1 ]; then
    warn "some targets were missed (BENCH_FAIL_ON_MISS=1)"
    exit 1
fi
exit 0

#!/usr/bin/env bash
# `make bench`: PayNotify's benchmarks on this machine, over loopback only, each beside PostgreSQL's
# own ceiling measured with pgbench running the service's webhook transaction (bench/webhook.sql,
# bench/webhook-notify.sql) on the same cluster.
#
#   1. builds the release binaries (BENCH_SKIP_BUILD=1 skips it);
#   2. starts a dedicated PostgreSQL cluster in .build-bench/postgres, made afresh every run, in
#      scripts/pg-cluster.sh's default mode (durable: fsync and synchronous_commit on, not "test");
#   3. applies the migrations and seeds BENCH_PGBENCH_ORDERS orders for pgbench (bench/seed.sql);
#   4. starts `paynotify serve` on a free 127.0.0.1 port and runs paynotify-loadgen's benchmarks,
#      each followed by pgbench at the same concurrency (and, for `deliver`, the same rate), and the
#      fan-out by its floor (bench/fanout-floor.c: the same writes and reads with only the kernel);
#   5. prints the pgbench figures and a summary table against the targets below, PASS or MISS.
#
# Everything lands in .build-bench/ (git-ignored by `.build-*`):
#   results.jsonl       one JSON object a line: each loadgen run's own line (`{"benchmark": …}`) with
#                       "run" and "exit_status" added, and one `{"benchmark": "pgbench", …}` line per
#                       pgbench run (tps, latency_ms {p50, p99, p999, max, mean} from its -l log)
#   summary.json        the settings, the targets and the summary rows
#   loadgen_<run>.out/.err, pgbench_<run>.txt, pgbench-logs/, server.log, postgres/
#
# BENCH_ONLY_PGBENCH=1 runs only the cluster, the migrations (applied with psql), the seed and the
# pgbench runs: no Swift binary is needed. The run is bounded: every step has a `timeout`, and the
# steps after the build share BENCH_BUDGET seconds (a step that would start past it is skipped and
# reported). Whatever it started (server, loadgen, pgbench, the cluster) is stopped on exit, by pid.
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
BENCH_BUDGET=${BENCH_BUDGET:-$((360 + 12 * BENCH_SECONDS))}  # seconds for everything after the build
BENCH_BUILD_TIMEOUT=${BENCH_BUILD_TIMEOUT:-1800}
BENCH_SKIP_BUILD=${BENCH_SKIP_BUILD:-0}
BENCH_ONLY_PGBENCH=${BENCH_ONLY_PGBENCH:-0}
BENCH_FAIL_ON_MISS=${BENCH_FAIL_ON_MISS:-0}
BENCH_BIN_DIR=${BENCH_BIN_DIR:-.build/release}     # where paynotify and paynotify-loadgen are
BENCH_NOFILE=20000                                 # open files per process (this machine's hard limit)

# ---- Targets --------------------------------------------------------------------------------------
TARGET_THROUGHPUT_RATIO=0.8          # service webhooks/s >= 0.8 x pgbench tps, webhook.sql, same concurrency
# deliver p99 <= pgbench p99 (same rate) + 3 ms, against webhook.sql: the service's transaction has no
# pg_notify any more (its ChangeNotifier sends NOTIFY after the commit), so that is the same transaction.
TARGET_DELIVER_P99_SLACK_MS=3
TARGET_STREAMS_OPEN=19000            # streams open at once on one server
TARGET_RSS_PER_STREAM_BYTES=8192     # server RSS per open stream
TARGET_OPEN_RATE_PER_S=2000          # streams opened per second
TARGET_FANOUT_STREAMS=10000          # ops streams a fanout reaches...
TARGET_FANOUT_LAST_MS=100            # ...the last of them within this many ms
TARGET_RECONNECT_STREAMS=10000       # streams reconnecting at once...
TARGET_RECONNECT_ALL_LIVE_MS=10000   # ...all live again within this many ms, none lost, none duplicated

# Server settings (loopback benchmark values, not secrets of any deployment).
API_KEY=bench-merchant-key-0123456789
STREAM_SECRET=bench-stream-secret-0123456789abcdef0123
SANDBOX_SECRET=bench-sandbox-secret
ADMIN_TOKEN=bench-admin-token-0123456789

OUT=$ROOT/.build-bench
PG_DIR=$OUT/postgres
RESULTS=$OUT/results.jsonl
PAYNOTIFY=$BENCH_BIN_DIR/paynotify
LOADGEN=$BENCH_BIN_DIR/paynotify-loadgen

say() { printf 'bench: %s\n' "$*"; }
warn() { printf 'bench: %s\n' "$*" >&2; }

# ---- Processes this script started, and their cleanup -----------------------------------------------
CHILD=""          # the bounded step running now (a `timeout` process)
SERVER_PID=""
SERVER_URL=""
CLUSTER_STARTED=0
FAILED=()         # runs that produced no figures
DEADLINE=$((SECONDS + BENCH_BUILD_TIMEOUT + BENCH_BUDGET))

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
        warn "skipped, the time budget (BENCH_BUDGET=${BENCH_BUDGET}s) is spent: $1"
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

# A port nothing on 127.0.0.1 uses, below the kernel's ephemeral range: the load generator's tens of
# thousands of client connections take their own ports from that range.
free_port() {
    python3 - <<'PY'
import random, socket
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except OSError:
    low = 32768
candidates = list(range(20000, low)) if low > 21000 else []
random.shuffle(candidates)
for port in candidates[:500] + [0]:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        print(s.getsockname()[1])
        break
    except OSError:
        continue
    finally:
        s.close()
PY
}

http_status() {
    if command -v curl >/dev/null; then
        curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true
    else
        python3 -c '
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print(0)' "$1"
    fi
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
)

start_server() {
    local port status=""
    port=$(free_port)
    [ -n "$port" ] || { warn "no free port on 127.0.0.1"; return 1; }
    printf '=== %s: paynotify serve on 127.0.0.1:%s ===\n' "$(date -u +%FT%TZ)" "$port" >>"$OUT/server.log"
    env DATABASE_URL="$DB_URL" PAYNOTIFY_PORT="$port" "${SERVER_ENV[@]}" \
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
    say "server pid $SERVER_PID ready on $SERVER_URL (pool $BENCH_POOL)"
}

restart_server() {
    say "restarting the server (fresh process for clean stream and RSS figures)"
    stop_server
    start_server
}

psql_q() { "$PSQL" -X -q -v ON_ERROR_STOP=1 "$@" "$DB_URL"; }

checkpoint() { bounded -o /dev/null 120 "$PSQL" -X -q -c CHECKPOINT "$DB_URL" || warn "CHECKPOINT failed"; }

# ---- Recording ------------------------------------------------------------------------------------
# record_loadgen RUN STATUS OUTFILE ARGS…: appends the loadgen's JSON line, with "run", "exit_status"
# and "argv" added, or an error line when there is none.
record_loadgen() {
    python3 - "$RESULTS" "$@" <<'PY'
import json, sys
results, run, status, outfile = sys.argv[1:5]
argv = sys.argv[5:]
line = None
with open(outfile, errors="replace") as f:
    for text in f:
        if text.startswith('{"benchmark":'):
            line = text.strip()
record = None
if line is not None:
    try:
        record = json.loads(line)
    except ValueError as e:
        record = {"benchmark": argv[0] if argv else None, "error": f"unparsable JSON line: {e}", "raw": line}
else:
    record = {"benchmark": argv[0] if argv else None, "error": "no JSON line on stdout"}
record["run"] = run
record["exit_status"] = int(status)
record["argv"] = argv
with open(results, "a") as f:
    f.write(json.dumps(record) + "\n")
sys.exit(0 if "error" not in record and int(status) == 0 else 1)
PY
}

# loadgen RUN LIMIT SUBCOMMAND ARGS…: one load generator run against the running server.
loadgen() {
    local run=$1 limit=$2 status=0
    shift 2
    checkpoint
    say "service: $run ($*)"
    bounded -o "$OUT/loadgen_$run.out" -e "$OUT/loadgen_$run.err" "$limit" \
        "$LOADGEN" "$1" --url "$SERVER_URL" --api-key "$API_KEY" --sandbox-secret "$SANDBOX_SECRET" \
        --admin-token "$ADMIN_TOKEN" --server-pid "$SERVER_PID" "${@:2}" || status=$?
    grep -v '^{"benchmark":' "$OUT/loadgen_$run.out" || true
    if ! record_loadgen "$run" "$status" "$OUT/loadgen_$run.out" "$@" || [ "$status" -ne 0 ]; then
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
    if ! record_loadgen "$run" "$status" "$OUT/$run.out" fanout_floor "$BENCH_FANOUT" || [ "$status" -ne 0 ]; then
        warn "$run failed (exit status $status)"
        FAILED+=("$run")
    fi
}

# pgbench_run RUN SCRIPT CLIENTS [RATE]: pgbench with the service's transaction, its per-transaction
# log turned into percentiles; appends a {"benchmark": "pgbench", …} line to results.jsonl.
pgbench_run() {
    local run=$1 script=$2 clients=$3 rate=${4:-} status=0 threads=$BENCH_PGBENCH_THREADS
    [ "$threads" -gt "$clients" ] && threads=$clients
    local logs=$OUT/pgbench-logs
    mkdir -p "$logs"
    rm -f "$logs/$run".*
    local args=(-n -M extended -f "bench/$script" -D "orders=$BENCH_PGBENCH_ORDERS" -c "$clients" -j "$threads"
        -T "$BENCH_SECONDS" -l --log-prefix="$logs/$run")
    [ -n "$rate" ] && args+=(-R "$rate")
    checkpoint
    say "pgbench: $run (${args[*]:2})"
    bounded -O "$OUT/$run.txt" $((BENCH_SECONDS + 60)) "$PGBENCH" "${args[@]}" "$DB_URL" || status=$?
    if ! python3 - "$RESULTS" "$run" "$script" "$clients" "$threads" "${rate:-}" "$BENCH_SECONDS" "$status" \
        "$OUT/$run.txt" "$logs/$run" <<'PY'; then
import glob, json, re, sys
results, run, script, clients, threads, rate, seconds, status, summary, prefix = sys.argv[1:11]
text = open(summary, errors="replace").read()
latencies, lags, failed, skipped = [], [], 0, 0
for path in sorted(glob.glob(prefix + ".*")):
    with open(path) as f:
        for line in f:
            # client_id transaction_no time script_no time_epoch time_us [schedule_lag] [retries]
            fields = line.split()
            if len(fields) < 6:
                continue
            if fields[2] == "failed":
                failed += 1
                continue
            if fields[2] == "skipped":
                skipped += 1
                continue
            latencies.append(int(fields[2]))
            if rate and len(fields) >= 7:
                lags.append(int(fields[6]))
def pct(values, p):
    # nearest rank
    if not values:
        return None
    k = max(0, min(len(values) - 1, -(-len(values) * p // 100) - 1))
    return round(values[int(k)] / 1000, 3)
latencies.sort()
tps = re.search(r"^tps = ([0-9.]+)", text, re.M)
record = {
    "benchmark": "pgbench",
    "run": run,
    "script": script,
    "notify": script == "webhook-notify.sql",
    "clients": int(clients),
    "threads": int(threads),
    "rate": int(rate) if rate else None,
    "seconds": int(seconds),
    "exit_status": int(status),
    "transactions": len(latencies),
    "failed": failed,
    "skipped": skipped,
    "tps": float(tps.group(1)) if tps else None,
    "latency_ms": {
        "p50": pct(latencies, 50),
        "p99": pct(latencies, 99),
        "p999": pct(latencies, 99.9),
        "max": round(latencies[-1] / 1000, 3) if latencies else None,
        "mean": round(sum(latencies) / len(latencies) / 1000, 3) if latencies else None,
    },
}
if rate:
    record["schedule_lag_ms_mean"] = round(sum(lags) / len(lags) / 1000, 3) if lags else None
if int(status) != 0 or record["tps"] is None or not latencies:
    record["error"] = "pgbench failed: " + " | ".join(text.strip().splitlines()[-3:])
with open(results, "a") as f:
    f.write(json.dumps(record) + "\n")
lat = record["latency_ms"]
print(f"bench:   tps {record['tps']}, latency p50 {lat['p50']} ms, p99 {lat['p99']} ms, "
      f"p99.9 {lat['p999']} ms, max {lat['max']} ms ({len(latencies)} transactions, {failed} failed)")
sys.exit(1 if "error" in record else 0)
PY
        warn "$run failed (exit status $status); the end of ${OUT#"$ROOT"/}/$run.txt:"
        tail -n 8 "$OUT/$run.txt" >&2 || true
        FAILED+=("$run")
    fi
}

pgbench_pair() { # NAME CLIENTS [RATE]: webhook.sql, then webhook-notify.sql
    pgbench_run "pgbench_$1_plain" webhook.sql "$2" "${3:-}"
    pgbench_run "pgbench_$1_notify" webhook-notify.sql "$2" "${3:-}"
}

# ---- Preparation ----------------------------------------------------------------------------------
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
PGBENCH=$PG_BIN/pgbench
PSQL=$PG_BIN/psql
[ -x "$PGBENCH" ] || PGBENCH=$(command -v pgbench || true)
[ -x "$PSQL" ] || PSQL=$(command -v psql || true)
if [ -z "$PGBENCH" ] || [ -z "$PSQL" ]; then
    warn "pgbench and psql are needed: apt-get install -y postgresql postgresql-contrib (or make deps)"
    exit 1
fi
command -v python3 >/dev/null || { warn "python3 is needed"; exit 1; }

hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$BENCH_NOFILE" ]; then
    warn "open files: the hard limit is $hard, below $BENCH_NOFILE; the stream benchmarks may fall short"
    ulimit -Sn "$hard"
else
    ulimit -Sn "$BENCH_NOFILE"
fi

mkdir -p "$OUT"
rm -rf "$OUT/pgbench-logs"
rm -f "$RESULTS" "$OUT/summary.json" "$OUT"/loadgen_*.out "$OUT"/loadgen_*.err "$OUT"/pgbench_*.txt
: >"$OUT/server.log"

if [ "$BENCH_ONLY_PGBENCH" = 1 ]; then
    say "BENCH_ONLY_PGBENCH=1: the cluster, the seed and pgbench only (no build, no server, no load generator)"
elif [ "$BENCH_SKIP_BUILD" = 1 ]; then
    say "BENCH_SKIP_BUILD=1: using the binaries in $BENCH_BIN_DIR as they are"
else
    say "building (release): swift build -c release --product paynotify --product paynotify-loadgen"
    bounded "$BENCH_BUILD_TIMEOUT" swift build -c release --product paynotify --product paynotify-loadgen
fi
if [ "$BENCH_ONLY_PGBENCH" != 1 ]; then
    for binary in "$PAYNOTIFY" "$LOADGEN"; do
        [ -x "$binary" ] || { warn "$binary is missing (build it, or unset BENCH_SKIP_BUILD)"; exit 1; }
    done
fi
DEADLINE=$((SECONDS + BENCH_BUDGET))
say "time budget: ${BENCH_BUDGET}s from now; runs of ${BENCH_SECONDS}s"

# A fresh cluster every run, so that no earlier run's tables weigh on this one.
if [ -e "$PG_DIR" ]; then
    scripts/pg-cluster.sh stop "$PG_DIR" || true
    rm -rf "$PG_DIR"
fi
CLUSTER_STARTED=1
bounded -o "$OUT/database_url" 120 scripts/pg-cluster.sh start "$PG_DIR" auto
DB_URL=$(cat "$OUT/database_url")
durability=$(timeout 30 "$PSQL" -X -Atc "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings
    WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'max_connections')" "$DB_URL")
say "database: $DB_URL in ${PG_DIR#"$ROOT"/}, scripts/pg-cluster.sh default (durable) mode, not \"test\": $durability"
say "PostgreSQL $(timeout 30 "$PSQL" -X -Atc 'SHOW server_version' "$DB_URL"), $(nproc) CPUs, $("$PGBENCH" --version)"

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

concurrencies=("$BENCH_CONCURRENCY")
[ "$BENCH_CONCURRENCY_LOW" != "$BENCH_CONCURRENCY" ] && concurrencies+=("$BENCH_CONCURRENCY_LOW")

# ---- The runs -------------------------------------------------------------------------------------
if [ "$BENCH_ONLY_PGBENCH" = 1 ]; then
    for c in "${concurrencies[@]}"; do
        pgbench_pair "throughput_c$c" "$c"
    done
    pgbench_pair "rate_r$BENCH_RATE" "$BENCH_POOL" "$BENCH_RATE"
else
    # pgbench runs while the server is up and idle: its LISTEN connection receives the notify
    # variant's notifications, as it would in production.
    start_server
    for c in "${concurrencies[@]}"; do
        loadgen "throughput_c$c" $((BENCH_SECONDS + 90)) throughput --concurrency "$c" --seconds "$BENCH_SECONDS"
        pgbench_pair "throughput_c$c" "$c"
    done
    loadgen "deliver_r$BENCH_RATE" $((BENCH_SECONDS + 180)) \
        deliver --streams "$BENCH_DELIVER_STREAMS" --rate "$BENCH_RATE" --seconds "$BENCH_SECONDS"
    # The service's transactions run on its pool's connections: pgbench gets as many.
    pgbench_pair "rate_r$BENCH_RATE" "$BENCH_POOL" "$BENCH_RATE"

    restart_server
    loadgen streams 240 streams --count "$BENCH_STREAMS"
    restart_server
    loadgen fanout 180 fanout --streams "$BENCH_FANOUT"
    fanout_floor fanout_floor
    restart_server
    loadgen reconnect 180 reconnect --streams "$BENCH_RECONNECT" --rate "$BENCH_RECONNECT_RATE"
    stop_server
fi

# ---- Summary --------------------------------------------------------------------------------------
summary_status=0
python3 - "$RESULTS" "$OUT/summary.json" <<PY || summary_status=$?
import json, sys, time
results_path, summary_path = sys.argv[1:3]
only_pgbench = "$BENCH_ONLY_PGBENCH" == "1"
settings = {
    "seconds": $BENCH_SECONDS, "rate": $BENCH_RATE, "concurrency": [int(c) for c in "${concurrencies[*]}".split()],
    "streams": $BENCH_STREAMS, "deliver_streams": $BENCH_DELIVER_STREAMS, "fanout": $BENCH_FANOUT,
    "reconnect": $BENCH_RECONNECT, "reconnect_rate": $BENCH_RECONNECT_RATE, "pool": $BENCH_POOL,
    "pgbench_orders": $BENCH_PGBENCH_ORDERS, "pgbench_threads": $BENCH_PGBENCH_THREADS,
    "database": "$durability", "cpus": $(nproc), "only_pgbench": only_pgbench,
}
targets = {
    "throughput_ratio_min": $TARGET_THROUGHPUT_RATIO,
    "deliver_p99_slack_ms": $TARGET_DELIVER_P99_SLACK_MS,
    "streams_open_min": $TARGET_STREAMS_OPEN,
    "rss_per_stream_bytes_max": $TARGET_RSS_PER_STREAM_BYTES,
    "open_rate_per_s_min": $TARGET_OPEN_RATE_PER_S,
    "fanout_streams_min": $TARGET_FANOUT_STREAMS,
    "fanout_last_ms_max": $TARGET_FANOUT_LAST_MS,
    "reconnect_streams_min": $TARGET_RECONNECT_STREAMS,
    "reconnect_all_live_ms_max": $TARGET_RECONNECT_ALL_LIVE_MS,
}
runs = {}
try:
    with open(results_path) as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                runs[record.get("run")] = record
except FileNotFoundError:
    pass

def ok(run):
    r = runs.get(run)
    return r if r is not None and "error" not in r and r.get("exit_status", 0) == 0 else None

def get(record, *path):
    for key in path:
        if not isinstance(record, dict) or record.get(key) is None:
            return None
        record = record[key]
    return record

def num(value, unit="", digits=1):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{unit}"

def row_pass(condition):
    # No figure (the run failed, timed out or was skipped) is a miss too.
    return "MISS" if condition is None else ("PASS" if condition else "MISS")

# pgbench figures
pg_rows = [r for r in runs.values() if r.get("benchmark") == "pgbench"]
print()
print("pgbench (the service's webhook transaction, -M extended, same cluster)")
header = f"{'run':<34} {'script':<19} {'c':>3} {'rate':>5} {'tps':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'max ms':>8} {'failed':>6}"
print(header)
print("-" * len(header))
for r in pg_rows:
    lat = r.get("latency_ms") or {}
    print(f"{r['run']:<34} {r['script']:<19} {r['clients']:>3} {r['rate'] or '-':>5} {num(r.get('tps')):>9} "
          f"{num(lat.get('p50'), digits=2):>8} {num(lat.get('p99'), digits=2):>8} {num(lat.get('p999'), digits=2):>9} "
          f"{num(lat.get('max'), digits=2):>8} {r.get('failed', 0):>6}" + ("  ERROR" if "error" in r else ""))

rows = []
if not only_pgbench:
    for c in settings["concurrency"]:
        svc = ok(f"throughput_c{c}")
        pg = ok(f"pgbench_throughput_c{c}_plain")
        s, p = get(svc, "accepted_per_s"), get(pg, "tps")
        ratio = s / p if s is not None and p else None
        rows.append({
            "benchmark": f"throughput c={c} (webhooks/s)", "service": s, "pgbench": p, "ratio": ratio,
            "service_text": num(s, "/s"), "pgbench_text": num(p, "/s") + " no notify",
            "target": f">= {targets['throughput_ratio_min']} x pgbench",
            "result": row_pass(None if ratio is None else ratio >= targets["throughput_ratio_min"]),
        })
    rate = settings["rate"]
    svc = ok(f"deliver_r{rate}")
    pg = ok(f"pgbench_rate_r{rate}_plain")
    s, p = get(svc, "latency_ms", "p99"), get(pg, "latency_ms", "p99")
    rows.append({
        "benchmark": f"deliver p99 at {rate}/s (ms)", "service": s, "pgbench": p,
        "ratio": s / p if s is not None and p else None,
        "service_text": num(s, " ms", 2), "pgbench_text": num(p, " ms", 2) + " no notify",
        "target": f"<= pgbench + {targets['deliver_p99_slack_ms']} ms",
        "result": row_pass(None if s is None or p is None else s <= p + targets["deliver_p99_slack_ms"]),
    })
    s = get(svc, "lost")
    rows.append({
        "benchmark": f"deliver lost (of {num(get(svc, 'sent'), digits=0)} sent)", "service": s, "pgbench": None,
        "ratio": None, "service_text": num(s, digits=0), "pgbench_text": "-", "target": "(info)", "result": "info",
    })
    svc = ok("streams")
    s = get(svc, "opened")
    rows.append({
        "benchmark": "streams open at once", "service": s, "pgbench": None, "ratio": None,
        "service_text": "n/a" if svc is None else num(s, digits=0) + f" ({num(get(svc, 'failures'), digits=0)} failed)",
        "pgbench_text": "-",
        "target": f">= {targets['streams_open_min']:,}",
        "result": row_pass(None if s is None else s >= targets["streams_open_min"]),
    })
    s = get(svc, "rss_per_stream_bytes")
    rows.append({
        "benchmark": "server RSS per stream (bytes)", "service": s, "pgbench": None, "ratio": None,
        "service_text": num(s, " B", 0), "pgbench_text": "-",
        "target": f"<= {targets['rss_per_stream_bytes_max']:,} B",
        "result": row_pass(None if s is None else s <= targets["rss_per_stream_bytes_max"]),
    })
    s = get(svc, "open_rate_per_s")
    rows.append({
        "benchmark": "stream open rate (streams/s)", "service": s, "pgbench": None, "ratio": None,
        "service_text": num(s, "/s"), "pgbench_text": "-",
        "target": f">= {targets['open_rate_per_s_min']:,}/s",
        "result": row_pass(None if s is None else s >= targets["open_rate_per_s_min"]),
    })
    svc = ok("fanout")
    s, n, received = get(svc, "last_ms"), get(svc, "streams"), get(svc, "received")
    p = get(ok("fanout_floor"), "last_ms")
    rows.append({
        "benchmark": "fanout: last ops stream (ms)", "service": s, "pgbench": p,
        "ratio": s / p if s is not None and p else None,
        "service_text": "n/a" if svc is None else num(s, " ms", 1) + f" ({num(received, digits=0)}/{num(n, digits=0)})",
        "pgbench_text": "-" if p is None else num(p, " ms", 1) + " floor",
        "target": f"{targets['fanout_streams_min']:,} streams, < {targets['fanout_last_ms_max']} ms",
        "result": row_pass(None if None in (s, n, received) else
                           n >= targets["fanout_streams_min"] and received >= n and s < targets["fanout_last_ms_max"]),
    })
    svc = ok("reconnect")
    s, n = get(svc, "all_live_after_ms"), get(svc, "streams")
    rows.append({
        "benchmark": "reconnect: all live again (ms)", "service": s, "pgbench": None, "ratio": None,
        "service_text": "n/a" if svc is None else num(s, " ms", 0) + f" ({num(n, digits=0)} streams)",
        "pgbench_text": "-",
        "target": f"{targets['reconnect_streams_min']:,} streams, < {targets['reconnect_all_live_ms_max']:,} ms",
        "result": row_pass(None if s is None or n is None else
                           n >= targets["reconnect_streams_min"] and s < targets["reconnect_all_live_ms_max"]),
    })
    lost, dup = get(svc, "lost"), get(svc, "duplicates")
    rows.append({
        "benchmark": "reconnect: lost / duplicates", "service": [lost, dup], "pgbench": None, "ratio": None,
        "service_text": f"{num(lost, digits=0)} / {num(dup, digits=0)}", "pgbench_text": "-", "target": "0 / 0",
        "result": row_pass(None if lost is None or dup is None else lost == 0 and dup == 0),
    })

    print()
    print("summary (service against pgbench and the targets)")
    header = f"{'benchmark':<34} {'service':>24} {'pgbench':>22} {'ratio':>6}  {'target':<28} result"
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"{r['benchmark']:<34} {r['service_text']:>24} {r['pgbench_text']:>22} {ratio:>6}  {r['target']:<28} {r['result']}")

summary = {
    "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "settings": settings, "targets": targets,
    "rows": rows,
    "pgbench": pg_rows,
}
with open(summary_path, "w") as f:
    json.dump(summary, f, indent=2)
    f.write("\n")
sys.exit(2 if any(r["result"] == "MISS" for r in rows) else 0)
PY
echo
say "results: ${RESULTS#"$ROOT"/} (one JSON line a run), ${OUT#"$ROOT"/}/summary.json"
if [ ${#FAILED[@]} -gt 0 ]; then
    warn "runs without figures: ${FAILED[*]}"
    exit 1
fi
if [ "$summary_status" -eq 1 ]; then
    warn "the summary could not be made"
    exit 1
fi
if [ "$summary_status" -eq 2 ] && [ "$BENCH_FAIL_ON_MISS" = 1 ]; then
    warn "some targets were missed (BENCH_FAIL_ON_MISS=1)"
    exit 1
fi
exit 0

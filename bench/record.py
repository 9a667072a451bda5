#!/usr/bin/env python3
"""bench/run.sh's recorder: turns one run's output into one JSON line of results.jsonl.

    record.py loadgen  --results FILE --run NAME --status N --output FILE [--pinned]
                       [--cpu-ticks-before N --cpu-ticks-after N --clk-tck N] -- ARGV...
        The load generator's (or bench/fanout-floor's) `{"benchmark": ...}` line from FILE, with
        "run", "exit_status", "argv" and "pinned" added, or an error line when there is none. With
        the server's CPU ticks (utime + stime from /proc/<pid>/stat) before and after the run, adds
        "server_cpu_s" and, for a run that reports "accepted", "server_cpu_us_per_webhook".

    record.py pgbench  --results FILE --run NAME --script FILE --mode prepared|extended|simple
                       --clients N --threads N [--rate N] --seconds N --status N
                       --summary FILE --log-prefix PREFIX [--pinned]
        A `{"benchmark": "pgbench", ...}` line: tps from pgbench's summary (FILE), latency
        percentiles (nearest rank) from its per-transaction log (PREFIX.*); prints one line of
        figures.

    record.py figures  --results FILE --run NAME --benchmark NAME NAME=VALUE...
        A `{"benchmark": NAME, "run": NAME, ...}` line of figures run.sh measured itself (the
        merchant webhook runs' SQL), each VALUE read as JSON when it parses as JSON.

    record.py settings FILE NAME=VALUE...
        Merges the settings into the JSON object in FILE (made if missing); each VALUE is read as
        JSON when it parses as JSON, else kept as a string.

Exit status: 0 when the run produced its figures, 1 otherwise (the line is written either way).
Python 3 standard library only.
"""

import argparse
import glob
import json
import os
import re
import sys


def append(results, record):
    with open(results, "a") as f:
        f.write(json.dumps(record) + "\n")


# ---- loadgen --------------------------------------------------------------------------------------


def last_benchmark_line(path):
    line = None
    try:
        with open(path, errors="replace") as f:
            for text in f:
                if text.startswith('{"benchmark":'):
                    line = text.strip()
    except FileNotFoundError:
        pass
    return line


def loadgen_record(run, status, output, argv, pinned=False, cpu_before=None, cpu_after=None, clk_tck=None):
    line = last_benchmark_line(output)
    if line is None:
        record = {"benchmark": argv[0] if argv else None, "error": "no JSON line on stdout"}
    else:
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError as e:
            record = {"benchmark": argv[0] if argv else None, "error": f"unparsable JSON line: {e}", "raw": line}
    record["run"] = run
    record["exit_status"] = status
    record["argv"] = argv
    record["pinned"] = pinned
    if cpu_before is not None and cpu_after is not None and clk_tck:
        # The server process's utime + stime (all its threads) over the whole load generator run:
        # the measured seconds plus the run's own set-up (throughput creates a few orders first).
        cpu_s = (cpu_after - cpu_before) / clk_tck
        record["server_cpu_s"] = round(cpu_s, 3)
        record["server_cpu_ticks"] = cpu_after - cpu_before
        record["clk_tck"] = clk_tck
        accepted = record.get("accepted")
        if isinstance(accepted, (int, float)) and accepted > 0:
            record["server_cpu_us_per_webhook"] = round(cpu_s * 1e6 / accepted, 1)
    return record


def cmd_loadgen(args):
    record = loadgen_record(
        args.run, args.status, args.output, args.argv, args.pinned,
        args.cpu_ticks_before, args.cpu_ticks_after, args.clk_tck,
    )
    append(args.results, record)
    return 0 if "error" not in record and args.status == 0 else 1


# ---- pgbench --------------------------------------------------------------------------------------


def pct(values, p):
    """Nearest rank of sorted microseconds, in milliseconds."""
    if not values:
        return None
    k = max(0, min(len(values) - 1, -(-len(values) * p // 100) - 1))
    return round(values[int(k)] / 1000, 3)


def read_pgbench_logs(prefix, rated):
    # Lines: client_id transaction_no time script_no time_epoch time_us [schedule_lag] [retries]
    latencies, lags, failed, skipped = [], [], 0, 0
    for path in sorted(glob.glob(glob.escape(prefix) + ".*")):
        with open(path, errors="replace") as f:
            for line in f:
                fields = line.split()
                if len(fields) < 6:
                    continue
                if fields[2] == "failed":
                    failed += 1
                    continue
                if fields[2] == "skipped":
                    skipped += 1
                    continue
                try:
                    latencies.append(int(fields[2]))
                    if rated and len(fields) >= 7:
                        lags.append(int(fields[6]))
                except ValueError:
                    continue
    latencies.sort()
    return latencies, lags, failed, skipped


def pgbench_record(run, script, mode, clients, threads, rate, seconds, status, summary_text, prefix, pinned=False):
    latencies, lags, failed, skipped = read_pgbench_logs(prefix, bool(rate))
    tps = re.search(r"^tps = ([0-9.]+)", summary_text, re.M)
    name = os.path.basename(script)
    record = {
        "benchmark": "pgbench",
        "run": run,
        "script": name,
        "notify": name == "webhook-notify.sql",
        "mode": mode,
        "pinned": pinned,
        "clients": clients,
        "threads": threads,
        "rate": rate or None,
        "seconds": seconds,
        "exit_status": status,
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
    if status != 0 or record["tps"] is None or not latencies:
        record["error"] = "pgbench failed: " + (" | ".join(summary_text.strip().splitlines()[-3:]) or "no output")
    return record


def cmd_pgbench(args):
    try:
        with open(args.summary, errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    record = pgbench_record(
        args.run, args.script, args.mode, args.clients, args.threads, args.rate, args.seconds, args.status,
        text, args.log_prefix, args.pinned,
    )
    append(args.results, record)
    lat = record["latency_ms"]
    print(f"bench:   tps {record['tps']}, latency p50 {lat['p50']} ms, p99 {lat['p99']} ms, "
          f"p99.9 {lat['p999']} ms, max {lat['max']} ms ({record['transactions']} transactions, "
          f"{record['failed']} failed)")
    return 1 if "error" in record else 0


# ---- settings -------------------------------------------------------------------------------------


def parse_setting(text):
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f"not NAME=VALUE: {text!r}")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def cmd_settings(args):
    try:
        with open(args.file) as f:
            settings = json.load(f)
    except FileNotFoundError:
        settings = {}
    for item in args.items:
        name, value = parse_setting(item)
        settings[name] = value
    tmp = args.file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(settings, f, indent=2)
        f.write("\n")
    os.replace(tmp, args.file)
    return 0


def cmd_figures(args):
    record = {"benchmark": args.benchmark, "run": args.run}
    for item in args.items:
        name, value = parse_setting(item)
        record[name] = value
    append(args.results, record)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description="Record one bench/run.sh run as a JSON line.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("loadgen", help="a load generator (or fanout-floor) run")
    p.add_argument("--results", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--status", type=int, required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--pinned", action="store_true")
    p.add_argument("--cpu-ticks-before", type=int)
    p.add_argument("--cpu-ticks-after", type=int)
    p.add_argument("--clk-tck", type=int)
    p.add_argument("argv", nargs="*")
    p.set_defaults(func=cmd_loadgen)

    p = sub.add_parser("pgbench", help="a pgbench run")
    p.add_argument("--results", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--script", required=True)
    p.add_argument("--mode", required=True, choices=["prepared", "extended", "simple"])
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--rate", type=int, default=None)
    p.add_argument("--seconds", type=int, required=True)
    p.add_argument("--status", type=int, required=True)
    p.add_argument("--summary", required=True)
    p.add_argument("--log-prefix", required=True)
    p.add_argument("--pinned", action="store_true")
    p.set_defaults(func=cmd_pgbench)

    p = sub.add_parser("figures", help="figures run.sh measured itself, as NAME=VALUE")
    p.add_argument("--results", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--benchmark", required=True)
    p.add_argument("items", nargs="*")
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("settings", help="merge NAME=VALUE settings into a JSON file")
    p.add_argument("file")
    p.add_argument("items", nargs="*")
    p.set_defaults(func=cmd_settings)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

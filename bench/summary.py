#!/usr/bin/env python3
"""bench/run.sh's summary: the pgbench table and the PASS/MISS table, from the run's JSON.

    summary.py --results .build-bench/results.jsonl --settings .build-bench/settings.json \\
               --targets bench/targets.json --out .build-bench/summary.json

Reads results.jsonl (one JSON object a run, from bench/record.py), the run's settings (from
`record.py settings`) and the targets (bench/targets.json: {"targets": {NAME: {"value": ...}}});
prints the tables and writes summary.json: {"generated_at", "settings", "targets" (NAME: value),
"targets_file", "rows", "pgbench"}.

The webhook rows are judged against pgbench running bench/webhook-pipeline.sql -M prepared (the
service prepares its statements and pipelines its transaction's writes), the sequential
webhook.sql in -M prepared and -M extended shown beside it. Rows of the pinned runs (PostgreSQL on one CPU, the server, the load
generator and pgbench on another) and the server's CPU time per webhook are information, not
targets.

The merchant webhook rows (bench/run.sh's merchant_phase; BENCH_MERCHANT=0 leaves them out, `only`
leaves out everything else) judge intake with one endpoint against the same benchmark just before
without it and against pgbench with the outbox insert, delivery latency and backlog at BENCH_RATE,
a hanging endpoint's effect on intake and streams, and a backlog's drain rate.

Exit status: 0, or 2 when a target row is a MISS (a missing figure is a MISS too); 1 when the
summary cannot be made. Python 3 standard library only.
"""

import argparse
import json
import os
import sys
import time


def load_results(path):
    runs = {}
    try:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as e:
                    print(f"summary: {path}:{number}: skipped, not JSON ({e})", file=sys.stderr)
                    continue
                if isinstance(record, dict):
                    runs[record.get("run")] = record
    except FileNotFoundError:
        pass
    return runs


def load_targets(path):
    with open(path) as f:
        document = json.load(f)
    targets = document["targets"]
    values = {}
    for name, target in targets.items():
        value = target["value"] if isinstance(target, dict) else target
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"{path}: target {name}: value must be a number, not {value!r}")
        values[name] = value
    return values, targets


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


def verdict(condition):
    # No figure (the run failed, timed out or was skipped) is a miss too.
    return "MISS" if condition is None else ("PASS" if condition else "MISS")


def ratio_of(a, b):
    return a / b if a is not None and b else None


class Summary:
    def __init__(self, runs, settings, targets):
        self.runs = runs
        self.settings = settings
        self.t = targets
        self.rows = []

    def ok(self, run):
        r = self.runs.get(run)
        return r if r is not None and "error" not in r and r.get("exit_status", 0) == 0 else None

    def pg(self, context, script="pipeline", mode="prepared"):
        return self.ok(f"pgbench_{context}_{script}_{mode}")

    def add(self, block, benchmark, service, pgbench, ratio, service_text, pgbench_text, target, result, key):
        self.rows.append({
            "key": key, "block": block, "benchmark": benchmark, "service": service, "pgbench": pgbench,
            "ratio": ratio, "service_text": service_text, "pgbench_text": pgbench_text, "target": target,
            "result": result,
        })

    def throughput_rows(self, block, prefix, judged):
        t = self.t
        for c in self.settings.get("concurrency", []):
            svc = self.ok(f"{prefix}throughput_c{c}")
            context = f"{prefix}throughput_c{c}"
            ceiling, sequential = self.pg(context), self.pg(context, "plain")
            extended = self.pg(context, "plain", "extended")
            s, p = get(svc, "accepted_per_s"), get(ceiling, "tps")
            q, e = get(sequential, "tps"), get(extended, "tps")
            ratio = ratio_of(s, p)
            if judged:
                target = f">= {t['throughput_ratio_min']} x pgbench"
                result = verdict(None if ratio is None else ratio >= t["throughput_ratio_min"])
            else:
                target = "(info)"
                result = "info"
            label = "pinned " if prefix else ""
            self.add(block, f"{label}throughput c={c} (webhooks/s)", s, p, ratio, num(s, "/s"),
                     f"{num(p, '/s')} (seq {num(q)}, ext {num(e)})", target, result, f"{prefix}throughput_c{c}")
            cpu = get(svc, "server_cpu_us_per_webhook")
            self.add(block, f"{label}server CPU/webhook c={c}", cpu, None, None,
                     "n/a" if cpu is None else f"{num(cpu, ' us', 1)} ({num(get(svc, 'server_cpu_s'), ' s', 2)})",
                     "-", "(info)", "info", f"{prefix}server_cpu_us_per_webhook_c{c}")

    def build(self):
        merchant = str(self.settings.get("merchant", "1"))
        reconcile = str(self.settings.get("reconcile", "0"))
        if reconcile == "only":
            self.ab_rows()
            self.reconcile_rows()
            return self.rows
        if merchant != "only":
            self.service_rows()
        if merchant != "0":
            self.merchant_rows()
        if reconcile != "0":
            self.ab_rows()
            self.reconcile_rows()
        return self.rows

    def ab_rows(self):
        """Alternated rounds: intake and the streams' p99 with the reconciler on, and with statements
        unprepared, each against the reconciler off in the same round."""
        c, rate = self.settings.get("concurrency", [None])[0], self.settings.get("rate")
        for pair in range(1, int(self.settings.get("ab_pairs", 0)) + 1):
            off = get(self.ok(f"ab_off_{pair}_throughput_c{c}"), "accepted_per_s")
            off_p99 = get(self.ok(f"ab_off_{pair}_deliver_r{rate}"), "latency_ms", "p99")
            for mode, label in (("on", "reconciler on"), ("unprepared", "unprepared")):
                svc = get(self.ok(f"ab_{mode}_{pair}_throughput_c{c}"), "accepted_per_s")
                self.add("ab", f"round {pair}: intake c={c}, {label}", svc, off, ratio_of(svc, off), num(svc, "/s"),
                         f"{num(off, '/s')} off", "(info)", "info", f"ab_{mode}_{pair}_throughput")
                p99 = get(self.ok(f"ab_{mode}_{pair}_deliver_r{rate}"), "latency_ms", "p99")
                self.add("ab", f"round {pair}: stream p99 {rate}/s, {label}", p99, off_p99, ratio_of(p99, off_p99),
                         num(p99, " ms", 2), f"{num(off_p99, ' ms', 2)} off", "(info)", "info",
                         f"ab_{mode}_{pair}_deliver")

    def reconcile_rows(self):
        t = self.t
        r = self.ok("reconcile_lost_callbacks")
        orders, found = get(r, "orders"), get(r, "succeeded")
        self.add("reconcile", "lost callbacks found paid", found, orders, None,
                 f"{num(found, digits=0)} of {num(orders, digits=0)}", "-", "all",
                 verdict(None if found is None or orders is None else found >= orders), "reconcile_found")
        slowest, rate, steps = get(r, "found_max_s"), get(r, "rate"), get(r, "schedule_s")
        bound = None if None in (orders, rate, steps) else steps[0] + orders / rate + t["reconcile_look_s"]
        self.add("reconcile", "creation -> found, slowest (s)", slowest, bound, ratio_of(slowest, bound),
                 f"{num(slowest, ' s', 1)} (median {num(get(r, 'found_p50_s'), ' s', 1)})",
                 "-" if bound is None else f"{num(bound, ' s', 1)} bound",
                 "<= first step + orders / rate + look",
                 verdict(None if slowest is None or bound is None else slowest <= bound), "reconcile_found_within")
        most = get(r, "max_queries_per_order")
        allowed = None if slowest is None or steps is None else sum(1 for step in steps if step <= slowest)
        self.add("reconcile", "queries per order, most", most, allowed, None, num(most, digits=0),
                 "-" if allowed is None else f"{allowed} steps had come", "<= the schedule's steps",
                 verdict(None if most is None or allowed is None else most <= max(1, allowed)), "reconcile_queries")
        busiest = get(r, "max_queries_in_1s")
        limit = None if rate is None else rate + t["reconcile_burst"]
        self.add("reconcile", "queries in the busiest second", busiest, limit, ratio_of(busiest, limit),
                 num(busiest, digits=0), "-" if limit is None else f"{num(limit, digits=0)} allowed",
                 "<= rate + burst", verdict(None if busiest is None or limit is None else busiest <= limit),
                 "reconcile_rate")

    def merchant_rows(self):
        t = self.t
        c, rate = self.settings.get("concurrency", [None])[0], self.settings.get("rate")
        base = get(self.ok(f"merchant_baseline_c{c}"), "accepted_per_s")
        svc = get(self.ok(f"merchant_throughput_c{c}"), "accepted_per_s")
        ratio = ratio_of(svc, base)
        self.add("merchant", f"intake, one endpoint c={c} (/s)", svc, base, ratio, num(svc, "/s"),
                 f"{num(base, '/s')} without endpoints", f">= {t['merchant_intake_ratio_min']} x without",
                 verdict(None if ratio is None else ratio >= t["merchant_intake_ratio_min"]), "merchant_intake")
        p = get(self.pg(f"merchant_c{c}"), "tps")
        ratio = ratio_of(svc, p)
        self.add("merchant", f"intake, one endpoint c={c} vs pgbench", svc, p, ratio, num(svc, "/s"),
                 f"{num(p, '/s')} with the outbox", f">= {t['merchant_pgbench_ratio_min']} x pgbench",
                 verdict(None if ratio is None else ratio >= t["merchant_pgbench_ratio_min"]), "merchant_pgbench")
        drain = self.ok("merchant_throughput_drain")
        self.add("merchant", "messages of that run, drained after", get(drain, "drain_after_run_s"), None, None,
                 f"{num(get(drain, 'messages'), digits=0)}, {num(get(drain, 'drain_after_run_s'), ' s', 1)}", "-",
                 "(info)", "info", "merchant_throughput_drain")

        latency = self.ok(f"merchant_latency_r{rate}")
        lat = get(latency, "latency") or {}
        messages, delivered, p99 = lat.get("messages"), lat.get("delivered"), lat.get("p99_ms")
        self.add("merchant", f"committed -> delivered p99 at {rate}/s", p99, None, None,
                 f"{num(p99, ' ms', 2)} ({num(delivered, digits=0)}/{num(messages, digits=0)})",
                 f"p50 {num(lat.get('p50_ms'), digits=2)}, max {num(lat.get('max_ms'), digits=1)}",
                 f"all delivered, <= {t['merchant_p99_ms_max']} ms",
                 verdict(None if None in (messages, delivered, p99) else
                         messages > 0 and delivered == messages and p99 <= t["merchant_p99_ms_max"]),
                 "merchant_p99")
        backlog = get(latency, "backlog") or []
        limit = None if rate is None else rate * t["merchant_backlog_max_seconds"]
        peak = max(backlog) if backlog else None
        self.add("merchant", "backlog during that run (max, last)", peak, None, None,
                 "n/a" if peak is None else f"{peak:,} / {backlog[-1]:,} msgs", "-",
                 f"<= {num(limit, digits=0)} msgs", verdict(None if peak is None or limit is None else peak <= limit),
                 "merchant_backlog_flat")

        hanging = get(self.ok(f"hanging_throughput_c{c}"), "accepted_per_s")
        ratio = ratio_of(hanging, svc)
        self.add("merchant", f"intake, + a hanging endpoint c={c}", hanging, svc, ratio, num(hanging, "/s"),
                 f"{num(svc, '/s')} without it", f">= {t['hanging_throughput_ratio_min']} x without",
                 verdict(None if ratio is None else ratio >= t["hanging_throughput_ratio_min"]), "hanging_intake")
        hp = get(self.ok(f"hanging_deliver_r{rate}"), "latency_ms", "p99")
        mp = get(self.ok(f"merchant_deliver_r{rate}"), "latency_ms", "p99")
        self.add("merchant", f"streams p99 at {rate}/s, + hanging", hp, mp, ratio_of(hp, mp), num(hp, " ms", 2),
                 f"{num(mp, ' ms', 2)} without it", f"<= without + {t['hanging_deliver_p99_slack_ms']} ms",
                 verdict(None if hp is None or mp is None else hp <= mp + t["hanging_deliver_p99_slack_ms"]),
                 "hanging_deliver_p99")

        backlog_run = self.ok("merchant_backlog")
        n, seconds = get(backlog_run, "messages"), get(backlog_run, "drain_s")
        per_s = None if not n or not seconds else n / seconds
        self.add("merchant", "backlog drain (messages/s)", per_s, None, None,
                 "n/a" if per_s is None else f"{num(per_s, '/s', 0)} ({num(n, digits=0)} in {num(seconds, ' s', 1)})",
                 "-", f">= {t['merchant_backlog_drain_per_s_min']:,}/s",
                 verdict(None if per_s is None else per_s >= t["merchant_backlog_drain_per_s_min"]), "merchant_drain")

    def service_rows(self):
        t = self.t
        s = self.settings
        self.throughput_rows("unpinned", "", judged=True)

        rate = s.get("rate")
        svc = self.ok(f"deliver_r{rate}")
        ceiling, sequential = self.pg(f"rate_r{rate}"), self.pg(f"rate_r{rate}", "plain")
        extended = self.pg(f"rate_r{rate}", "plain", "extended")
        sv, p = get(svc, "latency_ms", "p99"), get(ceiling, "latency_ms", "p99")
        q, e = get(sequential, "latency_ms", "p99"), get(extended, "latency_ms", "p99")
        self.add("unpinned", f"deliver p99 at {rate}/s (ms)", sv, p, ratio_of(sv, p), num(sv, " ms", 2),
                 f"{num(p, ' ms', 2)} (seq {num(q, digits=2)}, ext {num(e, digits=2)})", f"<= pgbench + {t['deliver_p99_slack_ms']} ms",
                 verdict(None if sv is None or p is None else sv <= p + t["deliver_p99_slack_ms"]), f"deliver_r{rate}_p99")
        lost, dup = get(svc, "lost"), get(svc, "duplicates")
        self.add("unpinned", f"deliver lost / dup (of {num(get(svc, 'sent'), digits=0)} sent)", [lost, dup], None,
                 None, f"{num(lost, digits=0)} / {num(dup, digits=0)}", "-", "(info)", "info", "deliver_lost")

        svc = self.ok("streams")
        v = get(svc, "opened")
        self.add("unpinned", "streams open at once", v, None, None,
                 "n/a" if svc is None else num(v, digits=0) + f" ({num(get(svc, 'failures'), digits=0)} failed)", "-",
                 f">= {t['streams_open_min']:,}", verdict(None if v is None else v >= t["streams_open_min"]),
                 "streams_open")
        v = get(svc, "rss_per_stream_bytes")
        self.add("unpinned", "server RSS per stream (bytes)", v, None, None, num(v, " B", 0), "-",
                 f"<= {t['rss_per_stream_bytes_max']:,} B",
                 verdict(None if v is None else v <= t["rss_per_stream_bytes_max"]), "rss_per_stream")
        v = get(svc, "open_rate_per_s")
        self.add("unpinned", "stream open rate (streams/s)", v, None, None, num(v, "/s"), "-",
                 f">= {t['open_rate_per_s_min']:,}/s", verdict(None if v is None else v >= t["open_rate_per_s_min"]),
                 "open_rate")

        svc = self.ok("fanout")
        v, n, received = get(svc, "last_ms"), get(svc, "streams"), get(svc, "received")
        p = get(self.ok("fanout_floor"), "last_ms")
        self.add("unpinned", "fanout: last ops stream (ms)", v, p, ratio_of(v, p),
                 "n/a" if svc is None else num(v, " ms", 1) + f" ({num(received, digits=0)}/{num(n, digits=0)})",
                 "-" if p is None else num(p, " ms", 1) + " floor",
                 f"{t['fanout_streams_min']:,} streams, < {t['fanout_last_ms_max']} ms",
                 verdict(None if None in (v, n, received) else
                         n >= t["fanout_streams_min"] and received >= n and v < t["fanout_last_ms_max"]),
                 "fanout_last")

        svc = self.ok("reconnect")
        v, n = get(svc, "all_live_after_ms"), get(svc, "streams")
        self.add("unpinned", "reconnect: all live again (ms)", v, None, None,
                 "n/a" if svc is None else num(v, " ms", 0) + f" ({num(n, digits=0)} streams)", "-",
                 f"{t['reconnect_streams_min']:,} streams, < {t['reconnect_all_live_ms_max']:,} ms",
                 verdict(None if v is None or n is None else
                         n >= t["reconnect_streams_min"] and v < t["reconnect_all_live_ms_max"]),
                 "reconnect_all_live")
        lost, dup = get(svc, "lost"), get(svc, "duplicates")
        self.add("unpinned", "reconnect: lost / duplicates", [lost, dup], None, None,
                 f"{num(lost, digits=0)} / {num(dup, digits=0)}", "-",
                 f"{t['reconnect_lost_max']} / {t['reconnect_duplicates_max']}",
                 verdict(None if lost is None or dup is None else
                         lost <= t["reconnect_lost_max"] and dup <= t["reconnect_duplicates_max"]),
                 "reconnect_lost_duplicates")

        if get(s, "pinned", "enabled"):
            self.throughput_rows("pinned", "pinned_", judged=False)


def print_pgbench(pg_rows, settings):
    print()
    print("pgbench (the service's webhook transaction, same cluster; prepared = the service's protocol)")
    header = (f"{'run':<44} {'script':<19} {'mode':<8} {'pin':<3} {'c':>3} {'rate':>5} {'tps':>9} {'p50 ms':>8} "
              f"{'p99 ms':>8} {'p99.9 ms':>9} {'max ms':>8} {'failed':>6}")
    print(header)
    print("-" * len(header))
    for r in pg_rows:
        lat = r.get("latency_ms") or {}
        pin = "yes" if r.get("pinned") else "no"
        print(f"{str(r.get('run')):<44} {str(r.get('script')):<19} {str(r.get('mode')):<8} {pin:<3} "
              f"{r.get('clients') or '-':>3} {r.get('rate') or '-':>5} {num(r.get('tps')):>9} "
              f"{num(lat.get('p50'), digits=2):>8} {num(lat.get('p99'), digits=2):>8} "
              f"{num(lat.get('p999'), digits=2):>9} {num(lat.get('max'), digits=2):>8} {r.get('failed', 0):>6}"
              + ("  ERROR" if "error" in r else ""))
    pinned = settings.get("pinned") or {}
    if pinned.get("enabled"):
        print(f"pinned: PostgreSQL on CPU {pinned.get('db_cpus')} (postmaster and backends as checked: "
              f"{pinned.get('postgres_affinity', 'n/a')}), server, load generator and pgbench on CPU "
              f"{pinned.get('client_cpus')} (server as checked: {pinned.get('server_affinity', 'n/a')})"
              + ("" if pinned.get("verified") else "; NOT VERIFIED, or the pinned runs did not happen"))


def print_rows(rows, title, block):
    rows = [r for r in rows if r["block"] == block]
    if not rows:
        return
    print()
    print(title)
    header = f"{'benchmark':<36} {'service':>24} {'pgbench (pipeline, prepared)':>34} {'ratio':>6}  {'target':<28} result"
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"{r['benchmark']:<36} {r['service_text']:>24} {r['pgbench_text']:>34} {ratio:>6}  "
              f"{r['target']:<28} {r['result']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="bench/run.sh's summary tables and summary.json.")
    parser.add_argument("--results", required=True)
    parser.add_argument("--settings", required=True)
    parser.add_argument("--targets", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    with open(args.settings) as f:
        settings = json.load(f)
    targets, targets_detail = load_targets(args.targets)
    runs = load_results(args.results)

    pg_rows = [r for r in runs.values() if r.get("benchmark") == "pgbench"]
    print_pgbench(pg_rows, settings)
    rows = []
    if not settings.get("only_pgbench"):
        rows = Summary(runs, settings, targets).build()
        reconciler = " (every provider reconciled against the emulator)" if settings.get("reconciler_in_runs") else ""
        print_rows(rows, f"summary{reconciler} (service against pgbench, webhook-pipeline.sql -M prepared, and the "
                   "targets)", "unpinned")
        print_rows(rows, "merchant webhooks (one endpoint to paynotify listen on loopback; a second that hangs)",
                   "merchant")
        print_rows(rows, "pinned (PostgreSQL alone on its CPU; the service, its load and pgbench on the other)",
                   "pinned")
        print_rows(rows, "alternated on one cluster: the reconciler on (every provider against the emulator), and "
                   "statements unprepared (as behind PgBouncer), against the reconciler off", "ab")
        print_rows(rows, "reconciliation (orders whose callbacks are all lost, asked about at the provider emulator)",
                   "reconcile")

    summary = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": settings,
        "targets": targets,
        "targets_file": args.targets,
        "rows": rows,
        "pgbench": pg_rows,
    }
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    os.replace(tmp, args.out)
    return 2 if any(r["result"] == "MISS" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

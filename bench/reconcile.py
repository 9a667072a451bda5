#!/usr/bin/env python3
"""bench/run.sh's reconciliation run: orders whose callbacks are all lost, found by asking.

    reconcile.py run SERVER_URL API_KEY EMULATOR_URL DB_URL PSQL ORDERS RATE SCHEDULE_S TIMEOUT_S

Creates ORDERS WeChat Pay orders through the merchant API (16 at a time), opens each one's trade at
the provider emulator and pays it there with its callback dropped, then waits until every order is
`succeeded` (asked through psql). Prints one JSON object:
  orders, succeeded, found_max_s / found_p50_s (creation -> succeeded, from the orders' own
  timestamps), rate and schedule_s (the server's settings: queries a second, and the schedule's
  steps after creation, SCHEDULE_S such as 5,60,300), queries (the emulator's call log),
  max_queries_per_order, max_queries_in_1s (the busiest one-second window of query arrivals),
  setup_s. bench/summary.py judges them against bench/targets.json.
Python 3 standard library only.
"""

import collections
import concurrent.futures
import json
import subprocess
import sys
import time
import urllib.request


def call(url, method="POST", body=None, key=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        text = response.read()
    return json.loads(text) if text else None


def sql(psql, db_url, query):
    out = subprocess.run([psql, "-X", "-A", "-t", "-q", "-c", query, db_url], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def pay_one(server, key, emulator):
    order = call(server + "/v1/orders", body={"amount": 1999, "currency": "CNY", "provider": "wechatpay"}, key=key)
    trade = {"provider": "wechatpay", "order_id": order["id"], "amount": 1999, "currency": "CNY"}
    call(emulator + "/control/trades", body=trade)
    call(emulator + f"/control/trades/wechatpay/{order['id']}/pay", body={"callback": "drop"})
    return order["id"]


def run(server, key, emulator, db_url, psql, orders, rate, schedule, timeout):
    call(emulator + "/control/calls", method="DELETE")
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(lambda _: pay_one(server, key, emulator), range(orders)))
    setup = time.monotonic() - started
    succeeded = 0
    while time.monotonic() - started < timeout:
        succeeded = int(sql(psql, db_url, "SELECT count(*) FROM orders WHERE provider = 'wechatpay' AND status = 'succeeded'"))
        if succeeded >= orders:
            break
        time.sleep(1)
    found = sql(
        psql,
        db_url,
        "SELECT round(max(extract(epoch FROM updated_at - created_at))::numeric, 2) || ' ' || "
        "round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - created_at)))::numeric, 2) "
        "FROM orders WHERE provider = 'wechatpay' AND status = 'succeeded'",
    ).split()
    calls = call(emulator + "/control/calls?provider=wechatpay", method="GET")
    queries = [c for c in calls if c.get("operation") == "query"]
    per_order = collections.Counter(c["order_id"] for c in queries)
    arrivals = sorted(c["at_ms"] for c in queries)
    busiest, start = 0, 0
    for end, at in enumerate(arrivals):
        while at - arrivals[start] >= 1000:
            start += 1
        busiest = max(busiest, end - start + 1)
    return {
        "orders": orders,
        "succeeded": succeeded,
        "found_max_s": float(found[0]) if found else None,
        "found_p50_s": float(found[1]) if len(found) > 1 else None,
        "rate": rate,
        "schedule_s": schedule,
        "queries": len(queries),
        "max_queries_per_order": max(per_order.values()) if per_order else 0,
        "max_queries_in_1s": busiest,
        "setup_s": round(setup, 1),
        "ids_created": len(ids),
    }


def main(argv):
    if argv[:1] == ["run"] and len(argv) == 10:
        server, key, emulator, db_url, psql = argv[1:6]
        orders, rate, timeout = int(argv[6]), float(argv[7]), float(argv[9])
        schedule = [float(step) for step in argv[8].split(",")]
        print(json.dumps(run(server, key, emulator, db_url, psql, orders, rate, schedule, timeout), sort_keys=True))
        return 0
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""bench/run.sh's merchant-webhook helpers. Python 3 standard library only.

    merchant.py endpoint SERVER_URL API_KEY TARGET_URL   registers a webhook endpoint for every event
                                                         type; prints "ID SECRET"
    merchant.py enable SERVER_URL API_KEY ID             enables an endpoint through the API (which
                                                         tells the dispatcher at once)
    merchant.py hang PORT_FILE                           listens on a free loopback port, writes it to
                                                         PORT_FILE, and never accepts or answers: a
                                                         hanging endpoint (until killed)
"""

import json
import signal
import socket
import sys
import urllib.request


def api(server, key, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        text = response.read()
    return json.loads(text) if text else None


def hang(port_file):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(4096)
    with open(port_file, "w") as f:
        f.write(f"{s.getsockname()[1]}\n")
    signal.pause()


def main(argv):
    if argv[:1] == ["endpoint"] and len(argv) == 4:
        endpoint = api(argv[1], argv[2], "POST", "/v1/webhook-endpoints", {"url": argv[3]})
        print(endpoint["id"], endpoint["secret"])
        return 0
    if argv[:1] == ["enable"] and len(argv) == 4:
        api(argv[1], argv[2], "PATCH", f"/v1/webhook-endpoints/{argv[3]}", {"enabled": True})
        return 0
    if argv[:1] == ["hang"] and len(argv) == 2:
        hang(argv[1])
        return 0
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

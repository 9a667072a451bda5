#!/usr/bin/env python3
"""bench/run.sh's loopback helpers. Python 3 standard library only.

    netutil.py free-port         a TCP port nothing on 127.0.0.1 uses, below the kernel's ephemeral
                                 range (the load generator's tens of thousands of client connections
                                 take their own ports from that range); prints it
    netutil.py http-status URL   the HTTP status of GET URL (2 s timeout), 0 when there is no answer
                                 (for when curl is missing)
"""

import random
import socket
import sys
import urllib.error
import urllib.request


def free_port():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    candidates = list(range(20000, low)) if low > 21000 else []
    random.shuffle(candidates)
    for port in candidates[:500] + [0]:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            return s.getsockname()[1]
        except OSError:
            continue
        finally:
            s.close()
    return None


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception:
        return 0


def main(argv):
    if argv[:1] == ["free-port"] and len(argv) == 1:
        port = free_port()
        if port is None:
            return 1
        print(port)
        return 0
    if argv[:1] == ["http-status"] and len(argv) == 2:
        print(http_status(argv[1]))
        return 0
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

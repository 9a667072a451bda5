#!/usr/bin/env bash
# A private PostgreSQL cluster in a directory of its own, for `make run` (.data/) and the tests.
#
#   pg-cluster.sh start DIR [PORT] [test] create the cluster on first use, start it if stopped,
#                                         create database "paynotify"; prints its URL. PORT "auto"
#                                         picks a free one; omitted, the cluster keeps its last port
#   pg-cluster.sh stop DIR                fast shutdown (no error if it is not running)
#   pg-cluster.sh url DIR                 the URL of database "paynotify"
#
# initdb and postgres refuse to run as root, so as root the cluster belongs to the unprivileged
# "postgres" user that Debian's package creates. The server listens on 127.0.0.1 only, with trust
# authentication: this is a development and test database, never a production one. With "test",
# durability is traded for speed (fsync off) and more connections are allowed.
set -euo pipefail

# Close every descriptor inherited beyond stdin, stdout and stderr (bash's own 255 excepted): the
# postmaster started below would otherwise hold them for its whole life. Seen here: a test's server
# socket, closed by the application, stayed open in PostgreSQL, so its client never saw the close.
for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    if [ "$fd" -gt 2 ] && [ "$fd" -ne 255 ]; then eval "exec $fd>&-"; fi
done

command=${1:?usage: pg-cluster.sh start|stop|url DIR [PORT] [test]}
dir=${2:?cluster directory required}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
data="$dir/data"
socket="$dir/run"
# The cluster's owner may not be able to enter the caller's working directory.
cd /

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/pg_ctl" ] || { echo "pg-cluster: PostgreSQL server not installed (run scripts/install-deps.sh)" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
    owner=postgres
    as_owner() { runuser -u postgres -- "$@"; }
else
    owner=$(id -un)
    as_owner() { "$@"; }
fi

# The owner must be able to reach the directory. A clone under /root (mode 700) is not reachable
# by "postgres"; grant traverse-only permission (o+x, no listing) on each ancestor that lacks it.
grant_traverse() {
    local path="" part
    IFS=/ read -r -a parts <<<"${1#/}"
    for part in "${parts[@]}"; do
        path="$path/$part"
        if ! as_owner test -x "$path" 2>/dev/null; then
            echo "pg-cluster: granting traverse permission (o+x) on $path so user $owner can reach it" >&2
            chmod o+x "$path"
        fi
    done
}

# A port nothing on 127.0.0.1 listens on (checked by connecting; the server's own bind is the final word),
# below the kernel's ephemeral range (32768 and up here), where busy clients' own ports would collide.
free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 12000))
        if ! (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    echo "pg-cluster: no free port found" >&2
    exit 1
}

port_of() { sed -n 's/^port = \([0-9]*\).*/\1/p' "$data/postgresql.auto.conf" 2>/dev/null | tail -n 1; }

url() { echo "postgres://postgres@127.0.0.1:$(port_of)/paynotify?sslmode=disable"; }

case "$command" in
start)
    port=${3:-}
    mode=${4:-dev}
    [ "$port" = auto ] && port=$(free_port)
    [ -n "$port" ] || port=$(port_of)
    [ -n "$port" ] || { echo "pg-cluster: a new cluster needs a port" >&2; exit 2; }
    if [ ! -f "$data/PG_VERSION" ]; then
        [ "$owner" = postgres ] && grant_traverse "$dir"
        mkdir -p "$data" "$socket"
        chown "$owner" "$dir" "$data" "$socket"
        chmod 700 "$data"
        as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
        {
            echo "listen_addresses = '127.0.0.1'"
            echo "unix_socket_directories = '$socket'"
            if [ "$mode" = test ]; then
                echo "max_connections = 400"
                echo "fsync = off"
                echo "synchronous_commit = off"
                echo "full_page_writes = off"
            fi
        } | as_owner tee -a "$data/postgresql.conf" >/dev/null
    fi
    # The port lives in postgresql.auto.conf so a later start can change it.
    echo "port = $port" | as_owner tee "$data/postgresql.auto.conf" >/dev/null
    if ! as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_owner "$bin/pg_ctl" -D "$data" -l "$dir/postgresql.log" -w -t 60 start >/dev/null \
            || { tail -n 20 "$dir/postgresql.log" >&2; exit 1; }
    fi
    if [ "$(as_owner "$bin/psql" -h "$socket" -p "$port" -U postgres -d postgres -Atqc \
        "SELECT 1 FROM pg_database WHERE datname = 'paynotify'")" != 1 ]; then
        as_owner "$bin/psql" -h "$socket" -p "$port" -U postgres -d postgres -qc "CREATE DATABASE paynotify" >/dev/null
    fi
    url
    ;;
stop)
    if [ -f "$data/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_owner "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
    fi
    ;;
url)
    url
    ;;
*)
    echo "pg-cluster: unknown command $command" >&2
    exit 2
    ;;
esac

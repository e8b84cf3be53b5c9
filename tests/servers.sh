#!/usr/bin/env bash
# servers.sh -- start and stop the real PostgreSQL and Redis servers the tests
# use, on loopback, in a temporary directory, on a free port.
#   servers.sh pg-start DIR     prints a libpq URL; DIR must not exist
#   servers.sh pg-stop DIR
#   servers.sh redis-start DIR  prints HOST:PORT
#   servers.sh redis-stop DIR
#   servers.sh pg-pause|pg-resume|redis-pause|redis-resume DIR   stop and start
#       again on the same port with the same data (outage tests)
# PostgreSQL refuses to run as root, so as root it runs as the postgres user
# the Debian package creates. A missing server is an error, never a skip.
set -euo pipefail
cmd=$1 dir=$2
free_port() {  # a port nothing answers on
  local p
  while :; do
    p=$(shuf -i 20000-60000 -n 1)
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
case $cmd in
  pg-start)
    [ -x "$pgbin/initdb" ] || { echo "servers.sh: PostgreSQL is not installed (scripts/setup installs it)" >&2; exit 1; }
    mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    port=$(free_port)
    as_pg "$pgbin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    as_pg "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    ;;
  pg-pause)   # stop the server, keep its data and port
    as_pg "$pgbin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  pg-resume)
    as_pg "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-p $(cat "$dir/port") -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
      start >/dev/null
    ;;
  pg-stop)
    [ -d "$dir/data" ] && as_pg "$pgbin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  redis-start)
    command -v redis-server >/dev/null || { echo "servers.sh: redis-server is not installed" >&2; exit 1; }
    mkdir -p "$dir"; port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
      --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    echo "$port" >"$dir/port"
    echo "127.0.0.1:$port"
    ;;
  redis-pause)
    kill "$(cat "$dir/redis.pid")"; sleep 0.3
    ;;
  redis-resume)
    redis-server --port "$(cat "$dir/port")" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
      --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
    for _ in $(seq 50); do redis-cli -p "$(cat "$dir/port")" ping >/dev/null 2>&1 && break; sleep 0.1; done
    ;;
  redis-stop)
    [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    rm -rf "$dir"
    ;;
  *) echo "usage: servers.sh pg-start|pg-pause|pg-resume|pg-stop|redis-start|redis-pause|redis-resume|redis-stop DIR" >&2; exit 2 ;;
esac

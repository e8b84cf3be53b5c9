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
# Ports come from below the kernel's ephemeral range: a port in that range
# can be the local end of some other test's outgoing connection, which no
# connect() probe sees but which makes the server's bind() fail.
read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range
free_port() {  # a port nothing answers on
  local p
  while :; do
    p=$(shuf -i 10000-$((eph_lo - 1)) -n 1)
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
redis_up() {  # PORT: wait up to 10 s for the server to answer; fail at once if it died
  local pid; pid=$(cat "$dir/redis.pid")
  for _ in $(seq 100); do
    [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# Started in the background rather than with --daemonize, so that its pid is
# known before it binds and a failed bind shows as a dead process.
redis_run() {  # PORT: start a server on PORT with DIR's data
  setsid redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" </dev/null >/dev/null 2>&1 &
  echo $! >"$dir/redis.pid"
}
redis_kill() {  # stop the server and wait until it has let go of its port
  local pid; pid=$(cat "$dir/redis.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null || true
}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
case $cmd in
  pg-start)
    [ -x "$pgbin/initdb" ] || { echo "servers.sh: PostgreSQL is not installed (scripts/setup installs it)" >&2; exit 1; }
    mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_pg "$pgbin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    for _ in 1 2 3 4 5; do  # as for Redis: a port taken before the bind, try another
      port=$(free_port)
      if as_pg "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
           -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
           start >/dev/null; then
        echo "$port" >"$dir/port"
        echo "postgresql://postgres@127.0.0.1:$port/postgres"
        exit 0
      fi
    done
    cat "$dir/server.log" >&2; exit 1
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
    mkdir -p "$dir"
    # A port can still be taken between the probe and the bind: try another.
    for _ in 1 2 3 4 5; do
      port=$(free_port)
      if redis_run "$port" && redis_up "$port"; then
        echo "$port" >"$dir/port"
        echo "127.0.0.1:$port"
        exit 0
      fi
      redis_kill
    done
    echo "servers.sh: redis-server did not come up; its log:" >&2
    cat "$dir/redis.log" >&2 2>/dev/null
    exit 1
    ;;
  redis-pause)
    redis_kill
    ;;
  redis-resume)
    port=$(cat "$dir/port")
    redis_run "$port" && redis_up "$port" \
      || { echo "servers.sh: redis-server did not come back on $port; its log:" >&2
           cat "$dir/redis.log" >&2; exit 1; }
    ;;
  redis-stop)
    redis_kill
    rm -rf "$dir"
    ;;
  *) echo "usage: servers.sh pg-start|pg-pause|pg-resume|pg-stop|redis-start|redis-pause|redis-resume|redis-stop DIR" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# replicas.sh -- throughput and p99 of one replica on SQLite, one replica on
# PostgreSQL + Redis, and two replicas on PostgreSQL + Redis (each driven by
# its own wrk, results summed), all routing OpenAI-style generations to the
# same fake upstream. Not run by CI. Usage: bench/replicas.sh [SECONDS] [CONC]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/upstream.sh"
secs=${1:-10}; conc=${2:-16}
build=$here/build
tmp=$(mktemp -d); chmod 755 "$tmp"; pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  bash "$here/tests/servers.sh" pg-stop "$tmp/pg" || true
  bash "$here/tests/servers.sh" redis-stop "$tmp/redis" || true
  rm -rf "$tmp"
}
trap cleanup EXIT
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
cmake --build "$build" -j2 --target imagegate fake_upstream >/dev/null

up=18990
"$build/bench/fake_upstream" $up >/dev/null & pids+=($!)
pg=$(bash "$here/tests/servers.sh" pg-start "$tmp/pg")
redis=$(bash "$here/tests/servers.sh" redis-start "$tmp/redis")

config() {  # config NAME PORT STORE_LINES
  cat >"$tmp/$1.yaml" <<YAML
server: {listen: 127.0.0.1:$2, data_dir: $tmp/$1, threads: 2, workers: 2, log_level: warn}
$3
$(upstream_yaml "$up")
YAML
}
printf 'wrk.method="POST"\nwrk.body=%s\nwrk.headers["Content-Type"]="application/json"\n' \
  "'{\"model\":\"gpt-image-1\",\"prompt\":\"a lighthouse at dusk\",\"size\":\"1024x1024\"}'" >"$tmp/post.lua"

serve() {  # serve NAME -> starts it
  BENCH_KEY=x "$build/imagegate" serve --config "$tmp/$1.yaml" >"$tmp/$1.log" 2>&1 & pids+=($!)
  sleep 1
}
load() {  # load PORT... -> "rps p99" summed over ports (p99: the worst)
  local outs=() p
  for p in "$@"; do
    wrk -t1 -c"$conc" -d"${secs}s" --latency -s "$tmp/post.lua" "http://127.0.0.1:$p/v1/images/generations" >"$tmp/wrk.$p" 2>&1 &
    outs+=("$tmp/wrk.$p")
  done
  wait $(jobs -p | tail -n ${#@}) 2>/dev/null || true
  awk '/Requests\/sec/{r+=$2} $1=="99%"{print_p=$2; if (!m || $2>m) m=$2} END{printf "%8.0f req/s  p99 %s\n", r, m}' "${outs[@]}"
}

config sqlite 18981 ""
config pg1 18982 "store: {url: \"$pg\", blob_dir: $tmp/blobs, redis: \"$redis\"}"
config pg2 18983 "store: {url: \"$pg\", blob_dir: $tmp/blobs, redis: \"$redis\"}"
serve sqlite; serve pg1; serve pg2
echo "concurrency $conc per replica, ${secs}s, gate off, fake upstream"
printf 'one replica, SQLite:              '; load 18981
printf 'one replica, PostgreSQL + Redis:  '; load 18982
printf 'two replicas, PostgreSQL + Redis: '; load 18982 18983

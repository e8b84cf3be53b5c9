#!/usr/bin/env bash
# waiting.sh -- what 1,000 jobs waiting on a slow vendor cost the gateway.
#
# The fake upstream holds every answer for DELAY ms; 1,000 clients post a
# generation at once and the gateway's RSS is read while all of them wait,
# for the relay and for durable jobs (server.relay: off). Prints idle RSS,
# RSS with 1,000 waiting, and the difference per job. Not run by CI.
# Usage: bench/waiting.sh [DELAY_MS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/upstream.sh"
delay=${1:-20000}
build=$here/build
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
command -v wrk >/dev/null || { echo "bench: installing wrk"; apt-get install -y -qq wrk >/dev/null; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cmake --build "$build" -j2 --target imagegate fake_upstream >/dev/null
up=18993 ig=18994
printf '%s' '{"model":"gpt-image-1","prompt":"a lighthouse at dusk","n":1,"size":"1024x1024"}' >"$tmp/body.json"
cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
local f = io.open("$tmp/body.json", "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
LUA
rss() { awk '/VmRSS/{print int($2/1024)}' "/proc/$1/status"; }
for mode in auto off; do
  # A fresh upstream per run: the last run's answers are still being held.
  FAKE_UPSTREAM_DELAY_MS=$delay "$build/bench/fake_upstream" $up >/dev/null & uppid=$!; pids+=($uppid)
  sleep 0.5
  cat >"$tmp/ig.yaml" <<YAML
server: {listen: 127.0.0.1:$ig, data_dir: $tmp/data-$mode, threads: 1, workers: 1, log_level: warn, relay: $mode}
limits: {job_timeout_ms: $((delay + 60000))}
$(upstream_yaml "$up" "{total_timeout_ms: $((delay + 60000)), response_timeout_ms: $((delay + 30000))}")
YAML
  BENCH_KEY=sk-bench "$build/imagegate" serve --config "$tmp/ig.yaml" >"$tmp/ig-$mode.log" 2>&1 & igpid=$!; pids+=($igpid)
  sleep 2
  idle=$(rss $igpid)
  wrk -t2 -c1000 -d$(( delay / 1000 + 5 ))s --timeout $(( delay / 1000 + 30 ))s -s "$tmp/post.lua" \
    "http://127.0.0.1:$ig/v1/images/generations" >"$tmp/wrk-$mode.txt" 2>&1 & wpid=$!
  sleep $(( delay / 2000 + 2 ))
  busy=$(rss $igpid)
  waiting=$(ss -tn state established "( sport = :$ig )" | tail -n +2 | wc -l)
  wait $wpid || true
  peak=$(awk '/VmHWM/{print int($2/1024)}' "/proc/$igpid/status")
  printf 'relay %-4s idle %4d MB | %4d connections waiting: %4d MB (+%d MB, %.1f KB per job) | peak %d MB | %s\n' \
    "$mode" "$idle" "$waiting" "$busy" $((busy - idle)) "$(awk -v a="$busy" -v b="$idle" -v n="$waiting" 'BEGIN{print (n > 0 ? (a - b) * 1024 / n : 0)}')" \
    "$peak" "$(awk '/Requests\/sec/{r=$2} /Non-2xx/{e=$NF} END{print r " req/s, " (e ? e : 0) " non-2xx"}' "$tmp/wrk-$mode.txt")"
  kill $igpid $uppid; wait $igpid $uppid 2>/dev/null || true
done

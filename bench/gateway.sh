#!/usr/bin/env bash
# gateway.sh -- imagegate against a direct call and Portkey's gateway, side by
# side in one run: OpenAI-style image generation routed to the same local fake
# upstream, at concurrency 1, 16 and 64, with a small and a ~1.5 MB body.
#
# Prints req/s and p50/p99 latency for each, the ratios imagegate/Portkey and
# imagegate/direct, and the peak RSS of both gateways. Both gateways are
# pinned to core 0 (Portkey is one Node.js thread, so one core each is the
# fair match); a second imagegate, unpinned with two HTTP threads, shows what
# the whole 2-core machine gives, sharing it with wrk and the upstream as the
# direct call does. Not run by CI.
#
# HAProxy (2 threads, keep-alive to the upstream) runs the small body too: a
# proxy that relays bytes and nothing more, it is the floor a gateway's added
# latency can come down to on this machine. imagegate parses, routes and
# records every request; HAProxy does none of that. So does bench/relay_floor
# (2 threads): libmicrohttpd in and libcurl out with imagegate's thread
# structure and no other work, the least imagegate's libraries cost. Every
# row gives the relay's CPU time per request (its process's user + system
# time over the run, divided by the requests served; for the direct row, the
# upstream's).
# Usage: bench/gateway.sh [SECONDS_SMALL] [SECONDS_LARGE]
# ANSWER_PNG=FILE makes the upstream answer with that picture (base64 in the
# JSON, as OpenAI does) instead of a 1x1 PNG: a real answer is ~1 MB.
#
# wrk is closed-loop: it keeps every connection busy, so each of its rows is
# a run at saturation, and its p99 is mostly the queue that saturation
# builds. The last table offers the small body at fixed rates instead
# (bench/openloop.c, latency counted from when each request was due) and
# shows the added latency at a given throughput. Then the c=16 small row is
# run again in ROUNDS alternating rounds (default 5), and each relay's
# median added p99 over them is given: one closed-loop p99 here decides
# little. With it, each relay's median req/s and p99/p50: the three relays'
# tails have had the same shape (p99 about three times p50), so a p99 that
# differs at one shape differs by the rate, that is, by CPU per request.
# And the medians of the CPU per request of the relay, of the upstream and
# of the rest of the machine (wrk, the kernel's threads), with the idle
# share: the two cores are nearly always busy, so the rate is 2 s of CPU a
# second over their sum, and what a relay may take for a given rate is what
# the others leave.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/upstream.sh"
small_s=${1:-10}; large_s=${2:-20}
build=$here/build
peers=$here/.deps/peers
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

command -v wrk >/dev/null || { echo "bench: installing wrk"; apt-get install -y -qq wrk >/dev/null; }
command -v haproxy >/dev/null || { echo "bench: installing haproxy"; apt-get install -y -qq haproxy >/dev/null; }
cmake --build "$build" -j2 --target imagegate fake_upstream openloop relay_floor >/dev/null
if [ ! -f "$peers/portkey/node_modules/@portkey-ai/gateway/build/start-server.js" ]; then
  echo "bench: installing @portkey-ai/gateway 1.15.2 into $peers/portkey"
  mkdir -p "$peers/portkey"
  (cd "$peers/portkey" && npm install --silent --no-audit --no-fund @portkey-ai/gateway@1.15.2 >/dev/null)
fi

up=18990 ig=18991 pk=18992 ig2=18993 hp=18994 fl=18995
"$build/bench/fake_upstream" $up ${ANSWER_PNG:-} >/dev/null & pids+=($!); uppid=$!
cat >"$tmp/ig.yaml" <<YAML
server: {listen: 127.0.0.1:$ig, data_dir: $tmp/data, threads: 1, workers: 1, log_level: warn}
$(upstream_yaml "$up")
YAML
BENCH_KEY=sk-bench taskset -c 0 "$build/imagegate" serve --config "$tmp/ig.yaml" >"$tmp/ig.log" 2>&1 & pids+=($!); igpid=$!
sed -e "s/127.0.0.1:$ig/127.0.0.1:$ig2/" -e "s/threads: 1/threads: 2/" -e "s#$tmp/data#$tmp/data2#" \
  "$tmp/ig.yaml" >"$tmp/ig2.yaml"
BENCH_KEY=sk-bench "$build/imagegate" serve --config "$tmp/ig2.yaml" >"$tmp/ig2.log" 2>&1 & pids+=($!); ig2pid=$!
cat >"$tmp/haproxy.cfg" <<CFG
global
  nbthread 2
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend relay
  bind 127.0.0.1:$hp
  default_backend upstream
backend upstream
  server up 127.0.0.1:$up
CFG
haproxy -f "$tmp/haproxy.cfg" >"$tmp/hp.log" 2>&1 & pids+=($!); hppid=$!
"$build/bench/relay_floor" $fl "http://127.0.0.1:$up/v1/images/generations" 2 >/dev/null & pids+=($!); flpid=$!
(cd "$peers/portkey" && taskset -c 0 node node_modules/@portkey-ai/gateway/build/start-server.js \
   --port=$pk --headless >"$tmp/pk.log" 2>&1) & pids+=($!)
sleep 3
pkpid=$(pgrep -f "start-server.js --port=$pk" | head -n1)
pids+=($pkpid)   # node itself: killing the subshell that started it leaves it running

# Bodies: a 267-byte generation request, and one carrying a ~1.5 MB base64 image.
small='{"model":"gpt-image-1","prompt":"a lighthouse on a cliff at dusk, oil painting, warm light, long shadows, seen from the sea","n":1,"size":"1024x1024","quality":"low","output_format":"png","background":"opaque","moderation":"auto","user":"bench-user-0001"}'
head -c 1100000 /dev/urandom | base64 -w0 >"$tmp/blob"
printf '{"model":"gpt-image-1","prompt":"reference attached","size":"1024x1024","user":"%s"}' \
  "$(cat "$tmp/blob")" >"$tmp/large.json"
printf '%s' "$small" >"$tmp/small.json"

lua() {  # lua BODYFILE HEADERS... -> wrk script path
  local f=$tmp/$RANDOM.lua body=$1; shift
  { echo 'wrk.method = "POST"'
    echo "local f = io.open(\"$body\", \"rb\"); wrk.body = f:read(\"*a\"); f:close()"
    echo 'wrk.headers["Content-Type"] = "application/json"'
    for h in "$@"; do echo "wrk.headers[\"${h%%:*}\"] = \"${h#*: }\""; done; } >"$f"
  echo "$f"
}
to_ms() {  # wrk's "812.00us", "1.39ms" or "1.02s" -> milliseconds
  awk -v v="${1:-0}" 'BEGIN{x=v+0; if (v ~ /us$/) x/=1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) x*=1000; print x}'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# The whole machine's busy and idle ticks (every core): what the relay and
# the upstream did not take of the busy time went to wrk and the kernel.
machine_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat; }
run() {  # run NAME URL BODY SECONDS CONC HEADERS...
  local name=$1 url=$2 body=$3 secs=$4 c=$5; shift 5
  local script; script=$(lua "$body" "$@")
  local pid
  case $name in
    direct) pid=$uppid;; portkey) pid=$pkpid;; imagegate) pid=$igpid;; ig-2core) pid=$ig2pid;;
    haproxy) pid=$hppid;; relay-floor) pid=$flpid;;
  esac
  wrk -t1 -c"$c" -d2s -s "$script" "$url" >/dev/null 2>&1 || true
  local t0 u0 m0; t0=$(cpu_ticks "$pid"); u0=$(cpu_ticks "$uppid"); m0=$(machine_ticks)
  wrk -t1 -c"$c" -d"${secs}s" --latency -s "$script" "$url" >"$tmp/out" 2>&1 || true
  local t1 u1 m1; t1=$(cpu_ticks "$pid"); u1=$(cpu_ticks "$uppid"); m1=$(machine_ticks)
  local rps p50 p99 n cpu
  rps=$(awk '/Requests\/sec/{print $2}' "$tmp/out")
  p50=$(awk '$1=="50%"{print $2}' "$tmp/out"); p99=$(awk '$1=="99%"{print $2}' "$tmp/out")
  n=$(awk '/requests in/{print $1}' "$tmp/out")
  cpu=$(awk -v a="$t0" -v b="$t1" -v n="${n:-0}" -v hz="$(getconf CLK_TCK)" \
    'BEGIN{if (n > 0) printf "%.1f", (b - a) * 1e6 / hz / n; else printf "-"}')
  printf '%-11s %-6s c=%-3s %10s req/s  p50 %-9s p99 %-9s cpu/req %s us\n' "$name" "$(basename "$body" .json)" "$c" "${rps:-0}" "${p50:--}" "${p99:--}" "$cpu"
  echo "$cpu" >"$tmp/cpu.$name.$(basename "$body" .json).$c"
  # The rest of the machine per request: the upstream's CPU, everything
  # else's (wrk, the kernel's threads), and the idle share.
  awk -v n="${n:-0}" -v hz="$(getconf CLK_TCK)" -v r=$((t1 - t0)) -v u=$((u1 - u0)) \
    -v same=$([ "$pid" = "$uppid" ] && echo 1 || echo 0) -v m0="$m0" -v m1="$m1" 'BEGIN{
      split(m0, a, " "); split(m1, b, " "); busy = b[1] - a[1]; idle = b[2] - a[2]
      if (same) r = 0
      if (n > 0 && busy + idle > 0)
        printf "%.1f %.1f %.1f\n", u * 1e6 / hz / n, (busy - r - u) * 1e6 / hz / n, 100 * idle / (busy + idle)
      else print "- - -" }' >"$tmp/machine.$name.$(basename "$body" .json).$c"
  echo "${rps:-0}"  >"$tmp/rps.$name.$(basename "$body" .json).$c"
  to_ms "$p99" >"$tmp/p99.$name.$(basename "$body" .json).$c"
  to_ms "$p50" >"$tmp/p50.$name.$(basename "$body" .json).$c"
}
rss() { awk '/VmHWM/{printf "%.0f MB", $2/1024}' "/proc/$1/status" 2>/dev/null; }

echo "idle RSS: imagegate $(awk '/VmRSS/{printf "%.0f MB", $2/1024}' /proc/$igpid/status), portkey $(awk '/VmRSS/{printf "%.0f MB", $2/1024}' /proc/$pkpid/status)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for body in small large; do
  secs=$small_s; [ $body = large ] && secs=$large_s
  for c in 1 16 64; do
    run direct "http://127.0.0.1:$up/v1/images/generations" "$tmp/$body.json" "$secs" $c
    run portkey "http://127.0.0.1:$pk/v1/images/generations" "$tmp/$body.json" "$secs" $c \
      "x-portkey-provider: openai" "Authorization: Bearer sk-bench" \
      "x-portkey-custom-host: http://127.0.0.1:$up/v1"
    run imagegate "http://127.0.0.1:$ig/v1/images/generations" "$tmp/$body.json" "$secs" $c
    run ig-2core "http://127.0.0.1:$ig2/v1/images/generations" "$tmp/$body.json" "$secs" $c
    if [ $body = small ]; then
      run haproxy "http://127.0.0.1:$hp/v1/images/generations" "$tmp/$body.json" "$secs" $c
      run relay-floor "http://127.0.0.1:$fl/v1/images/generations" "$tmp/$body.json" "$secs" $c
    fi
    d=$(cat "$tmp/rps.direct.$body.$c"); p=$(cat "$tmp/rps.portkey.$body.$c"); i=$(cat "$tmp/rps.imagegate.$body.$c")
    i2=$(cat "$tmp/rps.ig-2core.$body.$c")
    awk -v d="$(cat "$tmp/p99.direct.$body.$c")" -v i="$(cat "$tmp/p99.imagegate.$body.$c")" \
      -v i2="$(cat "$tmp/p99.ig-2core.$body.$c")" -v b=$body -v c=$c \
      'BEGIN{printf "  added p99 %s c=%s: imagegate %.2f ms, 2-core imagegate %.2f ms\n", b, c, i-d, i2-d}'
    [ $body = small ] && awk -v d="$(cat "$tmp/p99.direct.$body.$c")" -v h="$(cat "$tmp/p99.haproxy.$body.$c")" \
      -v r="$(cat "$tmp/rps.haproxy.$body.$c")" -v i2="$i2" -v c=$c \
      'BEGIN{printf "  haproxy small c=%s: added p99 %.2f ms; 2-core imagegate/haproxy %.2f\n", c, h-d, (r>0?i2/r:0)}'
    [ $body = small ] && awk -v d="$(cat "$tmp/p99.direct.$body.$c")" -v f="$(cat "$tmp/p99.relay-floor.$body.$c")" \
      -v r="$(cat "$tmp/rps.relay-floor.$body.$c")" -v i2="$i2" -v c=$c \
      'BEGIN{printf "  relay-floor small c=%s: added p99 %.2f ms; 2-core imagegate/relay-floor %.2f\n", c, f-d, (r>0?i2/r:0)}'
    awk -v d="$d" -v p="$p" -v i="$i" -v i2="$i2" -v b=$body -v c=$c \
      'BEGIN{printf "  ratio %s c=%s: imagegate/portkey %.1fx, imagegate/direct %.2f, 2-core imagegate/direct %.2f\n", b, c, (p>0?i/p:0), (d>0?i/d:0), (d>0?i2/d:0)}'
  done
done
# Open loop, 16 connections, small body. Portkey only at 500 req/s: its
# capacity here is below the next rate.
echo "open loop, small body, c=16 (ms, from when each request was due):"
ol() {  # ol NAME ADDR RATE HEADERS...
  local name=$1 addr=$2 rate=$3; shift 3
  "$build/bench/openloop" "$addr" /v1/images/generations "$tmp/small.json" "$rate" 16 2 "$@" >/dev/null || true
  local line
  line=$("$build/bench/openloop" "$addr" /v1/images/generations "$tmp/small.json" "$rate" 16 "$small_s" "$@" ||
         echo "failed")
  printf '%-11s %6s req/s offered: %s\n' "$name" "$rate" "$line"
  echo "$line" | awk '{for (i = 1; i < NF; i++) if ($i == "p99") print $(i+1)}' >"$tmp/olp99.$name.$rate"
}
for rate in 500 5000 10000 20000; do
  ol direct "127.0.0.1:$up" $rate
  [ $rate = 500 ] && ol portkey "127.0.0.1:$pk" $rate "x-portkey-provider: openai" \
    "Authorization: Bearer sk-bench" "x-portkey-custom-host: http://127.0.0.1:$up/v1"
  ol imagegate "127.0.0.1:$ig" $rate
  ol ig-2core "127.0.0.1:$ig2" $rate
  ol haproxy "127.0.0.1:$hp" $rate
  ol relay-floor "127.0.0.1:$fl" $rate
  awk -v d="$(cat "$tmp/olp99.direct.$rate")" -v i="$(cat "$tmp/olp99.imagegate.$rate")" \
    -v i2="$(cat "$tmp/olp99.ig-2core.$rate")" -v r=$rate \
    -v h="$(cat "$tmp/olp99.haproxy.$rate")" -v f="$(cat "$tmp/olp99.relay-floor.$rate")" \
    'BEGIN{printf "  added p99 at %s req/s: imagegate %.2f ms, 2-core imagegate %.2f ms, haproxy %.2f ms, relay-floor %.2f ms\n", r, i-d, i2-d, h-d, f-d}'
done
# The c=16 small-body row again, in ROUNDS alternating rounds (default 5):
# a closed-loop p99 on this machine moves by a millisecond from one minute
# to the next, whoever serves, so one run decides little. Each round runs
# the direct call and the three relays in turn; each relay's added p99 is
# taken against its own round's direct call, and the median is given.
rounds=${ROUNDS:-5}
echo "small body, c=16, $rounds alternating rounds: added p99 per round (ms), and the median;"
echo "then the medians of req/s and of p99/p50 (the tail's shape: at one shape, p99 follows the rate),"
echo "and of the CPU each process took per request (two cores give 2 s a second to share):"
for r in $(seq "$rounds"); do
  for name in direct ig-2core haproxy relay-floor; do
    case $name in
      direct) port=$up;; ig-2core) port=$ig2;; haproxy) port=$hp;; relay-floor) port=$fl;;
    esac
    run $name "http://127.0.0.1:$port/v1/images/generations" "$tmp/small.json" "$small_s" 16 >/dev/null
    cp "$tmp/p99.$name.small.16" "$tmp/round.$name.$r"
    awk -v a="$(cat "$tmp/p99.$name.small.16")" -v b="$(cat "$tmp/p50.$name.small.16")" \
      'BEGIN{printf "%.2f\n", (b > 0 ? a / b : 0)}' >"$tmp/shape.$name.$r"
    cp "$tmp/rps.$name.small.16" "$tmp/rate.$name.$r"
    cp "$tmp/cpu.$name.small.16" "$tmp/rcpu.$name.$r"
    cp "$tmp/machine.$name.small.16" "$tmp/rmachine.$name.$r"
  done
done
median() { sort -n | awk '{a[NR] = $1} END{if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
machine_col() {  # machine_col NAME FIELD -> the median over the rounds
  for r in $(seq "$rounds"); do cut -d' ' -f"$2" "$tmp/rmachine.$1.$r"; done | median
}
for name in ig-2core haproxy relay-floor; do
  added=$(for r in $(seq "$rounds"); do
    awk -v d="$(cat "$tmp/round.direct.$r")" -v x="$(cat "$tmp/round.$name.$r")" 'BEGIN{printf "%.2f\n", x - d}'
  done)
  printf '  %-11s %s  median %s;  %s req/s, p99/p50 %s\n' "$name" "$(echo $added)" \
    "$(echo "$added" | median)" "$(cat "$tmp"/rate."$name".* | median)" \
    "$(cat "$tmp"/shape."$name".* | median)"
  printf '  %-11s CPU per request: itself %s us, the upstream %s, the rest (wrk, kernel) %s; idle %s %%\n' \
    "" "$(cat "$tmp"/rcpu."$name".* | median)" "$(machine_col "$name" 1)" \
    "$(machine_col "$name" 2)" "$(machine_col "$name" 3)"
done
if ! kill -0 "$igpid" 2>/dev/null; then
  echo "imagegate exited during the run; its log ends:"; tail -n 20 "$tmp/ig.log"
fi
echo "peak RSS: imagegate $(rss $igpid), 2-core imagegate $(rss $ig2pid), portkey $(rss $pkpid)"

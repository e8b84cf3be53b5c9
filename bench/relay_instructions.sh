#!/usr/bin/env bash
# relay_instructions.sh -- instructions per relayed request, counted by
# callgrind: imagegate (two HTTP threads) and bench/relay_floor (libmicrohttpd
# in, libcurl out, nothing else) each serve N small OpenAI-style generations
# to the fake upstream, offered at 100 req/s by bench/openloop, and each
# also starts and stops serving none; the difference over N is the count per
# request, in user space, every thread and library included.
#
# Timings on this shared 2-core machine move by 10-20 % from one minute to
# the next; these counts move by well under 1 %, so a change of a few
# hundred instructions per request shows. They are not time: valgrind counts
# each byte a `rep stosb` clears, so a memset of the 32 KB libmicrohttpd
# clears per request weighs far more here than it costs, and system calls
# are not counted at all. bench/gateway.sh measures time. Not run by CI.
# Usage: bench/relay_instructions.sh [N]   (default 1000)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/upstream.sh"
n=${1:-1000}
build=$here/build
command -v valgrind >/dev/null || { echo "bench: installing valgrind"; apt-get install -y -qq valgrind >/dev/null; }
cmake --build "$build" -j2 --target imagegate fake_upstream openloop relay_floor >/dev/null
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

up=18980 port=18981
"$build/bench/fake_upstream" $up >/dev/null & pids+=($!)
printf '%s' '{"model":"gpt-image-1","prompt":"a lighthouse on a cliff at dusk, oil painting, warm light, long shadows, seen from the sea","n":1,"size":"1024x1024","quality":"low","output_format":"png","background":"opaque","moderation":"auto","user":"bench-user-0001"}' >"$tmp/small.json"
cat >"$tmp/ig.yaml" <<YAML
server: {listen: 127.0.0.1:$port, data_dir: $tmp/data, threads: 2, workers: 1, log_level: warn}
$(upstream_yaml "$up")
YAML

count() {  # count NAME REQUESTS -> total instructions of one run
  local name=$1 reqs=$2 out=$tmp/cg.$1.$2 pid
  rm -rf "$tmp/data"
  if [ "$name" = imagegate ]; then
    BENCH_KEY=sk-bench valgrind --tool=callgrind --callgrind-out-file="$out" \
      "$build/imagegate" serve --config "$tmp/ig.yaml" >"$tmp/$name.log" 2>&1 & pid=$!
  else
    valgrind --tool=callgrind --callgrind-out-file="$out" "$build/bench/relay_floor" $port \
      "http://127.0.0.1:$up/v1/images/generations" 2 >"$tmp/$name.log" 2>&1 & pid=$!
  fi
  pids+=($pid)
  local i
  for i in $(seq 150); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.2
  done
  if [ "$reqs" -gt 0 ]; then
    "$build/bench/openloop" 127.0.0.1:$port /v1/images/generations "$tmp/small.json" 100 4 \
      $((reqs / 100)) >"$tmp/ol.$name" || { echo "bench: $name did not answer"; exit 1; }
  fi
  kill -TERM $pid; wait $pid 2>/dev/null || true
  awk '/^totals:/{print $2}' "$out"
}
sent() { awk '{for (i = 1; i < NF; i++) if ($i == "answered") print $(i+1)}' "$tmp/ol.$1"; }

for name in relay_floor imagegate; do
  base=$(count $name 0)
  total=$(count $name "$n")
  echo "$name $(sent $name) $base $total" >>"$tmp/counts"
done
awk '{per = ($4 - $3) / $2; printf "%-12s %6.1fk instructions per request (%d relays; start and stop alone %.1fM)\n", $1, per / 1000, $2, $3 / 1e6; v[NR] = per}
     END {if (v[1] > 0) printf "imagegate / relay_floor: %.2f\n", v[2] / v[1]}' "$tmp/counts"

#!/usr/bin/env bash
# cutout.sh -- imagegate's local-isnet against @imgly/background-removal-node
# (the same ISNet "medium" weights, run from Node), side by side in one run.
#
# For each photo (astronaut 512x512, flower 2268x1512), each side runs:
#   cold    a fresh process doing one job: the job's own end-to-end time
#           (it makes the session and touches every buffer for the first
#           time) and the whole process's wall time (start, load, job, exit);
#   steady  one process doing 4 jobs: the median of jobs 2-4, end to end
#           (read file, decode, pre, inference, post, encode PNG, write);
# and /usr/bin/time -v gives each process's peak RSS and CPU time (user +
# sys) of the steady process: CPU time moves less than wall time when other
# work competes for the two cores, so its ratio is printed too. Ours also
# reports pre/inference/post per job.
# Goals: steady end to end <= 0.35x the peer's; peak RSS <= 0.7x the peer's;
# pre+post <= 10% of inference. The machine is shared: quote medians, run
# it when it is quiet, and read the load average printed with each row.
#
# The peer is installed into .deps/peers/imgly with npm on first use
# (docs: /work/shared/reference/PEERS.md): its sharp 0.32.6 is rebuilt
# against Debian's libvips 8.14.1, whose micro version its guard refuses,
# so the guard is relaxed in that private copy only.
#
# Usage: bench/cutout.sh [BUILD_DIR]   (default: build)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
peer="$here/.deps/peers/imgly"
photos="$here/.deps/photos"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

die() { printf 'cutout.sh: %s\n' "$*" >&2; exit 1; }

# ---- the peer ---------------------------------------------------------------
if [ ! -f "$peer/.done" ]; then
  mkdir -p "$peer"
  echo '{"private": true}' > "$peer/package.json"
  (cd "$peer" && npm install --silent --no-audit --no-fund --ignore-scripts \
     @imgly/background-removal-node@1.4.5) || die "npm install of the peer failed"
  sharp="$peer/node_modules/sharp"
  sed -i 's/VIPS_MINOR_VERSION == 14 && VIPS_MICRO_VERSION < 5)/VIPS_MINOR_VERSION == 14 \&\& VIPS_MICRO_VERSION < 1)/' \
    "$sharp/src/common.h"
  gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  (cd "$sharp" && npm_package_config_libvips=8.14.1 node "$gyp" rebuild --nodedir=/usr -j 2 \
     >"$tmp/gyp.log" 2>&1) || { tail -20 "$tmp/gyp.log" >&2; die "building sharp failed"; }
  touch "$peer/.done"
fi

# ---- ours ---------------------------------------------------------------------
cmake --build "$build" --target cutout -j 2 >/dev/null || die "cannot build bench/cutout"
ours="$build/bench/cutout"
export IMAGEGATE_HOME="$here"

field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
median_2_4() { sed -n '2,4p' | sort -n | sed -n 2p; }
rss_mb() { awk '/Maximum resident/ {printf "%.0f", $6 / 1024}' "$1"; }
wall_s() { awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0;
           for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s}' "$1"; }
cpu_s() { awk -F': ' '/User time|System time/ {s += $2} END {printf "%.1f", s}' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

run_ours() {   # photo runs tag
  /usr/bin/time -v "$ours" -n "$2" -o "$tmp/ours.png" "$1" >"$tmp/$3.json" 2>"$tmp/$3.time" \
    || { cat "$tmp/$3.time" >&2; die "imagegate cutout failed"; }
}
run_peer() {
  /usr/bin/time -v node "$here/bench/cutout_peer.mjs" "$peer" "$1" "$tmp/peer.png" "$2" \
    >"$tmp/$3.json" 2>"$tmp/$3.time" || { cat "$tmp/$3.time" >&2; die "the peer failed"; }
}

printf '%-10s %-6s %10s %10s %9s %9s %9s %9s %9s %8s %6s\n' photo side cold_job_s cold_proc_s steady_s \
  pre_ms infer_ms post_ms cpu4_s rss_MB load
for name in astronaut.png flower.png; do
  img="$photos/$name"
  [ -f "$img" ] || die "$img is missing: run scripts/setup"
  run_ours "$img" 1 oc
  run_peer "$img" 1 pc
  run_ours "$img" 4 os
  run_peer "$img" 4 ps
  load=$(cut -d' ' -f1 /proc/loadavg)
  o_cold=$(wall_s "$tmp/oc.time"); p_cold=$(wall_s "$tmp/pc.time")
  o_job=$(ratio "$(field total_ms < "$tmp/oc.json")" 1000)
  p_job=$(ratio "$(field total_ms < "$tmp/pc.json")" 1000)
  o_st=$(field total_ms < "$tmp/os.json" | median_2_4)
  p_st=$(field total_ms < "$tmp/ps.json" | median_2_4)
  pre=$(field pre_ms < "$tmp/os.json" | median_2_4)
  inf=$(field inference_ms < "$tmp/os.json" | median_2_4)
  post=$(field post_ms < "$tmp/os.json" | median_2_4)
  o_rss=$(rss_mb "$tmp/os.time"); p_rss=$(rss_mb "$tmp/ps.time")
  o_cpu=$(cpu_s "$tmp/os.time"); p_cpu=$(cpu_s "$tmp/ps.time")
  printf '%-10s %-6s %10s %10s %9.2f %9.1f %9.1f %9.1f %9s %8s %6s\n' "${name%.png}" ours "$o_job" \
    "$o_cold" "$(ratio "$o_st" 1000)" "$pre" "$inf" "$post" "$o_cpu" "$o_rss" "$load"
  printf '%-10s %-6s %10s %10s %9.2f %9s %9s %9s %9s %8s %6s\n' "${name%.png}" peer "$p_job" \
    "$p_cold" "$(ratio "$p_st" 1000)" - - - "$p_cpu" "$p_rss" "$load"
  printf '%-10s ratios: cold job %s, cold process %s, steady %s (goal <= 0.35), cpu %s, rss %s (goal <= 0.70), pre+post/inference %s (goal <= 0.10)\n' \
    "${name%.png}" "$(ratio "$o_job" "$p_job")" "$(ratio "$o_cold" "$p_cold")" "$(ratio "$o_st" "$p_st")" \
    "$(ratio "$o_cpu" "$p_cpu")" \
    "$(ratio "$o_rss" "$p_rss")" "$(awk -v a="$pre" -v b="$post" -v c="$inf" 'BEGIN {printf "%.3f", (a + b) / c}')"
done

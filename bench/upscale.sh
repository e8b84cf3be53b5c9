#!/usr/bin/env bash
# upscale.sh -- local-rdn's engine against ONNX Runtime 1.30 on the same RDN
# models and inputs: cold (first job of a fresh process) and steady (median
# of warm jobs) seconds, GMAC/s against this machine's fp32 FMA peak as
# fma_peak measures it beside each pair (the ~216 GMAC/s quoted in issue #7
# was one host's; the share of peak and the floor it sets on a job's time
# are printed as pct_peak and floor_s), peak RSS, and LR-PSNR (output
# box-downscaled vs input) beside Lanczos3.
#
# The ONNX models are converted from the same model.json by tfjs2onnx.py;
# ORT runs through its C API from bench/ort_rdn.c, 2 intra-op threads. Each
# engine runs in its own process, alternately, so both see the same noise;
# the load average is printed before each pair: the machine is shared, so
# quote medians over several invocations. Not run by CI.
# Usage: bench/upscale.sh [REPS] [PAIRS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
reps=${1:-5}; pairs=${2:-2}
build=$here/build
deps=$here/.deps
ort=$deps/npm/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1
img=$deps/photos/astronaut.png
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --build "$build" -j2 --target rdn ort_rdn fma_peak >/dev/null
[ -f "$ort" ] || { echo "bench: $ort missing: run scripts/setup"; exit 1; }

# Appends each engine line's steady share of the measured peak, and the
# time the whole job would take at that peak.
of_peak() {
  awk -v pk="$peak" '{ print; g = t = 0; for (i = 1; i <= NF; i++) { split($i, kv, "=");
      if (kv[1] == "gmacs_steady") g = kv[2]; if (kv[1] == "steady_s") t = kv[2] }
    if (g > 0 && pk > 0) printf "  pct_peak=%.0f floor_s=%.3f (peak %.1f GMAC/s)\n", 100 * g / pk, t * g / pk, pk }'
}
measure_peak() {
  peak=$("$build/bench/fma_peak" 2 1 | sed -n 's/.* gmacs=\([0-9.]*\).*/\1/p')
}
ours_rdn() { measure_peak; "$build/bench/rdn" "$dir" "$s" "$img" 2 0 "$reps" "$tmp/ours.png" | of_peak; }
ort_rdn() {
  measure_peak
  RDN_TFJS_DIR=$dir "$build/bench/ort_rdn" "$ort" "$tmp/slim-x$s.onnx" "$s" "$img" 2 "$reps" "$tmp/ours.png" | of_peak
}

for s in 2 4; do
  dir=$deps/npm/esrgan-slim/models/x$s
  /usr/bin/python3 "$here/bench/tfjs2onnx.py" "$dir" "$tmp/slim-x$s.onnx"
  for p in $(seq "$pairs"); do
    echo "# slim x$s 512x512, pair $p, load $(cut -d' ' -f1-3 /proc/loadavg)"
    # Alternate which engine goes first: a process that starts right after
    # another one freed ~1 GB meets pages the host has taken back, and its
    # cold job is slower for it.
    if [ $((p % 2)) = 1 ]; then ours_rdn; ort_rdn; else ort_rdn; ours_rdn; fi
  done
done

# memory at scale: 2048x2048 x4 (a 8192x8192 result), one cold job. ORT is
# not run here: it needs about 4 GB for 512x512 x4 already (PEERS.md).
vips resize "$img" "$tmp/big.png" 4
echo "# slim x4 2048x2048, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/bench/rdn" "$deps/npm/esrgan-slim/models/x4" 4 "$tmp/big.png" 2 0 0

#!/usr/bin/env bash
# metrics.sh -- imagegate's metrics beside their peers, in one run, on the
# same pair: a 1024x1024 crop of the flower photo and its JPEG q85 copy.
#
# Ours (bench/metrics.c) is timed in-process with decode excluded, median of
# 7 after a warm-up, one thread. scikit-image is timed the same way inside
# Python (decode excluded). ImageMagick compare and butteraugli_main are
# command-line tools and include their decode; their medians are of 5 runs.
# The SSIMULACRA2 reference is not packaged: set SSIMULACRA2_REF to a build
# of it to include it. Then the peak RSS of all our metrics on a 50 MP pair
# (JPEG q95 against q85), decode included, from /usr/bin/time -v.
# Not run by CI. Usage: bench/metrics.sh [build-dir]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cmake --build "$build" -j2 --target metrics >/dev/null
m=$build/bench/metrics

photo=$here/.deps/photos/flower.png
vips extract_area "$photo" "$tmp/ref.png" 622 244 1024 1024
vips copy "$tmp/ref.png" "$tmp/q85.jpg[Q=85]"
vips copy "$tmp/q85.jpg" "$tmp/q85.png"

# median_ms CMD...: median wall time of 5 runs, in ms.
median_ms() {
  local t=()
  for _ in 1 2 3 4 5; do
    local s; s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; t+=($(( ($(date +%s%N) - s) / 1000000 )))
  done
  printf '%s\n' "${t[@]}" | sort -n | sed -n 3p
}

echo "== ours (decode excluded, median of 7, 1 thread)"
"$m" "$tmp/ref.png" "$tmp/q85.png" 7 | tee "$tmp/ours"
ours() { awk -v k="$1" '$1 == k {print $3}' "$tmp/ours"; }

echo "== scikit-image $(/usr/bin/python3 -c 'import skimage; print(skimage.__version__)') (decode excluded, median of 5)"
/usr/bin/python3 - "$tmp/ref.png" "$tmp/q85.png" <<'PY' | tee "$tmp/sk"
import sys, time, numpy as np, skimage.io as io
from skimage.metrics import structural_similarity as S, peak_signal_noise_ratio as P
a, b = (io.imread(p)[..., :3] for p in sys.argv[1:3])
ya, yb = (x.astype(np.float64) @ [0.299, 0.587, 0.114] for x in (a, b))
k = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
def med(f):
    t = []
    for _ in range(5):
        s = time.perf_counter(); v = f(); t.append((time.perf_counter() - s) * 1e3)
    return v, sorted(t)[2]
for name, f in (("ssim", lambda: S(ya, yb, **k)),
                ("ssim_rgb", lambda: S(a, b, channel_axis=2, **k)),
                ("psnr", lambda: P(a, b, data_range=255))):
    v, t = med(f)
    print("%-12s %14.6f %10.2f ms" % (name, v, t))
PY
sk() { awk -v k="$1" '$1 == k {print $3}' "$tmp/sk"; }

echo "== command-line peers (decode included, median of 5)"
im_psnr=$(median_ms compare -metric PSNR "$tmp/ref.png" "$tmp/q85.png" null:)
im_phash=$(median_ms compare -metric PHASH "$tmp/ref.png" "$tmp/q85.png" null:)
ba=$(median_ms butteraugli_main "$tmp/ref.png" "$tmp/q85.png")
printf '%-28s %8s ms\n' "ImageMagick compare PSNR" "$im_psnr" "ImageMagick compare PHASH" "$im_phash" \
  "butteraugli_main" "$ba"
s2ref=
if [ -n "${SSIMULACRA2_REF:-}" ]; then
  s2ref=$(median_ms "$SSIMULACRA2_REF" "$tmp/ref.png" "$tmp/q85.png")
  printf '%-28s %8s ms (score %s)\n' "SSIMULACRA2 reference" "$s2ref" \
    "$("$SSIMULACRA2_REF" "$tmp/ref.png" "$tmp/q85.png")"
fi

echo "== ratios (peer time / our time)"
ratio() { awk -v p="$2" -v o="$3" -v n="$1" 'BEGIN { printf "%-44s %7.1fx\n", n, p / o }'; }
ratio "scikit-image SSIM / ours" "$(sk ssim)" "$(ours ssim)"
ratio "scikit-image SSIM per channel / ours" "$(sk ssim_rgb)" "$(ours ssim_rgb)"
ratio "scikit-image PSNR / ours" "$(sk psnr)" "$(ours psnr)"
ratio "ImageMagick PSNR (with decode) / ours" "$im_psnr" "$(ours psnr)"
ratio "ImageMagick PHASH (with decode) / our pHash" "$im_phash" "$(ours phash)"
ratio "butteraugli (with decode) / our SSIMULACRA2" "$ba" "$(ours ssimulacra2)"
[ -n "$s2ref" ] && ratio "SSIMULACRA2 reference (with decode) / ours" "$s2ref" "$(ours ssimulacra2)"

echo "== 50 MP pair (8660x5774), all metrics once, decode included"
vips resize "$photo" "$tmp/big.v" 3.8185
vips copy "$tmp/big.v" "$tmp/big_a.jpg[Q=95]"
vips copy "$tmp/big.v" "$tmp/big_b.jpg[Q=85]"
vipsheader "$tmp/big_a.jpg"
/usr/bin/time -v "$m" "$tmp/big_a.jpg" "$tmp/big_b.jpg" 1 \
  ssim,msssim,ssimulacra2,psnr,phash,dhash,ahash,blockhash,deltae 2>"$tmp/time"
grep -E "Maximum resident|Elapsed" "$tmp/time"

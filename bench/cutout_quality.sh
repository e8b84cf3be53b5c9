#!/usr/bin/env bash
# cutout_quality.sh -- local-isnet's matte quality against a known alpha.
#
# No package ships a ground-truth matte, so the evaluation set is built
# from real photos: a subject is cut out of its photo by local-isnet itself
# (astronaut, chelsea), that alpha is declared the truth, and the subject is
# composited over other real photos (flower, coffee, rocket and the three
# wesaturate 500px photos). The backend then has to find the same subject in
# front of a background it has never been seen with. This measures
# robustness to the background and the edge refinement, not absolute
# accuracy (the truth carries the model's own errors on the original).
# Prints SAD, MSE and gradient error over the unknown band, halo_bleed and
# cut_fg (METRICS.md section 5), one row per composite.
#
# Usage: bench/cutout_quality.sh [BUILD_DIR]   (default: build)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
photos="$here/.deps/photos"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export IMAGEGATE_HOME="$here"

cmake --build "$build" --target cutout cutout_quality -j 2 >/dev/null \
  || { echo "cutout_quality.sh: cannot build the bench programs" >&2; exit 1; }
backgrounds=("$photos/flower.png" "$photos/coffee.png" "$photos/rocket.jpg" "$photos"/*_srgb8.png)
first=1
for fg in astronaut chelsea; do
  "$build/bench/cutout" -o "$tmp/$fg.png" "$photos/$fg.png" >/dev/null
  "$build/bench/cutout_quality" "$tmp/$fg.png" "${backgrounds[@]}" | tail -n +"$first"
  first=2
done

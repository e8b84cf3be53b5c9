#!/usr/bin/env bash
# check.sh -- 'imagegate check compare' and 'check hash' from the command
# line: text and --json output, --metrics, --resize, --heatmap, exit codes,
# and bad input (different sizes, grey against RGBA, 1x1 images, 16-bit
# PNGs, truncated and non-image files, missing files), each refused with a
# clear message and a machine-readable code. Test images are made here from
# the photos with the vips CLI.
set -u
bin=${IG_BIN:?}; deps=${IG_DEPS:?}
pass=0; fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

check() {   # check NAME EXPECTED_RC CMD... ; output in $tmp/out, $tmp/err
  local name=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ "$rc" = "$want" ]; then pass=$((pass+1)); else
    fail=$((fail+1)); echo "FAIL $name: exit $rc, wanted $want"; cat "$tmp/out" "$tmp/err"; fi
}
has() {     # has NAME FILE PATTERN
  if grep -qE -- "$3" "$2"; then pass=$((pass+1)); else
    fail=$((fail+1)); echo "FAIL $1: '$3' not in $2:"; cat "$2"; fi
}
hasnt() {   # hasnt NAME FILE PATTERN
  if grep -qE -- "$3" "$2"; then fail=$((fail+1)); echo "FAIL $1: '$3' in $2:"; cat "$2"
  else pass=$((pass+1)); fi
}

photo=$deps/photos/chelsea.png
vips copy "$photo" "$tmp/a.png"
vips copy "$photo" "$tmp/b.jpg[Q=40]"
vips resize "$photo" "$tmp/half.png" 0.5
vips colourspace "$photo" "$tmp/grey.png" b-w
vips bandjoin_const "$tmp/grey.png" "$tmp/grey_rgba.png" 255
vips colourspace "$tmp/grey_rgba.png" "$tmp/grey_srgb.png" srgb
vips colourspace "$photo" "$tmp/a16.png" rgb16
vips black "$tmp/one.png" 1 1
vips linear "$tmp/one.png" "$tmp/one_white.png" 1 255 --uchar
head -c 300 "$tmp/a.png" >"$tmp/truncated.png"
printf 'this is not an image\n' >"$tmp/text.png"

# compare: all metrics by default, one line each.
check compare 0 "$bin" check compare "$tmp/a.png" "$tmp/b.jpg"
for k in ssim msssim ssimulacra2 psnr phash_distance dhash_distance ahash_distance \
         blockhash_distance deltae_mean deltae_p95; do
  has "compare-$k" "$tmp/out" "^$k +[-0-9]"
done
check compare-json 0 "$bin" check compare "$tmp/a.png" "$tmp/b.jpg" --json --metrics ssim,phash,deltae
has json-ssim "$tmp/out" '"ssim": 0\.9[0-9]+'
has json-phash "$tmp/out" '"phash_distance": [0-9]+,?$'
has json-deltae "$tmp/out" '"deltae_p95": '
hasnt json-only-asked "$tmp/out" 'psnr|msssim'
check identical-psnr 0 "$bin" check compare "$tmp/a.png" "$tmp/a.png" --json --metrics psnr,ssimulacra2
has identical-psnr-null "$tmp/out" '"psnr": null'
has identical-s2-100 "$tmp/out" '"ssimulacra2": 100'
check unknown-metric 2 "$bin" check compare "$tmp/a.png" "$tmp/b.jpg" --metrics ssim,vmaf
has unknown-metric-msg "$tmp/err" "unknown metric 'vmaf'"
check one-image 2 "$bin" check compare "$tmp/a.png"

# Sizes: an error with its code unless --resize.
check sizes 2 "$bin" check compare "$tmp/a.png" "$tmp/half.png"
has sizes-code "$tmp/err" '451x300 and .*22[56]x150.*\[size_mismatch\]'
check sizes-json 2 "$bin" check compare "$tmp/a.png" "$tmp/half.png" --json
has sizes-json-code "$tmp/out" '"code": *"size_mismatch"'
check resize 0 "$bin" check compare "$tmp/a.png" "$tmp/half.png" --resize --metrics ssim,phash
has resize-phash "$tmp/out" '^phash_distance +[0-4]$'

# Grey against the same grey as RGBA: the same picture.
check grey-rgba 0 "$bin" check compare "$tmp/grey.png" "$tmp/grey_srgb.png" --metrics ssim,psnr,phash
has grey-rgba-ssim "$tmp/out" '^ssim +1\.000000'
has grey-rgba-psnr "$tmp/out" '^psnr +inf'

# 16-bit PNG against its 8-bit source: decoded to 8 bits, nearly identical.
check sixteen 0 "$bin" check compare "$tmp/a.png" "$tmp/a16.png" --json --metrics psnr,ssim
has sixteen-psnr "$tmp/out" '"psnr": (null|[5-9][0-9]\.)'

# 1x1: the window metrics refuse with image_too_small, pixel ones work.
check tiny 2 "$bin" check compare "$tmp/one.png" "$tmp/one_white.png"
has tiny-code "$tmp/err" '\[image_too_small\]'
check tiny-psnr 0 "$bin" check compare "$tmp/one.png" "$tmp/one_white.png" --metrics psnr,deltae,phash
has tiny-psnr-zero "$tmp/out" '^psnr +0\.000000'
check tiny-hash 0 "$bin" check hash "$tmp/one.png"

# Broken input.
check truncated 2 "$bin" check compare "$tmp/truncated.png" "$tmp/a.png"
has truncated-code "$tmp/err" 'truncated\.png.*\[corrupt_image\]'
check text 2 "$bin" check compare "$tmp/a.png" "$tmp/text.png"
has text-code "$tmp/err" '\[unsupported_format\]'
check missing 2 "$bin" check compare "$tmp/a.png" "$tmp/nope.png"
has missing-code "$tmp/err" 'nope\.png.*\[file_unreadable\]'
check missing-hash 2 "$bin" check hash "$tmp/nope.png" --json
has missing-hash-json "$tmp/out" '"code": *"file_unreadable"'

# Heatmap: a PNG the size of A.
check heatmap 0 "$bin" check compare "$tmp/a.png" "$tmp/b.jpg" --metrics ssim --heatmap "$tmp/heat.png"
if [ "$(vipsheader "$tmp/heat.png" 2>/dev/null)" = "$tmp/heat.png: 451x300 uchar, 4 bands, srgb, pngload" ]
then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL heatmap-file"; vipsheader "$tmp/heat.png"; fi

# hash.
check hash 0 "$bin" check hash "$tmp/a.png"
has hash-hex "$tmp/out" '^[0-9a-f]{16}$'
check hash-grey 0 "$bin" check hash "$tmp/grey.png" --algo dhash --json
has hash-grey-json "$tmp/out" '"algo": "dhash", "bits": 64, "hash": "[0-9a-f]{16}"'
check hash-block 0 "$bin" check hash "$tmp/a.png" --algo blockhash --json
has hash-block-json "$tmp/out" '"algo": "blockhash", "bits": 256, "hash": "[0-9a-f]{64}"'
check hash-bad-algo 2 "$bin" check hash "$tmp/a.png" --algo whash
check hash-tiny-block 2 "$bin" check hash "$tmp/one.png" --algo blockhash
has hash-tiny-block-code "$tmp/err" '\[image_too_small\]'

# Help, unknown subcommands, the gate seam.
check help 0 "$bin" check --help
has help-text "$tmp/out" 'imagegate check compare A B'
check unknown-sub 2 "$bin" check frobnicate
check gate-dispatch 2 "$bin" check gate no-such-class "$tmp/a.png"
has gate-dispatch-code "$tmp/err" 'unknown_class'

echo "check.sh: $pass passed, $fail failed"
[ "$fail" = 0 ]

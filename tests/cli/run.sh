#!/usr/bin/env bash
# run.sh -- 'imagegate run': one job through the router without a server.
# A local upscale end to end (size, provenance, same bytes twice), a job the
# contract refuses, and bad input of every kind with its exit code and error
# code.
set -u
bin=${IG_BIN:?}; deps=${IG_DEPS:?}
pass=0; fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp

check() {   # check NAME EXPECTED_RC CMD... ; output in $tmp/out, $tmp/err
  local name=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ "$rc" = "$want" ]; then pass=$((pass+1)); else
    fail=$((fail+1)); echo "FAIL $name: exit $rc, wanted $want"; cat "$tmp/err" "$tmp/out"; fi
}
has() {     # has NAME FILE PATTERN
  if grep -qE -- "$3" "$2"; then pass=$((pass+1)); else
    fail=$((fail+1)); echo "FAIL $1: '$3' not in $2:"; cat "$2"; fi
}
same() {    # same NAME A B
  if [ "$2" = "$3" ]; then pass=$((pass+1)); else
    fail=$((fail+1)); echo "FAIL $1: '$2' != '$3'"; fi
}

photo=$deps/photos/chelsea.png
vips crop "$photo" "$tmp/in.png" 40 30 150 100 || exit 1

check upscale 0 "$bin" run upscale "$tmp/in.png" "$tmp/up.png" --backend local-lanczos --scale 3 --json
same upscale-size "$(vipsheader -f width "$tmp/up.png")x$(vipsheader -f height "$tmp/up.png")" 450x300
has upscale-backend "$tmp/out" '"backend": "local-lanczos"'
has upscale-tier "$tmp/out" '"tier": "bytes"'
has upscale-scale "$tmp/out" '"scale": 3'
check upscale-again 0 "$bin" run upscale "$tmp/in.png" "$tmp/up2.png" --backend local-lanczos --scale 3
same tier-bytes "$(sha256sum <"$tmp/up.png")" "$(sha256sum <"$tmp/up2.png")"
has plain-line "$tmp/err" 'in.png -> .*up2.png \(450x300, backend local-lanczos, tier bytes\)'
check to-stdout 0 "$bin" run upscale "$tmp/in.png" - --backend local-lanczos --scale 2
same stdout-png "$(head -c 4 "$tmp/out" | od -An -c | tr -d ' ')" '211PNG'
check webp 0 "$bin" run upscale "$tmp/in.png" "$tmp/up.webp" --backend local-lanczos --format webp
same webp-format "$(vipsheader -f vips-loader "$tmp/up.webp")" webpload

# The store was a scratch folder, and it is gone.
same scratch-removed "$(ls "$tmp" | grep -c imagegate-run)" 0

# Refused by the contract: local-lanczos has no x5.
check no-such-scale 1 "$bin" run upscale "$tmp/in.png" "$tmp/x.png" --backend local-lanczos --scale 5 --json
has no-such-scale-why "$tmp/out" 'local-lanczos'
# A backend of the wrong class.
check wrong-class 1 "$bin" run remove-background "$tmp/in.png" "$tmp/x.png" --backend local-lanczos

# Bad input.
check usage 2 "$bin" run upscale "$tmp/in.png"
check bad-class 2 "$bin" run generate "$tmp/in.png" "$tmp/x.png"
has bad-class-msg "$tmp/err" 'CLASS is one of'
check bad-scale 2 "$bin" run upscale "$tmp/in.png" "$tmp/x.png" --scale zero
check edit-needs-prompt 2 "$bin" run edit "$tmp/in.png" "$tmp/x.png"
check both 2 "$bin" run upscale "$tmp/in.png" "$tmp/x.png" --backend a --ladder b
check missing-file 2 "$bin" run upscale "$tmp/nope.png" "$tmp/x.png"
has missing-file-code "$tmp/err" 'file_unreadable'
head -c 3000 "$photo" >"$tmp/trunc.png"
check truncated 2 "$bin" run upscale "$tmp/trunc.png" "$tmp/x.png" --backend local-lanczos
has truncated-code "$tmp/err" 'corrupt_image|truncated'
printf 'not an image at all' >"$tmp/text.png"
check not-image 2 "$bin" run upscale "$tmp/text.png" "$tmp/x.png" --backend local-lanczos
has not-image-code "$tmp/err" 'unsupported_format'
vips black "$tmp/huge.png" 20000 20000 || exit 1
check too-large 2 "$bin" run upscale "$tmp/huge.png" "$tmp/x.png" --backend local-lanczos
has too-large-code "$tmp/err" 'image_too_large'
# x8 of 3000x3000 is 576 MP: under the input limit, over the result's, refused before decoding.
vips black "$tmp/wide.png" 3000 3000 || exit 1
check output-too-large 1 "$bin" run upscale "$tmp/wide.png" "$tmp/x.png" --backend local-rdn-slim --scale 8
has output-too-large-why "$tmp/err" 'local-rdn-slim: skipped: x8 of 9000000 pixels is over its output limit of 67108864 pixels'
vips colourspace "$tmp/in.png" "$tmp/grey.png" b-w || exit 1
check grey 0 "$bin" run upscale "$tmp/grey.png" "$tmp/g.png" --backend local-lanczos
vips colourspace "$tmp/in.png" "$tmp/in16.png" rgb16 || exit 1
has sixteen-bit-input <(vipsheader "$tmp/in16.png") "ushort"
check sixteen-bit 0 "$bin" run upscale "$tmp/in16.png" "$tmp/s.png" --backend local-lanczos
vips black "$tmp/one.png" 1 1 --bands 3 || exit 1
check one-pixel 0 "$bin" run upscale "$tmp/one.png" "$tmp/t.png" --backend local-lanczos --scale 2
same one-pixel-size "$(vipsheader -f width "$tmp/t.png")" 2
printf 'server: {colour: 1}\n' >"$tmp/bad.yaml"
check bad-config 2 "$bin" run upscale "$tmp/in.png" "$tmp/x.png" --config "$tmp/bad.yaml"
has bad-config-where "$tmp/err" 'bad.yaml:1:'
check unknown-tenant 2 "$bin" run upscale "$tmp/in.png" "$tmp/x.png" --tenant nobody
has unknown-tenant-code "$tmp/err" 'unknown_tenant'

echo "run: $pass passed, $fail failed"
[ "$fail" = 0 ]

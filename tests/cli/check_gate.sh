#!/usr/bin/env bash
# check_gate.sh -- 'imagegate check gate' from the command line: each class
# with an output that must pass and one that must fail, --json's shape,
# config bounds, and input errors with their exit code 2 and error code.
# Pictures are made here from the real photos with the vips CLI.
set -u
bin=${IG_BIN:?}; deps=${IG_DEPS:?}
pass=0; fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ph=$deps/photos

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
v() { vips "$@" >/dev/null || { echo "vips $* failed"; exit 2; }; }

# generate: a photo, grey noise, a black frame.
v crop "$ph/coffee.png" "$tmp/photo.png" 0 0 512 384
v gaussnoise "$tmp/noise1.v" 512 384 --sigma 40 --mean 128
v cast "$tmp/noise1.v" "$tmp/noise1c.v" uchar
v bandjoin "$tmp/noise1c.v $tmp/noise1c.v $tmp/noise1c.v" "$tmp/noise.png"
v black "$tmp/black.png" 512 384 --bands 3
check gen-photo 0 "$bin" check gate generate "$tmp/photo.png" --size 512x384
has gen-photo-line "$tmp/out" '^gate: pass$'
check gen-noise 1 "$bin" check gate generate "$tmp/noise.png" --json
has gen-noise-json "$tmp/out" '"pass": false'
has gen-noise-named "$tmp/out" '"name": "noise"'
check gen-black 1 "$bin" check gate generate "$tmp/black.png"
has gen-black-named "$tmp/out" '^gate: FAIL \(.*clipped'
check gen-size-mismatch 1 "$bin" check gate generate "$tmp/photo.png" --size 1024x768 --json
has gen-size-named "$tmp/out" '"name": "size"'

# --json is the documented shape, and pass/fail agrees with the exit code.
check json-shape 0 "$bin" check gate generate "$tmp/photo.png" --json
if node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const ok = r.pass === true && Array.isArray(r.checks) && r.checks.length >= 4 &&
    r.checks.every(c => typeof c.name === "string" && typeof c.score === "number" &&
                        typeof c.bound === "number" && typeof c.pass === "boolean");
  process.exit(ok ? 0 : 1);' "$tmp/out"; then pass=$((pass+1)); else
  fail=$((fail+1)); echo "FAIL json-shape-fields"; cat "$tmp/out"; fi

# generate with text: a white banner with the slogan over the photo.
v text "$tmp/text.v" "ACME Summer Sale" --font "sans bold 28" --width 440 --dpi 72
v invert "$tmp/text.v" "$tmp/textinv.v"
v embed "$tmp/textinv.v" "$tmp/banner.v" 20 20 480 80 --extend white
v bandjoin "$tmp/banner.v $tmp/banner.v $tmp/banner.v" "$tmp/banner3.v"
v insert "$tmp/photo.png" "$tmp/banner3.v" "$tmp/poster.png" 16 150
check text-ok 0 "$bin" check gate generate "$tmp/poster.png" --expect-text "acme summer sale"
check text-wrong 1 "$bin" check gate generate "$tmp/poster.png" --expect-text "Winter Clearance"
has text-wrong-named "$tmp/out" 'FAIL +text'
check palette-off 1 "$bin" check gate generate "$tmp/photo.png" --palette '#1a3d7c,#f2c14e'
has palette-named "$tmp/out" 'FAIL +palette'

# upscale: Lanczos x2 of the input passes, another photo and a wrong scale fail.
v crop "$ph/flower.png" "$tmp/hr.png" 622 244 512 512
v resize "$tmp/hr.png" "$tmp/lr.png" 0.5 --kernel lanczos3
v resize "$tmp/lr.png" "$tmp/up2.png" 2 --kernel lanczos3
v crop "$ph/astronaut.png" "$tmp/other.png" 0 0 512 512
check up-ok 0 "$bin" check gate upscale "$tmp/up2.png" --input "$tmp/lr.png" --scale 2
check up-true-hr 0 "$bin" check gate upscale "$tmp/hr.png" --input "$tmp/lr.png" --scale 2
check up-other 1 "$bin" check gate upscale "$tmp/other.png" --input "$tmp/lr.png" --scale 2 --json
has up-other-named "$tmp/out" '"name": "lr_psnr"'
check up-scale 1 "$bin" check gate upscale "$tmp/up2.png" --input "$tmp/lr.png" --scale 4
has up-scale-named "$tmp/out" 'FAIL +scale'

# edit: a rectangle replaced under a white-on-black mask; a regenerated picture.
v black "$tmp/m0.v" 160 120
v invert "$tmp/m0.v" "$tmp/m1.v"
v embed "$tmp/m1.v" "$tmp/mask.png" 200 120 512 384
v crop "$ph/astronaut.png" "$tmp/patch.png" 0 0 160 120
v insert "$tmp/photo.png" "$tmp/patch.png" "$tmp/edited.png" 200 120
v crop "$ph/rocket.jpg" "$tmp/regen.png" 0 0 512 384
check edit-ok 0 "$bin" check gate edit "$tmp/edited.png" --input "$tmp/photo.png" --mask "$tmp/mask.png"
check edit-regen 1 "$bin" check gate edit "$tmp/regen.png" --input "$tmp/photo.png" --mask "$tmp/mask.png"
has edit-regen-named "$tmp/out" 'FAIL +preserve'
check edit-noop 1 "$bin" check gate edit "$tmp/photo.png" --input "$tmp/photo.png" --mask "$tmp/mask.png"
has edit-noop-named "$tmp/out" 'FAIL +changed'

# remove-background: a subject (a disc of one photo) over a green-tinted
# other photo is the input; the subject with the disc as alpha passes, the
# disc 8 px too big (a rim of backdrop) fails halo_bleed, the opaque input
# fails alpha.
v crop "$ph/astronaut.png" "$tmp/fg.png" 0 64 512 384
v linear "$tmp/photo.png" "$tmp/bg.png" "0.33 0.33 0.33" "0 120 0" --uchar
v black "$tmp/d0.v" 512 384
v draw_circle "$tmp/d0.v" 255 256 192 150 --fill
v black "$tmp/d1.v" 512 384
v draw_circle "$tmp/d1.v" 255 256 192 158 --fill
v bandjoin "$tmp/fg.png $tmp/d0.v" "$tmp/cutout.png"
v composite2 "$tmp/bg.png" "$tmp/cutout.png" "$tmp/scene.v" over
v extract_band "$tmp/scene.v" "$tmp/scene.png" 0 --n 3
v bandjoin "$tmp/scene.png $tmp/d1.v" "$tmp/haloed.png"
check cut-ok 0 "$bin" check gate remove-background "$tmp/cutout.png" --input "$tmp/scene.png"
check cut-halo 1 "$bin" check gate remove-background "$tmp/haloed.png" --input "$tmp/scene.png"
has cut-halo-named "$tmp/out" 'FAIL +halo_bleed'
check cut-opaque 1 "$bin" check gate remove-background "$tmp/scene.png" --input "$tmp/scene.png"
has cut-opaque-named "$tmp/out" 'FAIL +alpha'

# Bounds from a config file.
cat >"$tmp/strict.yaml" <<'YAML'
backends: []
validation:
  generate: {clipped: 0.0001}
YAML
check config-bound 1 "$bin" check gate generate "$tmp/photo.png" --config "$tmp/strict.yaml"
has config-bound-named "$tmp/out" 'FAIL +clipped'

# A corrupt output is a failed gate (its decode check), not an input error.
head -c 300 "$tmp/photo.png" >"$tmp/corrupt.png"
check corrupt-output 1 "$bin" check gate generate "$tmp/corrupt.png" --json
has corrupt-output-named "$tmp/out" '"name": "decode"'

# Input errors: exit 2 with a stable code.
check bad-class 2 "$bin" check gate teleport "$tmp/photo.png" --json
has bad-class-code "$tmp/out" '"code": ?"unknown_class"'
check missing-input-edit 2 "$bin" check gate edit "$tmp/photo.png" --json
has missing-input-edit-code "$tmp/out" '"code": ?"missing_input"'
check missing-input-up 2 "$bin" check gate upscale "$tmp/up2.png" --scale 2 --json
has missing-input-up-code "$tmp/out" '"code": ?"missing_input"'
check corrupt-input 2 "$bin" check gate upscale "$tmp/up2.png" --input "$tmp/corrupt.png" --json
has corrupt-input-code "$tmp/out" '"code": ?"corrupt_image"'
check missing-file 2 "$bin" check gate upscale "$tmp/up2.png" --input "$tmp/nope.png" --json
has missing-file-code "$tmp/out" '"code": ?"file_unreadable"'
check bad-palette 2 "$bin" check gate generate "$tmp/photo.png" --palette 'navy,#f2c14e' --json
has bad-palette-code "$tmp/out" '"code": ?"invalid_palette"'
v crop "$tmp/mask.png" "$tmp/smallmask.png" 0 0 256 192
check mask-size 2 "$bin" check gate edit "$tmp/edited.png" --input "$tmp/photo.png" --mask "$tmp/smallmask.png" --json
has mask-size-code "$tmp/out" '"code": ?"size_mismatch"'
check bad-size 2 "$bin" check gate generate "$tmp/photo.png" --size 12x
check bad-option 2 "$bin" check gate generate "$tmp/photo.png" --frobnicate
check no-output 2 "$bin" check gate generate

echo "check_gate: $pass passed, $fail failed"
[ "$fail" = 0 ]

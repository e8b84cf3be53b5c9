#!/usr/bin/env bash
# test_runner.sh -- the story of 'imagegate test' against the vendor emulators.
#
# The OpenAI and BFL emulators run as their own processes (as a user's CI
# would run them), so that a test can rotate a fingerprint between two runs
# of the suite. 1) the suite records baselines and then passes; 2) OpenAI's
# fingerprint is rotated: its cases are drift naming both fingerprints, BFL
# still passes; 3) BFL's picture changes under the same fingerprint (the
# picture_salt knob): a regression, with a heatmap in the HTML report, which
# headless Chromium renders. Around it: the suite's errors (exit 2 with
# FILE:LINE:COL), JUnit, --json, the cost cap, --update-baselines, and the
# same suite against a served gateway over HTTP.
set -u
bin=${IG_BIN:?}
tmp=$(mktemp -d); pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait; rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

# Started in this shell, not in a $(...) subshell, so that the trap above
# knows their pids and stops them.
start() {  # start NAME CMD...
  local n=$1; shift
  "$bin" "$@" >"$tmp/$n.out" 2>&1 & pids+=($!)
}
addr() {  # addr NAME -> prints the address it listens on
  for _ in $(seq 200); do
    a=$(sed -n 's|.*listening on http://\([^ ]*\).*|\1|p' "$tmp/$1.out" | head -n1)
    [ -n "$a" ] && { echo "$a"; return 0; }; sleep 0.1
  done; cat "$tmp/$1.out" >&2; return 1
}
start openai emulate openai --listen 127.0.0.1:0 --no-auth; oa=$(addr openai) || exit 1
start bfl emulate bfl --listen 127.0.0.1:0 --no-auth --knobs '{"pending_polls":0}'
fl=$(addr bfl) || exit 1

cd "$tmp"
cat >config.yaml <<YAML
backends:
  - name: openai
    adapter: openai
    endpoint: http://$oa/v1
    model: gpt-image-1
    contract:
      classes: [generate]
      sizes: [1024x1024]
      grammar: natural-language
      tier: fingerprint
      license: {id: proprietary, flags: [commercial]}
      price: {model: per-image, usd: 0.011}
  - name: flux
    adapter: bfl
    endpoint: http://$fl
    model: flux-pro-1.1
    contract:
      classes: [generate]
      min_side: 256
      max_side: 1440
      size_multiple: 32
      supports: [seed]
      grammar: natural-language
      tier: perceptual
      license: {id: proprietary, flags: [commercial]}
      price: {model: per-credit, usd: 0.01, credits_per_image: 4}
YAML
mkdir -p specs
cat >specs/lighthouse.yaml <<'YAML'
subject: a lighthouse on a cliff at dusk
style: flat poster
size: 256x256
YAML
cat >suite.yaml <<'YAML'
version: 1
gateway: {config: config.yaml}
baselines: baselines
on_drift: warn
cases:
  - name: lighthouse
    spec: specs/lighthouse.yaml
    output_format: png
    backends: [openai, flux]
    seeds: [1, 2]
    assert: {cost: 0.5}
  - name: kite
    prompt: a red kite in a blue sky
    size: 256x256
    output_format: png
    backends: [flux]
    seeds: 1
    assert: {size: 256x256, format: png, alpha: false}
YAML
t() { "$bin" test "$@" >"$tmp/last.out" 2>&1; echo $?; }
has() { grep -q -- "$1" "$tmp/last.out"; }

# ---- a broken suite is exit 2 with FILE:LINE:COL --------------------------------
sed 's/^on_drift: warn/on_drift: warn\nretries: 3/' suite.yaml >bad.yaml
[ "$(t bad.yaml)" = 2 ] && has "bad.yaml:5:1: unknown key 'retries'" && ok || bad "unknown key: $(cat last.out)"
[ "$(t suite.yaml)" = 2 ] && has "suite.yaml:3:12: baseline folder baselines does not exist" && ok \
  || bad "missing baselines: $(cat last.out)"
mkdir baselines
sed 's/backends: \[flux\]/backends: [flux, dalle]/' suite.yaml >bad.yaml
[ "$(t bad.yaml)" = 2 ] && has "bad.yaml:16:22: case 'kite': backend 'dalle' is not in" && ok \
  || bad "unknown backend: $(cat last.out)"
sed 's|config: config.yaml|url: http://127.0.0.1:9|' suite.yaml >bad.yaml
[ "$(t bad.yaml)" = 2 ] && has "bad.yaml:2:10: gateway http://127.0.0.1:9 is unreachable" && ok \
  || bad "unreachable gateway: $(cat last.out)"
[ "$(t suite.yaml --jobs 0)" = 2 ] && ok || bad "--jobs 0 accepted"

# ---- 1) no baselines yet: recorded, then the suite passes ------------------------
[ "$(t suite.yaml)" = 1 ] && has "NO-BASELINE lighthouse on openai" && has "0 passed, 3 failed" && ok \
  || bad "without baselines: $(cat last.out)"
[ "$(t suite.yaml --update-baselines)" = 0 ] && has "2 seed(s) recorded at fingerprint fp_1" && ok \
  || bad "record: $(cat last.out)"
[ -f baselines/lighthouse/flux-s2.png ] && [ -f baselines/lighthouse/flux-s2.json ] && ok || bad "baseline files"
python3 - baselines/lighthouse/openai-s1.json <<'PY' && ok || bad "sidecar provenance"
import json, sys, hashlib, os
d = json.load(open(sys.argv[1]))
img = open(os.path.join(os.path.dirname(sys.argv[1]), d["file"]), "rb").read()
assert d["sha256"] == hashlib.sha256(img).hexdigest()
p = d["provenance"]
assert p["backend"] == "openai" and p["vendor"]["fingerprint"] == "fp_1" and "lighthouse" in p["prompt"]
assert d["fingerprint"] == "fp_1" and d["build"] == "gpt-image-1" and d["seed"] == 1
PY
[ "$(t suite.yaml --junit junit.xml --json)" = 0 ] && ok || bad "pass run: $(cat last.out)"
has "3 passed, 0 failed, 0 drifted" && ok || bad "pass summary: $(cat last.out)"
python3 - junit.xml <<'PY' && ok || bad "junit"
import sys, xml.etree.ElementTree as E
s = E.parse(sys.argv[1]).getroot().find("testsuite")
assert s.get("tests") == "3" and s.get("failures") == "0", s.attrib
assert [c.get("classname") + "/" + c.get("name") for c in s] == ["lighthouse/openai", "lighthouse/flux", "kite/flux"]
PY

# ---- 2) OpenAI rotates its fingerprint: drift for OpenAI, pass for BFL ------------
curl -s -X POST "http://$oa/_emulator/rotate" | grep -q fp_2 && ok || bad "rotate"
[ "$(t suite.yaml --json)" = 0 ] && ok || bad "drift under warn must not fail: $(cat last.out)"
grep -q '^DRIFT .*lighthouse on openai: fingerprint fp_1 -> fp_2' last.out && ok || bad "drift line: $(cat last.out)"
grep -q '^PASS .*lighthouse on flux' last.out && grep -q '^PASS .*kite on flux' last.out && ok || bad "bfl after rotate: $(cat last.out)"
has "2 passed, 0 failed, 1 drifted" && ok || bad "drift summary"
"$bin" test suite.yaml --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
r = [x for x in d["results"] if x["backend"] == "openai"][0]
assert r["status"] == "drift" and r["fingerprint"] == {"old": "fp_1", "new": "fp_2"}, r
assert d["drifted"] == 1 and d["failed"] == 0' && ok || bad "drift json"
sed 's/^on_drift: warn/on_drift: fail/' suite.yaml >strict.yaml
[ "$(t strict.yaml)" = 1 ] && has "on_drift: fail" && ok || bad "on_drift fail: $(cat last.out)"
# on_drift: rebaseline rewrites the drifted baselines (a copy here) and says so; then they pass.
cp -r baselines rebase
sed 's/^on_drift: warn/on_drift: rebaseline/; s/^baselines: baselines/baselines: rebase/' suite.yaml >rebase.yaml
[ "$(t rebase.yaml)" = 0 ] && grep -A1 '^UPDATED .*lighthouse on openai' last.out | grep -q 'rebaselined after drift: 2 seed(s) rewritten' \
  && ok || bad "rebaseline: $(cat last.out)"
[ "$(t rebase.yaml)" = 0 ] && has "3 passed, 0 failed, 0 drifted" && ok || bad "after rebaseline: $(cat last.out)"

# ---- 3) BFL's picture changes under the same fingerprint: a regression -----------
curl -s -X POST -d '{"picture_salt":1000}' "http://$fl/_emulator/knobs" >/dev/null
[ "$(t suite.yaml --report-dir report --junit junit.xml)" = 1 ] && ok || bad "regression exit: $(cat last.out)"
grep -q '^REGRESSION .*lighthouse on flux: seed 1: ssimulacra2 .*want >= 80 (fingerprint fp_1 unchanged)' last.out \
  && ok || bad "regression line: $(cat last.out)"
grep -q '^DRIFT .*lighthouse on openai' last.out && ok || bad "openai still drift"
has "0 passed, 2 failed, 1 drifted" && ok || bad "regression summary: $(cat last.out)"
grep -q '<failure type="regression"' junit.xml && ok || bad "junit failure"
python3 - report/index.html <<'PY' && ok || bad "html report content"
import re, sys
h = open(sys.argv[1]).read()
assert "0 passed, 2 failed, 1 drifted" in h
sec = [s for s in h.split("<section>") if "lighthouse</span>" in s or "lighthouse on flux" in s or ">lighthouse on flux" in s]
flux = [s for s in h.split("<section>") if "regression</span>lighthouse on flux" in s][0]
assert len(re.findall(r'alt="difference \(heatmap\)" src="data:image/png;base64,', flux)) == 2
assert len(re.findall(r'alt="baseline" src="data:image/png;base64,', flux)) == 2
assert "ssimulacra2" in flux and "fp_1" in flux and "http://" not in flux.split("<pre>")[0]
PY
# The report renders in a browser: a screenshot of the right size, not one colour.
if command -v chromium >/dev/null; then
  timeout 120 chromium --headless --no-sandbox --disable-gpu --window-size=1000,1400 \
    --screenshot="$tmp/shot.png" "file://$tmp/report/index.html" >/dev/null 2>&1
  python3 - "$tmp/shot.png" <<'PY' && ok || bad "screenshot"
import struct, sys, zlib
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n"
w, h, depth, ctype = struct.unpack(">IIBB", b[16:26])
assert (w, h) == (1000, 1400), (w, h)
pos, idat = 8, b""
while pos < len(b):
    n, kind = struct.unpack(">I4s", b[pos:pos + 8])
    if kind == b"IDAT":
        idat += b[pos + 8:pos + 8 + n]
    pos += 12 + n
raw = zlib.decompress(idat)
assert len(set(raw[1:len(raw):97])) > 20, "the screenshot is nearly one colour"
PY
else
  bad "chromium is not installed (scripts/packages.txt)"
fi

# ---- --update-baselines says what changed; then everything passes again ---------
[ "$(t suite.yaml --update-baselines)" = 0 ] && ok || bad "update: $(cat last.out)"
grep -A1 'lighthouse on flux' last.out | grep -q 'rewritten.*was regression' && ok || bad "update note flux: $(cat last.out)"
grep -A1 'lighthouse on openai' last.out | grep -q 'rewritten.*fingerprint fp_1 -> fp_2' && ok || bad "update note openai: $(cat last.out)"
[ "$(t suite.yaml)" = 0 ] && has "3 passed, 0 failed, 0 drifted" && ok || bad "after update: $(cat last.out)"

# ---- a corrupt baseline is exit 2 naming the file ---------------------------------
cp baselines/kite/flux-s1.png kite.bak
printf 'not a png' >baselines/kite/flux-s1.png
[ "$(t suite.yaml)" = 2 ] && has "suite.yaml:12:5: case 'kite': baseline image .*kite/flux-s1.png does not match its sidecar" \
  && ok || bad "corrupt baseline: $(cat last.out)"
cp kite.bak baselines/kite/flux-s1.png

# ---- the cost cap: runs past it are not started ------------------------------------
[ "$(t suite.yaml --max-cost 0.01 --jobs 1)" = 1 ] && has "^SKIPPED .*cost cap" && ok || bad "cost cap: $(cat last.out)"

# ---- the same suite against a served gateway, over HTTP --------------------------
start serve serve --config config.yaml --listen 127.0.0.1:0; gw=$(addr serve) || exit 1
sed "s|config: config.yaml|url: http://$gw|" suite.yaml >remote.yaml
[ "$(t remote.yaml --jobs 2)" = 0 ] && has "3 passed, 0 failed, 0 drifted" && ok || bad "over HTTP: $(cat last.out)"

# ---- text and gate assertions, read from the gateway's validation gate ----------
# A poster upscaled by the built-in Lanczos backend must still read "ACME"
# (the gate's OCR); "ZEBRA" is not on it, so that case fails with its score.
mkdir -p text/baselines && cd text
vips text words.v "ACME SUMMER SALE" --dpi 200
vips invert words.v ink.v && vips embed ink.v poster.png 30 30 700 160 --extend white
cat >config.yaml <<YAML
backends:
  - name: lanczos
    adapter: local-lanczos
    contract: {classes: [upscale], scales: [2], grammar: none, tier: bytes,
               license: {id: LGPL-2.1-or-later, flags: [commercial]}, price: {model: free}}
YAML
cat >suite.yaml <<YAML
version: 1
gateway: {config: config.yaml}
baselines: baselines
cases:
  - {name: reads, class: upscale, input: poster.png, scale: 2, backends: [lanczos], seeds: 1,
     assert: {text: "ACME", gate: true}}
  - {name: misreads, class: upscale, input: poster.png, scale: 2, backends: [lanczos], seeds: 1,
     assert: {text: "ZEBRA"}}
YAML
t suite.yaml --update-baselines >/dev/null
[ "$(t suite.yaml)" = 1 ] && has "1 passed, 1 failed" && ok || bad "text: $(cat "$tmp/last.out")"
grep -E "^PASS +reads" "$tmp/last.out" >/dev/null && ok || bad "text reads: $(cat "$tmp/last.out")"
grep -E "^FAIL.*misreads" "$tmp/last.out" >/dev/null && ok || bad "text misreads: $(cat "$tmp/last.out")"
cd "$tmp"

echo "test_runner: $pass passed, $fail failed"
[ "$fail" = 0 ]

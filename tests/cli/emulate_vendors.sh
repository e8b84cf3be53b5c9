#!/usr/bin/env bash
# emulate_vendors.sh -- `imagegate emulate VENDOR` as a user's CI runs it:
# each vendor starts, answers its own protocol over curl (BFL: submit, poll,
# download; Stability: multipart with the seed header; Gemini: inlineData;
# remove.bg: an RGBA PNG), obeys --faults and --knobs, and bad invocations
# exit 2.
set -u
bin=${IG_BIN:?}
tmp=$(mktemp -d); pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait; rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

# Started in this shell, not in a $(...) subshell, so that the trap above
# knows their pids and stops them.
start() {  # start VENDOR [args...]
  local v=$1; shift
  "$bin" emulate "$v" --listen 127.0.0.1:0 "$@" >"$tmp/$v.out" 2>&1 & pids+=($!)
}
addr() {  # addr VENDOR -> prints the address it listens on
  for _ in $(seq 100); do
    a=$(sed -n 's|.*listening on http://\([^ ]*\).*|\1|p' "$tmp/$1.out" | head -n1)
    [ -n "$a" ] && { echo "$a"; return 0; }; sleep 0.1
  done; cat "$tmp/$1.out" >&2; return 1
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$1"; }

# BFL: the whole async path by hand, with a knob making it Ready at the first poll.
start bfl --knobs '{"pending_polls":0}'; bfl=$(addr bfl) || exit 1
sub=$(curl -s -H 'x-key: k' -H 'Content-Type: application/json' \
  -d '{"prompt":"a kite","width":512,"height":512,"seed":5,"output_format":"png"}' "http://$bfl/v1/flux-pro-1.1")
poll=$(echo "$sub" | json '["polling_url"]')
res=$(curl -s -H 'x-key: k' "$poll")
[ "$(echo "$res" | json '["status"]')" = Ready ] && ok || bad "bfl status: $res"
curl -s -o "$tmp/bfl.png" "$(echo "$res" | json '["result"]["sample"]')"
[ "$(head -c 4 "$tmp/bfl.png" | od -An -c | tr -d ' ')" = '211PNG' ] && ok || bad "bfl sample is not a PNG"
# a 422 for a width that is not a multiple of 32
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'x-key: k' -H 'Content-Type: application/json' \
  -d '{"prompt":"x","width":500}' "http://$bfl/v1/flux-pro-1.1")
[ "$code" = 422 ] && ok || bad "bfl width 500 gave $code"
# no key: 403
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '{}' "http://$bfl/v1/flux-pro-1.1")
[ "$code" = 403 ] && ok || bad "bfl without key gave $code"

# Stability: multipart in, raw bytes and a seed header out; --faults queues a 429.
start stability --faults '[{"kind":"rate_limit","retry_after":7}]'; st=$(addr stability) || exit 1
hdr=$(curl -s -D - -o /dev/null -H 'authorization: Bearer sk' -F prompt=x "http://$st/v2beta/stable-image/generate/core")
echo "$hdr" | grep -qi '^retry-after: 7' && echo "$hdr" | grep -q ' 429' && ok || bad "stability fault: $hdr"
hdr=$(curl -s -D - -o "$tmp/st.png" -H 'authorization: Bearer sk' -H 'accept: image/*' -F prompt=x -F seed=77 \
  "http://$st/v2beta/stable-image/generate/core")
echo "$hdr" | grep -qi '^seed: 77' && echo "$hdr" | grep -qi '^finish-reason: SUCCESS' && ok || bad "stability headers: $hdr"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'authorization: Bearer sk' -H 'Content-Type: application/json' \
  -d '{"prompt":"x"}' "http://$st/v2beta/stable-image/generate/core")
[ "$code" = 400 ] && ok || bad "stability JSON body gave $code"

# Gemini: inlineData out.
start gemini; gm=$(addr gemini) || exit 1
out=$(curl -s -H 'x-goog-api-key: k' -H 'Content-Type: application/json' \
  -d '{"contents":[{"parts":[{"text":"a fox"}]}],"generationConfig":{"responseModalities":["IMAGE"],"imageConfig":{"aspectRatio":"16:9"}}}' \
  "http://$gm/v1beta/models/gemini-2.5-flash-image:generateContent")
[ "$(echo "$out" | json '["candidates"][0]["content"]["parts"][-1]["inlineData"]["mimeType"]')" = image/png ] && ok || bad "gemini: $(echo "$out" | head -c 300)"

# remove.bg: a PNG with alpha.
start removebg; rb=$(addr removebg) || exit 1
curl -s -o "$tmp/rb.png" -H 'X-Api-Key: k' -F image_file=@"$tmp/st.png" -F size=full "http://$rb/v1.0/removebg"
# colour type 6 (RGBA) is byte 26 of a PNG
[ "$(od -An -tu1 -j25 -N1 "$tmp/rb.png" | tr -d ' ')" = 6 ] && ok || bad "removebg did not return RGBA"

# Replicate: 201 and, with Prefer: wait, the finished prediction at once.
start replicate; rp=$(addr replicate) || exit 1
out=$(curl -s -w ' %{http_code}' -H 'Authorization: Bearer r8' -H 'Prefer: wait' -H 'Content-Type: application/json' \
  -d '{"input":{"prompt":"a boat"}}' "http://$rp/v1/models/black-forest-labs/flux-1.1-pro/predictions")
case "$out" in *'"status":"succeeded"'*' 201') ok ;; *) bad "replicate: $(echo "$out" | head -c 300)" ;; esac

# Bad invocations exit 2.
"$bin" emulate nosuchvendor --listen 127.0.0.1:0 >/dev/null 2>&1; [ $? = 2 ] && ok || bad "unknown vendor"
"$bin" emulate bfl --listen nonsense >/dev/null 2>&1; [ $? = 2 ] && ok || bad "bad listen"
"$bin" emulate bfl --listen 127.0.0.1:0 --knobs '[1]' >/dev/null 2>&1; [ $? = 2 ] && ok || bad "bad knobs"

echo "emulate_vendors: $pass passed, $fail failed"
[ "$fail" = 0 ]

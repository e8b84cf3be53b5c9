#!/usr/bin/env bash
# openai_sdk.sh -- the official openai npm client (installed by scripts/setup
# into .deps/node) against the OpenAI emulator directly, then through the
# gateway with only base_url changed. It proves both speak the protocol as a
# real SDK reads it.
set -u
bin=${IG_BIN:?}; src=${IG_SOURCE_DIR:?}; deps=${IG_DEPS:?}
[ -d "$deps/node/node_modules/openai" ] || { echo "openai_sdk: the openai npm client is missing (run scripts/setup)"; exit 1; }
tmp=$(mktemp -d); pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait; rm -rf "$tmp"' EXIT
# ES modules resolve packages from the script's folder upwards.
ln -s "$deps/node/node_modules" "$tmp/node_modules"
cp "$src/tests/js/openai_sdk.mjs" "$tmp/openai_sdk.mjs"

wait_line() {  # wait_line FILE PATTERN -> prints the captured address
  for _ in $(seq 100); do
    a=$(sed -n "s|$2|\1|p" "$1" | head -n1); [ -n "$a" ] && { echo "$a"; return 0; }; sleep 0.1
  done; return 1
}

"$bin" emulate openai --listen 127.0.0.1:0 >"$tmp/emu.out" 2>&1 & pids+=($!)
emu=$(wait_line "$tmp/emu.out" '.*listening on http://\([^ ]*\).*') || { cat "$tmp/emu.out"; exit 1; }
node "$tmp/openai_sdk.mjs" "http://$emu/v1" || exit 1

export OPENAI_API_KEY=sk-test
cat >"$tmp/gw.yaml" <<YAML
server: {listen: 127.0.0.1:0, data_dir: $tmp/data, log_level: warn}
backends:
  - name: openai
    adapter: openai
    endpoint: http://$emu/v1
    credential: env:OPENAI_API_KEY
    model: gpt-image-1
    contract:
      classes: [generate, edit]
      sizes: [1024x1024, 1536x1024, 1024x1536]
      supports: [mask, n]
      grammar: natural-language
      tier: fingerprint
      license: {id: proprietary, flags: [commercial]}
      price: {model: per-image, usd: 0.04}
ladders:
  - {name: gen, class: generate, rungs: [{backend: openai}]}
  - {name: edit, class: edit, rungs: [{backend: openai}]}
YAML
"$bin" serve --config "$tmp/gw.yaml" >"$tmp/gw.out" 2>"$tmp/gw.err" & pids+=($!)
gw=$(wait_line "$tmp/gw.out" '.*listening on http://\([^ ]*\) .*') || { cat "$tmp/gw.out" "$tmp/gw.err"; exit 1; }
node "$tmp/openai_sdk.mjs" "http://$gw/v1" expect-gateway || { tail -5 "$tmp/gw.err"; exit 1; }

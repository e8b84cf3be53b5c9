#!/usr/bin/env bash
# cli_basics.sh -- the imagegate command line: help, version, exit codes,
# config check with FILE:LINE:COL errors, and serve answering /healthz.
set -u
bin=${IG_BIN:?}; src=${IG_SOURCE_DIR:?}
pass=0; fail=0
tmp=$(mktemp -d); trap 'kill $srv 2>/dev/null; rm -rf "$tmp"' EXIT
srv=

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

check help 0 "$bin" --help;                has help-lists-verbs "$tmp/out" 'lora +inspect|lora +'
for v in serve emulate check prompt test lora run config; do
  has "help-$v" "$tmp/out" "^  $v "
done
check version 0 "$bin" --version;          has version "$tmp/out" '^imagegate [0-9]+\.[0-9]+\.[0-9]+$'
check no-args 2 "$bin"
# Output that cannot be written (a full disk: /dev/full) is an error, not
# a success a script would trust.
if [ -w /dev/full ]; then
  check version-full 2 bash -c '"$0" --version >/dev/full' "$bin"
  has version-full "$tmp/err" 'cannot write standard output: No space left'
  check config-show-full 2 bash -c '"$0" config show >/dev/full' "$bin"
fi
check unknown-verb 2 "$bin" frobnicate;    has unknown-verb "$tmp/err" "unknown verb 'frobnicate'"
check bad-option 2 "$bin" --frob
check ambiguous 2 "$bin" c;                has ambiguous "$tmp/err" 'ambiguous.*check.*config'
check prefix 0 "$bin" conf show;           has prefix "$tmp/out" '^backends:'
check verb-help 0 "$bin" serve --help;     has verb-help "$tmp/out" 'usage: imagegate serve'
check config-help 0 "$bin" config --help;  has config-help "$tmp/out" 'config check FILE'

# config check: a valid file, a broken one with every error located.
check config-ok 0 "$bin" config check "$src/tests/data/config/minimal.yaml"
cat >"$tmp/bad.yaml" <<'YAML'
server:
  listen: 127.0.0.1:8080
  colour: blue
backends:
  - name: a
    adapter: openai
    endpoint: http://127.0.0.1:1/v1
    contract:
      classes: [generate]
      grammar: natural-language
      license: {id: x, flags: [commercial]}
      price: {model: per-image, usd: abc}
ladders:
  - name: g
    class: generate
    rungs:
      - {backend: nope}
YAML
check config-bad 2 "$bin" config check "$tmp/bad.yaml"
has bad-unknown-key "$tmp/err" "bad.yaml:3:3: unknown key 'colour'"
has bad-type        "$tmp/err" "bad.yaml:12:38: 'usd' must be a number"
has bad-missing     "$tmp/err" "bad.yaml:9:7: missing required key 'tier'"
has bad-ladder      "$tmp/err" "bad.yaml:17:9: ladder 'g' names unknown backend 'nope'"
check config-json 2 "$bin" config check --json "$tmp/bad.yaml"
has json-shape "$tmp/out" '^\{"ok": ?false, ?"errors": ?\[\{"file"'
check config-missing 2 "$bin" config check "$tmp/none.yaml"
has config-missing "$tmp/err" 'none.yaml: No such file'
printf 'backends: [' >"$tmp/trunc.yaml"
check config-syntax 2 "$bin" config check "$tmp/trunc.yaml"
has config-syntax "$tmp/err" 'trunc.yaml:[0-9]+:[0-9]+: YAML syntax error'
# A misspelt check under validation: refused at its place, with the names it could be.
sed 's/lr_psnr: 31.5/lr_pnsr: 31.5/' "$src/tests/data/config/minimal.yaml" >"$tmp/val.yaml"
check config-bad-check 2 "$bin" config check "$tmp/val.yaml"
has config-bad-check "$tmp/err" "val.yaml:47:[0-9]+: unknown check 'lr_pnsr' in validation.upscale \(known: .*lr_psnr"
check hash-key 0 "$bin" config hash-key foo
has hash-key "$tmp/out" '^sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae$'

# serve: starts on the embedded config, says where it listens, answers /healthz.
"$bin" serve --listen 127.0.0.1:0 >"$tmp/serve.out" 2>"$tmp/serve.err" & srv=$!
addr=
for _ in $(seq 50); do
  addr=$(sed -n 's|^imagegate: listening on http://\([^ ]*\).*|\1|p' "$tmp/serve.out")
  [ -n "$addr" ] && break; sleep 0.1
done
if [ -n "$addr" ] && curl -fsS "http://$addr/healthz" | grep -q '"status": *"ok"'; then
  pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL serve-healthz"; cat "$tmp/serve.out" "$tmp/serve.err"; fi
# Every thread of serve runs under SCHED_BATCH (server.sched's default) but
# the store's background thread, which runs at normal policy (sqlite.c).
ps -L -o comm=,cls= -p $srv >"$tmp/cls"
if [ -s "$tmp/cls" ] && ! grep -v '^ig-store ' "$tmp/cls" | grep -qv ' B$' &&
   grep -q '^ig-store  *TS$' "$tmp/cls"; then
  pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL serve-sched-batch"; cat "$tmp/cls"; fi
kill -TERM $srv; wait $srv; rc=$?
if [ $rc = 0 ]; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL serve-exit: $rc"; fi
# sched: normal leaves the default policy; a misspelt value is refused at its place.
{ printf 'server: {listen: "127.0.0.1:0", sched: normal, data_dir: %s/d-normal}\n' "$tmp"
  cat "$src/tests/data/config/minimal.yaml"; } >"$tmp/normal.yaml"
"$bin" serve --config "$tmp/normal.yaml" >"$tmp/serve2.out" 2>"$tmp/serve2.err" & srv=$!
for _ in $(seq 50); do grep -q 'listening' "$tmp/serve2.out" && break; sleep 0.1; done
ps -L -o cls= -p $srv >"$tmp/cls"
if [ -s "$tmp/cls" ] && ! grep -qv 'TS' "$tmp/cls"; then
  pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL serve-sched-normal"; cat "$tmp/cls" "$tmp/serve2.err"; fi
kill -TERM $srv; wait $srv
{ printf 'server: {sched: fastest}\n'; cat "$src/tests/data/config/minimal.yaml"; } >"$tmp/sched.yaml"
check config-bad-sched 2 "$bin" config check "$tmp/sched.yaml"
has config-bad-sched "$tmp/err" "sched.yaml:1:17: 'sched' must be one of batch, normal, not 'fastest'"
check serve-bad-config 2 "$bin" serve --config "$tmp/bad.yaml"
has serve-bad-config "$tmp/err" "bad.yaml:3:3"

echo "cli_basics: $pass passed, $fail failed"
[ $fail = 0 ]

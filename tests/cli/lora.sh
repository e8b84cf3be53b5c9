#!/usr/bin/env bash
# lora.sh -- 'imagegate lora inspect' and 'lora lint' from the command line:
# text and --json output, exit codes 0/1/2, hostile files, spec errors with
# LINE:COL. The safetensors files are written here with printf, so the test
# needs nothing beyond the binary and the photos.
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

# st FILE HEADER DATA_BYTES: a safetensors file with a header padded to 8
# and DATA_BYTES zero bytes of payload.
st() {
  local hdr=$2 n pad
  n=${#hdr}; pad=$(( (8 - n % 8) % 8 )); n=$((n + pad))
  {
    printf "$(printf '\\%03o' $((n & 255)) $((n >> 8 & 255)) $((n >> 16 & 255)) 0 0 0 0 0)"
    printf '%s%*s' "$hdr" "$pad" ''
    head -c "$3" /dev/zero
  } >"$1"
}

# FLUX.1 kohya, rank 2, alpha 2 (F32 2.0 is 00 00 00 40): alpha written by hand.
down='"lora_unet_single_blocks_37_linear1.lora_down.weight":{"dtype":"F16","shape":[2,3072],"data_offsets":[0,12288]}'
up='"lora_unet_single_blocks_37_linear1.lora_up.weight":{"dtype":"F16","shape":[21504,2],"data_offsets":[12288,98304]}'
meta='"__metadata__":{"modelspec.architecture":"flux-1-dev/lora","ss_learning_rate":"0.0001"}'
st "$tmp/flux1.safetensors" "{$down,$up,$meta}" 98304
check inspect-ok 0 "$bin" lora inspect "$tmp/flux1.safetensors"
has inspect-arch "$tmp/out" '^architecture +FLUX\.1'
has inspect-conv "$tmp/out" '^convention +kohya'
has inspect-alpha-missing "$tmp/out" 'alpha_missing'
check inspect-json 0 "$bin" lora inspect "$tmp/flux1.safetensors" --json
has json-arch "$tmp/out" '"architecture": "FLUX.1"'
has json-scale "$tmp/out" '"scale": 1'
has json-lr "$tmp/out" '"learning_rate": "0.0001"'
has json-findings "$tmp/out" '"code": "alpha_missing"'

# Declared SDXL, tensors FLUX.1: an error finding, exit 1.
meta2='"__metadata__":{"ss_base_model_version":"sdxl_base_v1-0"}'
st "$tmp/liar.safetensors" "{$down,$up,$meta2}" 98304
check inspect-mismatch 1 "$bin" lora inspect "$tmp/liar.safetensors"
has mismatch "$tmp/out" 'declared_base_mismatch'

# Hostile files: exit 2 with a code, never a crash.
st "$tmp/overlap.safetensors" '{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}}' 12
check overlap 2 "$bin" lora inspect "$tmp/overlap.safetensors"
has overlap-code "$tmp/err" 'safetensors_bad_offset'
st "$tmp/meta.safetensors" '{"__metadata__":{"a":1}}' 0
check meta-json 2 "$bin" lora inspect --json "$tmp/meta.safetensors"
has meta-code "$tmp/out" '"code": *"safetensors_bad_metadata"'
printf '\377\377\377\377\000\000\000\000{}' >"$tmp/long.safetensors"
check header-long 2 "$bin" lora inspect "$tmp/long.safetensors"
has header-long-code "$tmp/err" 'safetensors_header_too_large'
head -c 100 "$tmp/flux1.safetensors" >"$tmp/cut.safetensors"
check truncated 2 "$bin" lora inspect "$tmp/cut.safetensors"
has truncated-code "$tmp/err" 'safetensors_bad_header_length'
check cap 2 "$bin" lora inspect "$tmp/flux1.safetensors" --max-header-bytes 64
has cap-code "$tmp/err" 'safetensors_header_too_large'
check missing 2 "$bin" lora inspect "$tmp/none.safetensors"
check usage 2 "$bin" lora frob
check usage-inspect 2 "$bin" lora inspect
check help 0 "$bin" lora --help
has help "$tmp/out" 'lora lint SPEC.yaml'

# lint: a spec with an error, a dataset from the real photos, a bad spec.
mkdir "$tmp/ds"
for p in flower.png astronaut.png coffee.png rocket.jpg chelsea.png; do
  cp "$deps/photos/$p" "$tmp/ds/"
  echo "zq7rvlx, a photograph of the subject outdoors, in soft morning light." >"$tmp/ds/${p%.*}.txt"
done
cat >"$tmp/spec.yaml" <<'YAML'
base_model: black-forest-labs/FLUX.2-dev
trainer: kohya
rank: 16
alpha: 16
learning_rate: 1e-4
trigger: zq7rvlx
YAML
check lint-kohya-flux2 1 "$bin" lora lint "$tmp/spec.yaml" --dataset "$tmp/ds"
has lint-unsupported "$tmp/out" 'error +trainer_unsupported'
has lint-small "$tmp/out" 'dataset_small'
sed -i 's/trainer: kohya/trainer: ai-toolkit/' "$tmp/spec.yaml"
check lint-ok 0 "$bin" lora lint "$tmp/spec.yaml" --dataset "$tmp/ds" --json
has lint-json "$tmp/out" '"code": "image_low_resolution"'
printf 'base_model: sdxl\ntrainer: kohya\nrnak: 16\n' >"$tmp/bad.yaml"
check lint-bad-spec 2 "$bin" lora lint "$tmp/bad.yaml"
has lint-linecol "$tmp/err" 'bad.yaml:3:1: unknown key .rnak.'

echo "lora: $pass passed, $fail failed"
[ "$fail" = 0 ]

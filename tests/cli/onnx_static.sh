#!/usr/bin/env bash
# onnx_static.sh -- scripts/onnx-static.py, the set-up's ISNet rewrite, on
# small graphs made here with python3-onnx: it keeps only the output named
# "output" and drops the nodes that fed only the others; a graph without
# that output, and a truncated file, are refused by name.
set -u
src=${IG_SOURCE_DIR:?}
py=/usr/bin/python3
pass=0; fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL $*"; }

# in -> Relu -> output; in -> Sigmoid -> side (a second graph output);
# out_name renames the first output.
"$py" - "$tmp" <<'PY' || exit 1
import sys
import onnx
from onnx import TensorProto, helper

def model(path, out_name):
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 4, 4])
    g = helper.make_graph(
        [helper.make_node("Relu", ["input"], [out_name], name="relu"),
         helper.make_node("Sigmoid", ["input"], ["side"], name="side_head")],
        "g", [vi("input")], [vi(out_name), vi("side")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)

model(sys.argv[1] + "/two.onnx", "output")
model(sys.argv[1] + "/renamed.onnx", "matte")
PY

if "$py" "$src/scripts/onnx-static.py" "$tmp/two.onnx" "$tmp/one.onnx" >"$tmp/out" 2>&1; then
  got=$("$py" -c '
import sys, onnx
m = onnx.load(sys.argv[1])
print(",".join(o.name for o in m.graph.output), ",".join(n.name for n in m.graph.node))' "$tmp/one.onnx")
  [ "$got" = "output relu" ] && ok || bad "kept outputs and nodes: '$got', wanted 'output relu'"
  grep -q "1 nodes feeding the one output" "$tmp/out" && ok || bad "summary line: $(cat "$tmp/out")"
else
  bad "rewrite of a two-output graph failed: $(cat "$tmp/out")"
fi

if "$py" "$src/scripts/onnx-static.py" "$tmp/renamed.onnx" "$tmp/x.onnx" >"$tmp/out" 2>&1; then
  bad "a graph without an output named output was accepted"
else
  grep -q "the graph has no output named output" "$tmp/out" && ok || bad "message: $(cat "$tmp/out")"
fi
[ -e "$tmp/x.onnx" ] && bad "a refused graph left $tmp/x.onnx" || ok

head -c 40 "$tmp/two.onnx" >"$tmp/cut.onnx"
if "$py" "$src/scripts/onnx-static.py" "$tmp/cut.onnx" "$tmp/y.onnx" >"$tmp/out" 2>&1; then
  bad "a truncated model was accepted"
else
  grep -q "cannot read" "$tmp/out" && ok || bad "message: $(cat "$tmp/out")"
fi

echo "onnx_static: $pass passed, $fail failed"
[ "$fail" = 0 ]

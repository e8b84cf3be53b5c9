#!/usr/bin/env bash
# onnx_static.sh -- scripts/onnx-static.py, the set-up's ISNet rewrite, on
# small graphs made here with python3-onnx: it keeps only the output named
# "output" and drops the nodes that fed only the others, and declares the
# input's and the output's height and width symbolic with no intermediate
# shapes left (so ORT's planner cannot chain buffers by size); a graph
# without that output, one that is not NCHW, and a truncated file, are
# refused by name.
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

def model(path, out_name, shape=(1, 3, 4, 4)):
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shape))
    g = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["mid"], name="relu"),
         helper.make_node("Relu", ["mid"], [out_name], name="relu2"),
         helper.make_node("Sigmoid", ["input"], ["side"], name="side_head")],
        "g", [vi("input")], [vi(out_name), vi("side")], value_info=[vi("mid")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)

model(sys.argv[1] + "/two.onnx", "output")
model(sys.argv[1] + "/renamed.onnx", "matte")
model(sys.argv[1] + "/flat.onnx", "output", (1, 48))
PY

if "$py" "$src/scripts/onnx-static.py" "$tmp/two.onnx" "$tmp/one.onnx" >"$tmp/out" 2>&1; then
  got=$("$py" -c '
import sys, onnx
m = onnx.load(sys.argv[1])
print(",".join(o.name for o in m.graph.output), ",".join(n.name for n in m.graph.node))' "$tmp/one.onnx")
  [ "$got" = "output relu,relu2" ] && ok || bad "kept outputs and nodes: '$got', wanted 'output relu,relu2'"
  grep -q "2 nodes feeding the one output, height and width symbolic" "$tmp/out" && ok \
    || bad "summary line: $(cat "$tmp/out")"
  got=$("$py" -c '
import sys, onnx
m = onnx.load(sys.argv[1])
dims = lambda v: ",".join(d.dim_param or str(d.dim_value) for d in v.type.tensor_type.shape.dim)
print(dims(m.graph.input[0]), dims(m.graph.output[0]), len(m.graph.value_info))' "$tmp/one.onnx")
  [ "$got" = "1,3,height,width 1,3,height,width 0" ] && ok \
    || bad "input, output shapes and value_info count: '$got'"
else
  bad "rewrite of a two-output graph failed: $(cat "$tmp/out")"
fi

if "$py" "$src/scripts/onnx-static.py" "$tmp/renamed.onnx" "$tmp/x.onnx" >"$tmp/out" 2>&1; then
  bad "a graph without an output named output was accepted"
else
  grep -q "the graph has no output named output" "$tmp/out" && ok || bad "message: $(cat "$tmp/out")"
fi
[ -e "$tmp/x.onnx" ] && bad "a refused graph left $tmp/x.onnx" || ok

if "$py" "$src/scripts/onnx-static.py" "$tmp/flat.onnx" "$tmp/z.onnx" >"$tmp/out" 2>&1; then
  bad "a graph whose input is not NCHW was accepted"
else
  grep -q "input has 2 dimensions, not NCHW" "$tmp/out" && ok || bad "message: $(cat "$tmp/out")"
fi

head -c 40 "$tmp/two.onnx" >"$tmp/cut.onnx"
if "$py" "$src/scripts/onnx-static.py" "$tmp/cut.onnx" "$tmp/y.onnx" >"$tmp/out" 2>&1; then
  bad "a truncated model was accepted"
else
  grep -q "cannot read" "$tmp/out" && ok || bad "message: $(cat "$tmp/out")"
fi

echo "onnx_static: $pass passed, $fail failed"
[ "$fail" = 0 ]

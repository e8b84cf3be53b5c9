#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""onnx-static.py -- rewrites an ISNet ONNX file for ONNX Runtime's CPU layout pass.

Usage: onnx-static.py SHIPPED.onnx OUT.onnx

@imgly/background-removal-data ships ISNet exported for a fixed 1x3x1024x1024
input, but in a form that stops ORT's NCHWc pass (graph level ALL), which
keeps convolutions in the blocked layout its fast kernels use:

  * fp16 weights with a Cast around every op. ORT's CPU kernels compute in
    fp32 anyway (it inserts the casts back); the model's own casts round every
    activation to fp16 between layers and cut the graph into pieces the NCHWc
    pass must reorder in and out of, keeping both copies alive.
  * every Resize takes its output size from Shape -> Slice -> Concat at run
    time; the NCHWc pass converts only a Resize with constant scales.

Both rewrites are exact in what they compute apart from that fp16 rounding:
weights and constants go to fp32 (an fp16 value is an fp32 value), casts to
fp16 become casts to fp32 (which ORT then drops), and each Resize gets the
integer scales its static shapes imply. On astronaut.png (bench/cutout.c,
2 threads) inference went from 1.31 s / 0.96 GB peak RSS (shipped model,
level EXTENDED) to 0.98 s / 1.01 GB (this model, level ALL); the shipped model
at level ALL needs 1.43 GB. The alphas differ by at most one level of 255.

Only the graph output "output" (the full-resolution matte) is kept, and the
nodes that fed only the others are dropped. The alpha is bit-identical; peak
RSS on astronaut.png went from 0.95 to 0.76 GB (bench/cutout, 4 jobs), and
steady inference from 1.69 to 1.35 s, on one run each.

Last, the input's and the output's height and width are declared symbolic
("height", "width") and the intermediate shapes dropped, after the Resize
scales above were worked out from the static ones. ORT's allocation planner
gives a dead buffer to the next value of exactly the same static size, and a
buffer so reused stays allocated from its first value to its last, idle in
between: with static shapes ORT held 439 MB of activations at once where the
graph never has more than 268 MB alive. Without static sizes nothing is
matched: every value is allocated when it is made and freed after its last
consumer (isnet.c then serves those allocations from a replayed plan). The
backend still feeds 1024x1024 and the alpha is byte-identical; peak RSS on
astronaut.png went from 0.74 to 0.58 GB (with isnet.c's allocator).

Nodes are topologically sorted first: the shipped graph lists the input cast
after its consumers, which ONNX's shape inference does not accept.
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper, shape_inference

F16, F32 = TensorProto.FLOAT16, TensorProto.FLOAT


def die(msg):
    sys.exit(f"onnx-static.py: {msg}")


def topo_sort(g):
    have = {i.name for i in g.input} | {i.name for i in g.initializer} | {""}
    done, left = [], list(g.node)
    while left:
        rest = []
        for n in left:
            if all(i in have for i in n.input):
                done.append(n)
                have.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(left):
            die(f"the graph has a cycle or an undefined input at {rest[0].name}")
        left = rest
    del g.node[:]
    g.node.extend(done)


def to_fp32(g):
    for i, t in enumerate(g.initializer):
        if t.data_type == F16:
            g.initializer[i].CopyFrom(
                numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), t.name))
    for n in g.node:
        for a in n.attribute:
            if n.op_type == "Cast" and a.name == "to" and a.i == F16:
                a.i = F32
            if n.op_type == "Constant" and a.t.data_type == F16:
                a.t.CopyFrom(numpy_helper.from_array(
                    numpy_helper.to_array(a.t).astype(np.float32), a.t.name))
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        if vi.type.tensor_type.elem_type == F16:
            vi.type.tensor_type.elem_type = F32


def constant_scales(m):
    g = m.graph
    inferred = shape_inference.infer_shapes(m, data_prop=True)
    shape = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
             for v in list(inferred.graph.value_info) + list(inferred.graph.input)}
    made_by = {o: n for n in g.node for o in n.output}
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}

    def value(name):
        """Evaluates the small shape computations that feed a Resize."""
        if name in inits:
            return inits[name]
        n = made_by.get(name)
        if n is None:
            die(f"{name} is neither an initializer nor a node output")
        if n.op_type == "Constant":
            return numpy_helper.to_array(n.attribute[0].t)
        if n.op_type == "Shape":
            s = shape.get(n.input[0])
            if not s or 0 in s:
                die(f"the shape of {n.input[0]} is not static")
            return np.array(s, dtype=np.int64)
        if n.op_type == "Slice":
            axes = value(n.input[3]) if len(n.input) > 3 and n.input[3] else [0]
            step = value(n.input[4]) if len(n.input) > 4 and n.input[4] else [1]
            if list(axes) != [0]:
                die(f"{n.name} slices a shape on axes {list(axes)}")
            return value(n.input[0])[int(value(n.input[1])[0]):int(value(n.input[2])[0]):int(step[0])]
        if n.op_type == "Concat":
            return np.concatenate([value(i) for i in n.input])
        if n.op_type == "Cast":
            return value(n.input[0])
        die(f"cannot evaluate {n.op_type} {n.name} feeding a Resize")

    count = 0
    for n in g.node:
        if n.op_type != "Resize" or len(n.input) != 4:
            continue
        src = shape.get(n.input[0])
        if not src or 0 in src:
            die(f"the input shape of {n.name} is not static")
        sizes = [int(v) for v in value(n.input[3])]
        scales = [o / i for i, o in zip(src, sizes)]
        if len(sizes) != len(src) or any(s != int(s) or s < 1 for s in scales):
            die(f"{n.name} resizes {src} to {sizes}: not by whole factors")
        name = n.name + "/scales"
        g.initializer.append(numpy_helper.from_array(np.array(scales, dtype=np.float32), name))
        data = n.input[0]
        del n.input[:]
        n.input.extend([data, "", name])
        count += 1
    return count


def only_output(g, name):
    """Keeps one graph output. The export lists twelve: the matte, the five
    coarser side mattes and six decoder feature maps (up to 64 MB each at
    1024^2), which ORT keeps alive to the end of every run."""
    keep = [o for o in g.output if o.name == name]
    if not keep:
        die(f"the graph has no output named {name}")
    del g.output[:]
    g.output.extend(keep)


def drop_dead(g):
    """Drops the nodes that feed nothing: the shape computations that fed the
    Resizes, and the side heads of the dropped outputs."""
    while True:
        used = {o.name for o in g.output} | {i for n in g.node for i in n.input}
        keep = [n for n in g.node if any(o in used for o in n.output)]
        if len(keep) == len(g.node):
            return
        del g.node[:]
        g.node.extend(keep)


def symbolic_size(g):
    """Declares dims 2 and 3 (height, width) of the input and the output
    symbolic and drops the inferred intermediate shapes, so that ORT's
    planner sees no static sizes to match buffers by."""
    for vi in list(g.input) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims) != 4:
            die(f"{vi.name} has {len(dims)} dimensions, not NCHW")
        for d, name in ((dims[2], "height"), (dims[3], "width")):
            d.Clear()
            d.dim_param = name
    del g.value_info[:]


def main():
    if len(sys.argv) != 3:
        die("usage: onnx-static.py SHIPPED.onnx OUT.onnx")
    try:
        m = onnx.load(sys.argv[1])
    except Exception as e:  # a truncated or foreign file: say so by name
        die(f"cannot read {sys.argv[1]}: {e}")
    topo_sort(m.graph)
    to_fp32(m.graph)
    n = constant_scales(m)
    only_output(m.graph, "output")
    drop_dead(m.graph)
    symbolic_size(m.graph)
    onnx.save(m, sys.argv[2])
    print(f"{sys.argv[2]}: weights in fp32, {n} Resize nodes with constant scales, "
          f"{len(m.graph.node)} nodes feeding the one output, height and width symbolic")


if __name__ == "__main__":
    main()

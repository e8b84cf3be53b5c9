#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# tfjs2onnx.py -- converts an UpscalerJS TF.js layers model to ONNX, so ONNX
# Runtime can run the very graph local-rdn runs (bench/ort_rdn.c).
#
# Built by hand with onnx.helper from model.json + the weight shards: no
# TensorFlow here, and tf2onnx is not in Debian. NHWC Keras layers map to
# NCHW ONNX nodes: Conv2D -> Conv (HWIO kernel transposed to OIHW, "same"
# pads), relu -> Relu, Concatenate -> Concat(axis 1), Add -> Sum,
# MultiplyBeta -> Mul, UpSampling2D -> Resize (nearest, asymmetric, floor:
# Keras's nearest), PixelShuffleNx -> DepthToSpace (DCR, as tf.depthToSpace).
# RRDN ("thick") graphs take and give 0..1, so the converter wraps them in
# a x/255 and a x*255: every converted model takes and gives 0..255 like
# local-rdn's engine does.
#
# Usage: /usr/bin/python3 bench/tfjs2onnx.py MODEL_DIR OUT.onnx
# (Debian's python3-onnx; a pyenv python3 lacks it.)
import json
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main(model_dir, out_path):
    mj = json.load(open(f"{model_dir}/model.json"))
    topo = mj["modelTopology"]
    cfg = (topo.get("model_config") or topo)["config"]
    weights = {}
    blob = b"".join(open(f"{model_dir}/{p}", "rb").read()
                    for g in mj["weightsManifest"] for p in g["paths"])
    off = 0
    for g in mj["weightsManifest"]:
        for w in g["weights"]:
            n = int(np.prod(w["shape"]))
            weights[w["name"]] = np.frombuffer(blob, "<f4", n, off).reshape(w["shape"])
            off += 4 * n
    if off != len(blob):
        sys.exit(f"{model_dir}: shards hold {len(blob)} bytes, manifest {off}")

    nodes, inits = [], []
    rrdn = any(l["class_name"].startswith("PixelShuffle") or l["class_name"] == "MultiplyBeta"
               for l in cfg["layers"])
    name_of = {}  # keras layer -> onnx tensor

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    for l in cfg["layers"]:
        cls, nm, c = l["class_name"], l["name"], l["config"]
        ins = [name_of[i[0]] for i in l["inbound_nodes"][0]] if l["inbound_nodes"] else []
        out = nm
        if cls == "InputLayer":
            if rrdn:
                nodes.append(helper.make_node("Mul", ["input", const("in_scale", np.float32(1 / 255))], [out]))
            else:
                out = "input"
        elif cls == "Conv2D":
            k = weights[f"{nm}/kernel"]
            kh = k.shape[0]
            b = weights.get(f"{nm}/bias", np.zeros(k.shape[3], np.float32))
            conv_out = out if c.get("activation", "linear") == "linear" else out + "_pre"
            nodes.append(helper.make_node(
                "Conv", [ins[0], const(nm + "_W", k.transpose(3, 2, 0, 1).copy()), const(nm + "_B", b)],
                [conv_out], kernel_shape=[kh, kh], pads=[kh // 2] * 4))
            if conv_out != out:
                nodes.append(helper.make_node("Relu", [conv_out], [out]))
        elif cls == "Activation":
            op = {"relu": "Relu", "linear": "Identity"}[c["activation"]]
            nodes.append(helper.make_node(op, ins, [out]))
        elif cls == "Concatenate":
            nodes.append(helper.make_node("Concat", ins, [out], axis=1))
        elif cls == "Add":
            nodes.append(helper.make_node("Sum", ins, [out]))
        elif cls == "MultiplyBeta":
            nodes.append(helper.make_node("Mul", [ins[0], const(nm + "_beta", np.float32(c.get("beta", 0.2)))], [out]))
        elif cls == "UpSampling2D":
            s = c["size"]
            nodes.append(helper.make_node(
                "Resize", [ins[0], "", const(nm + "_scales", np.array([1, 1, s[0], s[1]], np.float32))], [out],
                mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
        elif cls.startswith("PixelShuffle"):
            nodes.append(helper.make_node("DepthToSpace", ins, [out], blocksize=c.get("scale", int(cls[12:-1])), mode="DCR"))
        else:
            sys.exit(f"{model_dir}: layer {nm}: unknown layer type {cls}")
        name_of[nm] = out
    final = name_of[cfg["output_layers"][0][0]]
    if rrdn:
        nodes.append(helper.make_node("Mul", [final, const("out_scale", np.float32(255))], ["output"]))
    else:
        nodes.append(helper.make_node("Identity", [final], ["output"]))
    graph = helper.make_graph(
        nodes, "upscalerjs",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, "H", "W"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="imagegate-tfjs2onnx")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, out_path)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: tfjs2onnx.py MODEL_DIR OUT.onnx")
    main(sys.argv[1], sys.argv[2])

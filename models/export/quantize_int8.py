"""Optional int8 weights for the MatMuls of an exported graph (onnxruntime CPU, dynamic quantisation).

Every MatMul whose right operand is a constant [K, N] weight becomes the onnxruntime contrib op
com.microsoft.DynamicQuantizeMatMul: the weight is stored as int8 with one symmetric scale per
output column; activations are quantised to uint8 per tensor at run time. Convolutions, the LSTM
and the codebook search stay float32. Only the `onnx` package is needed (no onnxruntime Python).

    /usr/bin/python3 models/export/quantize_int8.py models/wt/decoder.onnx models/wt/decoder.int8.onnx

The result is a different model (not exact to the reference): its accuracy cost is printed by
bench/wavtokenizer.ts and listed in docs/models.md.
"""
from __future__ import annotations

import argparse

import numpy as np
import onnx
from onnx import helper, numpy_helper


DEFAULT_MIN_ELEMENTS = 65536  # smaller weights stay float32: little time to win, precision to lose


def quantize(model: onnx.ModelProto, min_elements: int = DEFAULT_MIN_ELEMENTS) -> int:
    inits = {i.name: i for i in model.graph.initializer}
    nodes = []
    count = 0
    for node in model.graph.node:
        w = inits.get(node.input[1]) if node.op_type == "MatMul" else None
        if w is None or len(w.dims) != 2 or int(np.prod(w.dims)) < min_elements:
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(w).astype(np.float32)
        scale = np.maximum(np.abs(weight).max(axis=0), 1e-12) / 127.0
        q = np.clip(np.round(weight / scale), -127, 127).astype(np.int8)
        base = f"{w.name}_int8_{count}"
        model.graph.initializer.extend([
            numpy_helper.from_array(q, base), numpy_helper.from_array(scale.astype(np.float32), base + "_scale"),
        ])
        nodes.append(helper.make_node("DynamicQuantizeMatMul", [node.input[0], base, base + "_scale"], list(node.output),
                                      name=(node.name or base) + "_int8", domain="com.microsoft"))
        count += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    used = {i for n in model.graph.node for i in n.input}
    kept = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return count


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source")
    p.add_argument("target")
    p.add_argument("--min-elements", type=int, default=DEFAULT_MIN_ELEMENTS, help="leave smaller weights in float32")
    args = p.parse_args()
    model = onnx.load(args.source)
    n = quantize(model, args.min_elements)
    onnx.save(model, args.target)
    print(f"{args.target}: {n} MatMul weights in int8")


if __name__ == "__main__":
    main()

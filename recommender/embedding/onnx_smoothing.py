"""Activation smoothing before int8 quantisation (SmoothQuant, Xiao et al. 2022), for ONNX models.

Dynamic int8 quantisation gives each activation matrix one scale, so a few input channels with large
values (transformers have them) leave the others a handful of levels. For every MatMul (or fused
Attention) with a constant weight, the channels of its input are divided by ``s`` and the matching weight
rows multiplied by it, which leaves the product unchanged in exact arithmetic but moves the outliers into
the weights, where int8 has one scale per output column. ``s_j = max|x_j|^alpha / max|w_j|^(1 - alpha)``
from calibration texts, never below 1: only channels that are large get shrunk, so text unlike the
calibration set cannot overflow a channel that was scaled up.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

ALPHA = 0.75


def smooth_activations(source: Path, target: Path, calibration: Iterable[dict[str, np.ndarray]]) -> None:
    """Writes ``source`` with a channel scale (a Mul) before each group of MatMuls sharing an input."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    weights = {tensor.name: tensor for tensor in graph.initializer}
    by_input: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        # A fused Attention node (ONNX Runtime's contrib op) takes its packed Q/K/V weights as input 1.
        weight = weights.get(node.input[1]) if node.op_type in ("MatMul", "Attention") else None
        if weight is not None and len(weight.dims) == 2:
            by_input.setdefault(node.input[0], []).append(node)
    if not by_input:
        onnx.save(model, str(target))
        return

    largest = _largest_activations(model, list(by_input), calibration)
    for name, nodes in by_input.items():
        matrices = [numpy_helper.to_array(weights[node.input[1]]) for node in nodes]
        weight_max = np.max([np.abs(matrix).max(axis=1) for matrix in matrices], axis=0)
        scale = np.power(np.maximum(largest[name], 1e-5), ALPHA) / np.power(
            np.maximum(weight_max, 1e-5), 1 - ALPHA
        )
        scale = np.clip(scale, 1.0, 1e2).astype(np.float32)
        inverse = numpy_helper.from_array(1.0 / scale, f"{name}/smooth_inverse")
        graph.initializer.append(inverse)
        smoothed = f"{name}/smoothed"
        first = min(list(graph.node).index(node) for node in nodes)
        graph.node.insert(
            first, helper.make_node("Mul", [name, inverse.name], [smoothed], name=f"{name}/smooth")
        )
        for node, matrix in zip(nodes, matrices, strict=True):
            weights[node.input[1]].CopyFrom(numpy_helper.from_array(matrix * scale[:, None], node.input[1]))
            node.input[0] = smoothed
    onnx.save(model, str(target))


def _largest_activations(
    model: Any, names: list[str], calibration: Iterable[dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Per channel, the largest absolute value each named tensor takes over the calibration batches."""
    import copy

    import onnx
    import onnxruntime
    from onnx import helper

    probe = copy.deepcopy(model)
    for name in names:
        probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = onnxruntime.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = [output.name for output in session.get_outputs()]
    largest: dict[str, np.ndarray] = {}
    for feeds in calibration:
        values = dict(zip(outputs, session.run(None, feeds), strict=True))
        for name in names:
            seen = np.abs(values[name]).reshape(-1, values[name].shape[-1]).max(axis=0)
            largest[name] = np.maximum(largest.get(name, seen), seen)
    return largest

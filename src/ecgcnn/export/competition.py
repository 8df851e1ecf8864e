"""One winner per competition, for full-INT8 conversion only.

Hydra exports each competition of its kernels as ``Equal(z, ReduceMax(z, axes=[a]))`` (and ``ReduceMin``): every
kernel level with the best response wins. In float a tie is exact and rare, so ONNX Runtime keeps that graph (it runs
it about twice as fast as ``ArgMax``). At int8 resolution near-equal responses become equal, and every tied kernel
then counts. Rewritten as ``Equal(ArgMax(z, axis=a), [0 .. k-1])`` the first kernel of a tie wins alone.

Neither way of counting ties wins everywhere, so the full-INT8 export converts both and keeps the file that gives
ONNX Runtime's class on more training beats (ecgcnn.export.full_int8). Measured with Hydra's block-by-block head, share
of the training beats: Adiac 85.4 % with one winner (every tie counted: 69.0 %), DistalPhalanxTW 97.2 % with
every tie counted (one winner: 43.8 %, where the first kernel of frequent ties collects them all).

The rewritten graph is the same function as the original except on exact float ties (e.g. a flat stretch of a beat,
where every mean-centred kernel responds 0: all tied kernels counted there, only the first after the rewrite).
The parity gate compares either file with the original graph in ONNX Runtime, ties included.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import optional_import

_REDUCTIONS = {"ReduceMax": "ArgMax", "ReduceMin": "ArgMin"}


def _int_attribute(node, name: str, default: int) -> int:
    return next((int(a.i) for a in node.attribute if a.name == name), default)


def _axes(node, initializers: dict) -> list[int] | None:
    axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
    if axes is None and len(node.input) > 1 and node.input[1] in initializers:  # opset 18: the axes are an input
        axes = [int(a) for a in initializers[node.input[1]].reshape(-1)]
    return axes


def _static_shapes(onnx, model) -> dict[str, list]:
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return shapes


def _single_axis(node, initializers: dict) -> int | None:
    """The one reduced axis of a ReduceMax/ReduceMin with ``keepdims=1``, or None."""
    if _int_attribute(node, "keepdims", 1) != 1:
        return None
    axes = _axes(node, initializers)
    return axes[0] if axes is not None and len(axes) == 1 else None


def single_winner_competitions(model) -> int:
    """Rewrite every ``Equal(z, ReduceMax/ReduceMin(z, one axis, keepdims))`` of ``model`` (an ``onnx.ModelProto``,
    changed in place) into ``Equal(ArgMax/ArgMin(z), range)``; returns how many were rewritten."""
    onnx = optional_import("onnx", "onnx")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    graph = model.graph
    initializers = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    shapes = _static_shapes(onnx, model)
    nodes, replaced = [], []
    for node in graph.node:
        match = None
        if node.op_type == "Equal":
            for z, reduced in (node.input, node.input[::-1]):
                reduction = producers.get(reduced)
                if reduction is not None and reduction.op_type in _REDUCTIONS and reduction.input[0] == z:
                    match = (z, reduction)
                    break
        axis = _single_axis(match[1], initializers) if match else None
        shape = shapes.get(match[0]) if match else None
        if axis is None or not shape or shape[axis if axis >= 0 else axis + len(shape)] is None:
            nodes.append(node)
            continue
        z, reduction = match
        axis = axis if axis >= 0 else axis + len(shape)
        winner, kernels = f"{node.name or node.output[0]}/winner", f"{node.name or node.output[0]}/kernels"
        nodes.append(helper.make_node(_REDUCTIONS[reduction.op_type], [z], [winner], axis=axis, keepdims=1,
                                      select_last_index=0))
        index_shape = [1] * len(shape)
        index_shape[axis] = shape[axis]
        graph.initializer.append(numpy_helper.from_array(
            np.arange(shape[axis], dtype=np.int64).reshape(index_shape), kernels))
        nodes.append(helper.make_node("Equal", [winner, kernels], list(node.output), name=node.name))
        replaced.append(reduction)
    # a reduction that fed only its competition is read by nothing now
    read = {name for n in nodes for name in n.input} | {output.name for output in graph.output}
    unread = {r.output[0] for r in replaced if not any(output in read for output in r.output)}
    del graph.node[:]
    graph.node.extend(n for n in nodes if not (n.op_type in _REDUCTIONS and n.output[0] in unread))
    return len(replaced)

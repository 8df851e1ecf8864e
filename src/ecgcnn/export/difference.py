"""The beat's first difference as a second model input, for full-INT8 conversion only.

Hydra reads the beat and its first difference. In the ONNX graph the difference is ``Sub(Slice(beats), Slice(beats))``
of the input; in a full-INT8 file it is then taken from the int8 input, whose 256 levels span the beat's range, not
the difference's. Where the beat is smooth (a slow contour, a gesture, an eye movement) the difference of neighbouring
levels is a few steps of that grid, and the branch that reads it sees mostly rounding: measured with the float model
(``scripts/diagnose_int8_input.py``, results/suite/int8_input.md) the int8 input alone kept its class on 25-79 % of the
training beats of seven refused datasets, and 78-100 % with the difference given as an int8 input of its own.

:func:`difference_input` cuts that ``Sub`` out of the graph: its output becomes a second graph input
(:data:`DIFFERENCE_INPUT`, ``(batch, 1, L - 1)``), which the runtime fills with the first difference of the
z-normalised beat (``np.diff``), quantised with its own scale. The graph is the same function of (beat, difference) as
the original of the beat alone; the exporter converts it only where the one-input file is refused, so a file that
passes keeps its one input (and stays loadable by TFLite Micro, which takes one).
"""

from __future__ import annotations

from ..core.errors import optional_import
from ..core.formats import DIFFERENCE_INPUT


def difference_input(model) -> bool:
    """Make the first difference of the input of ``model`` (an ``onnx.ModelProto``, changed in place) a second input;
    True where the graph takes one (``Sub(Slice(x), Slice(x))`` of its input ``x``), else False and unchanged."""
    onnx = optional_import("onnx", "onnx")
    graph = model.graph
    if len(graph.input) != 1:
        return False
    beats = graph.input[0]
    producers = {output: node for node in graph.node for output in node.output}

    def slice_of_input(name: str) -> bool:
        node = producers.get(name)
        return node is not None and node.op_type == "Slice" and node.input[0] == beats.name

    subs = [n for n in graph.node if n.op_type == "Sub" and len(n.input) == 2 and all(map(slice_of_input, n.input))]
    if len(subs) != 1:
        return False
    (sub,) = subs
    dims = beats.type.tensor_type.shape.dim
    length = dims[-1].dim_value if len(dims) == 3 and dims[-1].HasField("dim_value") else 0
    if length < 2:
        return False
    batch = dims[0].dim_param or (dims[0].dim_value if dims[0].HasField("dim_value") else "batch")
    graph.input.append(onnx.helper.make_tensor_value_info(DIFFERENCE_INPUT, onnx.TensorProto.FLOAT,
                                                          [batch, dims[1].dim_value, length - 1]))
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == sub.output[0]:
                node.input[i] = DIFFERENCE_INPUT
    graph.node.remove(sub)
    # the slices (and their constant bounds) that fed only the difference are read by nothing now
    while True:
        read = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
        unread = [node for node in graph.node if not any(output in read for output in node.output)]
        if not unread:
            return True
        for node in unread:
            graph.node.remove(node)

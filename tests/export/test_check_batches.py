"""The export's checks run a whole split through a model in bounded pieces (ecgcnn.core.memory.CHECK_BATCH): once,
ONNX Runtime given every training beat of FordA (3,601 beats of 500 samples) in one call grew to 24 GB and the
bake-off's export was killed by the kernel.

Expected values: a graph built here whose output carries the size of the batch it was called with, and each beat's
own sum worked out by NumPy; the peak memory of a child process, against what one call on every beat needs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ecgcnn.core.memory import CHECK_BATCH
from ecgcnn.export import parity as gate


def _batch_revealing_graph(path, length: int):
    """logits[i] = (sum of beat i, number of beats in the call), for any batch size."""
    nodes = [helper.make_node("ReduceSum", ["beats", "axes"], ["total"], keepdims=0),      # (B, 1)
             helper.make_node("Shape", ["beats"], ["shape"]),
             helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),             # (1,)
             helper.make_node("Cast", ["batch"], ["batch_float"], to=TensorProto.FLOAT),
             helper.make_node("Expand", ["batch_float", "shape_b1"], ["batches"]),       # (B, 1)
             helper.make_node("Concat", ["total", "batches"], ["logits"], axis=1)]
    shape_b1 = helper.make_node("Concat", ["batch", "one"], ["shape_b1"], axis=0)
    graph = helper.make_graph(
        nodes[:4] + [shape_b1] + nodes[4:], "batch",
        [helper.make_tensor_value_info("beats", TensorProto.FLOAT, ["batch", 1, length])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor(name, TensorProto.INT64, [1], [value]) for name, value in (("axes", 2), ("zero", 0),
                                                                                        ("one", 1))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


@pytest.mark.fast
def test_onnx_logits_calls_onnx_runtime_with_bounded_batches_in_order(tmp_path):
    path = tmp_path / "batch.onnx"
    _batch_revealing_graph(path, 12)
    beats = np.random.default_rng(0).standard_normal((2 * CHECK_BATCH + 37, 12)).astype(np.float32)
    logits = gate.onnx_logits(path, beats)
    np.testing.assert_allclose(logits[:, 0], beats.sum(axis=1), rtol=1e-5, atol=1e-4)  # every beat, in order
    assert logits[:, 1].max() <= CHECK_BATCH and logits[:, 1].min() >= 1
    assert sorted(set(logits[:, 1].astype(int))) == [37, CHECK_BATCH]  # whole batches, then the rest


_CHILD = textwrap.dedent("""
    import json, resource, sys
    import numpy as np, torch
    from ecgcnn.core.preprocess import PREPROCESSING
    from ecgcnn.export import parity
    from ecgcnn.export.onnx import export_onnx
    from ecgcnn.models import build_model
    from ecgcnn.runtimes.checkpoint import save_checkpoint
    folder, beats, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    model = build_model("hydra", num_classes=2, input_length=length)
    metadata = {"model": "hydra", "labels": [1, 2], "class_names": ["a", "b"], "input_length": length,
                "model_kwargs": {"num_classes": 2, "in_channels": 1, "dropout": 0.3, "input_length": length},
                "preprocessing": PREPROCESSING}
    checkpoint = save_checkpoint(f"{folder}/hydra_best.pth", model, metadata)
    x = np.random.default_rng(0).standard_normal((beats, length)).astype(np.float32)
    peak_mb = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    onnx_file = export_onnx(checkpoint, folder, reference_beats=x, log=lambda m: None)  # PyTorch vs ONNX Runtime
    exported_mb = peak_mb()
    logits = parity.onnx_logits(onnx_file, x)                                        # the TFLite gate's side
    print(json.dumps({"rows": len(logits), "export_mb": exported_mb, "peak_mb": peak_mb()}))
""")


@pytest.mark.slow
def test_checking_a_long_beat_hydra_on_many_beats_stays_bounded(tmp_path):
    """2,000 beats of 500 samples through Hydra (k = 8, g = 64): one call on all of them holds 1 GB per response tensor
    (2,000 x 256 channels x 500 samples x 4 bytes) and several at once. Measured here: in one call each, the process
    peaked at 3.3 GB after the ONNX export's check (PyTorch) and 7.2 GB after ``onnx_logits``; in pieces of
    ``CHECK_BATCH`` = 64, at 0.5 and 0.85 GB."""
    done = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path), "2000", "500"], capture_output=True,
                          text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rows"] == 2000
    assert result["export_mb"] < 1500 and result["peak_mb"] < 1500, result

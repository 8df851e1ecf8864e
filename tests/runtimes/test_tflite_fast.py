"""Fast tier (mutation-tested, see docs/mutation.md): ``runtimes/tflite`` on small TFLite files built here.

Each file is a known linear map (``logits = beats @ W + b``) converted by TensorFlow's own TFLite converter, in the
input layouts and batch settings the runtime must handle: dynamic batch NWC (what the exporter writes), a fixed
batch of 1 in NCW, and a fixed-batch NW graph that mixes the beats of a batch (so batching it would be wrong). The
expected logits are NumPy's ``x @ W + b``, not the runtime's output."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from ecgcnn.core.errors import MissingExtraError, ModelFileError
from ecgcnn.core.provenance import usable_cores
from ecgcnn.runtimes import load_predictor, pretrained, tflite
from ecgcnn.runtimes.flatbuffer import embed_metadata, read_tflite_metadata

pytestmark = pytest.mark.fast

LENGTH, CLASSES = 140, 5
RNG = np.random.default_rng(7)
W = RNG.standard_normal((LENGTH, CLASSES)).astype(np.float32) / 10
B = RNG.standard_normal(CLASSES).astype(np.float32)
W_DIFFERENCE = RNG.standard_normal((LENGTH - 1, CLASSES)).astype(np.float32)
MIX = 0.25  # the mixing graph adds MIX times the batch's summed logits to every beat's
EXTRA_METADATA = {"nwc_dynamic": {"quantize": "none"}}


def _graphs(tf) -> dict:
    """name -> (function, input shape) of each small model."""

    def linear(x):
        return tf.matmul(tf.reshape(x, [-1, LENGTH]), W) + B

    return {
        "nwc_dynamic": (linear, [None, LENGTH, 1]),
        "ncw_fixed": (linear, [1, 1, LENGTH]),
        "nw_mixing": (lambda x: linear(x) + MIX * tf.reduce_sum(linear(x), axis=0, keepdims=True), [2, LENGTH]),
        "four_classes": (lambda x: linear(x)[:, :4], [None, LENGTH, 1]),
        "short_input": (lambda x: tf.matmul(tf.reshape(x, [-1, LENGTH - 1]), W[1:]), [None, LENGTH - 1, 1]),
        "two_outputs": (lambda x: (linear(x), linear(x) * 2), [None, LENGTH, 1]),
        # the beat and its first difference as two inputs (Hydra's two-input full-INT8 files): float, full INT8, and
        # a second input that is not the difference
        "difference": (with_difference, {"beats": [None, LENGTH, 1], "beat_difference": [None, LENGTH - 1, 1]}),
        "difference_int8": (with_difference, {"beats": [None, LENGTH, 1], "beat_difference": [None, LENGTH - 1, 1]}),
        "two_inputs": (with_difference, {"beats": [None, LENGTH, 1], "other": [None, LENGTH - 1, 1]}),
    }


def with_difference(tf):
    def function(beats, second):
        return (tf.matmul(tf.reshape(beats, [-1, LENGTH]), W)
                + tf.matmul(tf.reshape(second, [-1, LENGTH - 1]), W_DIFFERENCE) + B)
    return function


def smooth_beats(n: int, seed: int) -> np.ndarray:
    """Slow random walks, z-normalised: their first difference spans a few hundredths of the beats' range, so one
    int8 grid for both would leave the difference a handful of levels."""
    walk = np.cumsum(np.random.default_rng(seed).standard_normal((n, LENGTH)), axis=1)
    walk = np.apply_along_axis(lambda w: np.convolve(w, np.ones(9) / 9, mode="same"), 1, walk)
    return ((walk - walk.mean(1, keepdims=True)) / walk.std(1, keepdims=True)).astype(np.float32)


NAMES = ("nwc_dynamic", "ncw_fixed", "nw_mixing", "four_classes", "short_input", "two_outputs", "difference",
         "difference_int8", "two_inputs")


def _converted() -> dict[str, bytes]:
    """TensorFlow's conversion of each graph, cached in the temporary directory under a key of this file's text and
    TensorFlow's version: converting takes seconds, and the mutation tier runs this file once per mutant."""
    try:
        version = importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("TensorFlow (the TFLite converter) is not installed")
    key = hashlib.sha256(Path(__file__).read_bytes() + version.encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / f"ecgcnn-test-tflite-{key}"
    if not all((cache / f"{name}.tflite").is_file() for name in NAMES):
        tf = pytest.importorskip("tensorflow")
        partial = Path(tempfile.mkdtemp(prefix=cache.name + "."))
        graphs = _graphs(tf)
        assert tuple(graphs) == NAMES
        for name, (function, shape) in graphs.items():
            if isinstance(shape, dict):  # two named inputs
                specs = [tf.TensorSpec(dims, tf.float32, name=input_name) for input_name, dims in shape.items()]
                concrete = tf.function(function(tf)).get_concrete_function(*specs)
            else:
                concrete = tf.function(function).get_concrete_function(tf.TensorSpec(shape, tf.float32))
            converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
            if name.endswith("_int8"):
                calibration = smooth_beats(64, seed=11)

                def representative(calibration=calibration):
                    for beat in calibration:
                        yield [beat[None, :, None], np.diff(beat)[None, :, None]]

                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.representative_dataset = representative
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                converter.inference_input_type = converter.inference_output_type = tf.int8
            (partial / f"{name}.tflite").write_bytes(converter.convert())
        shutil.rmtree(cache, ignore_errors=True)
        try:
            os.replace(partial, cache)  # whole or not at all
        except OSError:  # another process got there first
            shutil.rmtree(partial, ignore_errors=True)
    return {name: (cache / f"{name}.tflite").read_bytes() for name in NAMES}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """name -> path of each small model, carrying the shipped edge file's metadata (labels 1-5, z-normalisation)."""
    metadata = read_tflite_metadata(pretrained.resolve_model_path("pretrained:edge.tflite"))
    metadata = {k: v for k, v in metadata.items() if not k.startswith(("tflite_", "quantiz"))}
    directory = tmp_path_factory.mktemp("tflite")
    paths = {}
    for name, data in _converted().items():
        paths[name] = directory / f"{name}.tflite"
        paths[name].write_bytes(embed_metadata(data, {**metadata, **EXTRA_METADATA.get(name, {})}))
    return paths


@pytest.fixture
def beats():
    return np.random.default_rng(3).standard_normal((150, LENGTH)).astype(np.float32)  # chunks of 64, 64, 22


def test_dynamic_nwc_model_runs_in_chunks_of_64_resized_only_when_the_chunk_changes(files, beats):
    model = tflite.TFLitePredictor(files["nwc_dynamic"])
    assert (model.layout, model.dynamic_batch, model._resizable) == ("NWC", True, True)
    assert (model.input_dtype, model.output_dtype) == (np.float32, np.float32)
    assert model.batch_size == 64 and model.quantize == "none" and model.runtime == "tflite"
    allocations = []
    allocate = model.interpreter.allocate_tensors
    model.interpreter.allocate_tensors = lambda: (allocations.append(model._allocated), allocate())[1]
    np.testing.assert_allclose(model.logits(beats), beats @ W + B, rtol=1e-5, atol=1e-5)
    assert len(allocations) == 2 and model._allocated == 22  # 1 -> 64 once, 64 -> 22 once
    assert model.logits(beats[:0]).shape == (0, CLASSES) and model._logits(beats[:0]).dtype == np.float32
    assert model._logits(beats[:0]).shape == (0, CLASSES)
    np.testing.assert_allclose(model.predict_proba(beats[:3] * 4 + 1),
                               load_predictor(files["nwc_dynamic"]).predict_proba(beats[:3]), atol=1e-6)


def test_fixed_batch_model_is_probed_once_then_resized(files, beats):
    model = tflite.TFLitePredictor(files["ncw_fixed"])
    assert (model.layout, model.dynamic_batch, model._resizable, model._allocated) == ("NCW", False, None, 1)
    assert model.quantize == "?"  # no quantisation mode recorded
    np.testing.assert_allclose(model.logits(beats), beats @ W + B, rtol=1e-5, atol=1e-5)
    assert model._resizable is True and model._allocated == 22


def test_a_fixed_batch_graph_that_mixes_its_beats_runs_one_beat_per_invoke(files, beats):
    model = tflite.TFLitePredictor(files["nw_mixing"])
    assert (model.layout, model.dynamic_batch, model._allocated) == ("NW", False, 2)
    alone = (beats @ W + B) * (1 + MIX)  # each beat on its own: its own logits plus MIX times themselves
    np.testing.assert_allclose(model.logits(beats[:70]), alone[:70], rtol=1e-5, atol=1e-5)
    assert model._resizable is False and model._allocated == 1
    np.testing.assert_allclose(model.logits(beats[:5]), alone[:5], rtol=1e-5, atol=1e-5)


def test_probe_compares_three_beats_alone_with_them_batched(files):
    model = tflite.TFLitePredictor(files["ncw_fixed"])
    assert model._probe_resize() is True and model._allocated == 3
    mixing = tflite.TFLitePredictor(files["nw_mixing"])
    assert mixing._probe_resize() is False and mixing._allocated == 1
    assert tflite._PROBE_RTOL == 1e-4


@pytest.mark.parametrize(("name", "message"), [
    ("four_classes", "model outputs 4 classes but its metadata lists 5 labels"),
    ("short_input", "unsupported input shape (1, 139, 1) for beats of length 140"),
    ("two_outputs", "expected one input (the beat, and optionally its first difference 'beat_difference') and one "
                    "output tensor, found 1 and 2"),
    ("two_inputs", "expected one input (the beat, and optionally its first difference 'beat_difference') and one "
                   "output tensor, found 2 and 1"),
])
def test_models_that_do_not_fit_their_metadata_are_refused(files, name, message):
    with pytest.raises(ModelFileError) as info:
        tflite.TFLitePredictor(files[name])
    assert str(info.value) == f"{files[name]}: {message}"


def test_a_second_input_gets_the_first_difference_of_the_beat_on_its_own_int8_grid(files):
    """Two-input files: the float one gives NumPy's map of (beat, difference); the full-INT8 one quantises each input
    with its own scale and zero point (worked out here from the file's tensors), and the difference's grid is far finer
    than the beat's (one grid for both would round the difference away)."""
    beats = smooth_beats(64, seed=11)  # the int8 file's calibration beats: no value beyond its input or output range
    expected = beats @ W + np.diff(beats, axis=1) @ W_DIFFERENCE + B
    model = tflite.TFLitePredictor(files["difference"])
    np.testing.assert_allclose(model.logits(beats), expected, rtol=1e-4, atol=1e-4)

    model = tflite.TFLitePredictor(files["difference_int8"])
    details = {d["name"]: d for d in model.interpreter.get_input_details()}
    (beat_scale, beat_zero), = [d["quantization"] for n, d in details.items() if "beat_difference" not in n]
    (diff_scale, diff_zero), = [d["quantization"] for n, d in details.items() if "beat_difference" in n]
    assert diff_scale < beat_scale / 5

    def on_grid(x, scale, zero):
        return (np.clip(np.round(x / scale) + zero, -128, 127) - zero) * scale

    seen = on_grid(beats, beat_scale, beat_zero) @ W + on_grid(np.diff(beats, axis=1), diff_scale, diff_zero) \
        @ W_DIFFERENCE + B
    out_scale = model._out["quantization"][0]
    # the int8 file's own arithmetic (int8 weights, int32 sums, one output rounding) against the float map of its
    # rounded inputs: a few output steps
    assert np.abs(model.logits(beats) - seen).max() <= 4 * out_scale + 0.02 * np.abs(seen).max()


def test_layouts_from_the_input_shape():
    assert [tflite._layout(s, 140) for s in ([1, 140, 1], [8, 1, 140], (3, 140))] == ["NWC", "NCW", "NW"]
    for shape in ([1, 140, 2], [1, 2, 140], [1, 139], [1, 140, 1, 1]):
        with pytest.raises(ValueError) as info:
            tflite._layout(np.array(shape), 140)
        assert str(info.value) == f"unsupported input shape {tuple(shape)}"


def test_files_that_are_not_tflite_models_are_one_line(tmp_path, files):
    def refused(path):
        with pytest.raises(ModelFileError) as info:
            tflite.TFLitePredictor(path)
        assert info.value.__cause__ is None
        return str(info.value)

    assert refused(tmp_path / "none.tflite") == f"{tmp_path / 'none.tflite'}: model file not found"
    (tmp_path / "dir.tflite").mkdir()
    assert refused(tmp_path / "dir.tflite") == f"{tmp_path / 'dir.tflite'}: model file not found"
    (tmp_path / "text.tflite").write_bytes(b"just some text, no flatbuffer")
    assert refused(tmp_path / "text.tflite") == \
        f"{tmp_path / 'text.tflite'}: not a TFLite model (no TFL3 flatbuffer identifier)"
    (tmp_path / "short.tflite").write_bytes(b"\0\0\0\0TFL")
    assert "no TFL3 flatbuffer identifier" in refused(tmp_path / "short.tflite")
    data = files["nwc_dynamic"].read_bytes()
    (tmp_path / "cut.tflite").write_bytes(data[:len(data) // 3])
    message = refused(tmp_path / "cut.tflite")
    assert message.startswith(f"{tmp_path / 'cut.tflite'}: not a loadable TFLite model (") and message.endswith(")")
    assert "\n" not in message and len(message) <= len(str(tmp_path / "cut.tflite")) + 40 + 160


def test_threads_default_to_every_usable_core(files):
    assert tflite.TFLitePredictor(files["nwc_dynamic"]).threads == usable_cores()
    assert tflite.TFLitePredictor(files["nwc_dynamic"], threads=1).threads == 1
    assert tflite.PREDICTOR is tflite.TFLitePredictor
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415 - optional extra

    assert tflite.interpreter_class() is Interpreter


def test_native_stderr_is_silenced_only_inside_the_block(capfd):
    os.write(2, b"before\n")
    with tflite.quiet_native_stderr():
        os.write(2, b"native noise\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "before\nafter\n"


@pytest.mark.parametrize("side", ["input", "output"])
def test_integer_tensors_without_quantisation_parameters_are_refused(files, side):
    model = tflite.TFLitePredictor(files["nwc_dynamic"])
    if side == "input":
        detail = {**model._in, "dtype": np.int8, "quantization": (0.0, 0)}
        call = lambda x: model._quantize(x, detail)  # noqa: E731
    else:
        model.output_dtype, model._out = np.dtype(np.int8), {**model._out, "quantization": (0.0, 0)}
        call = model._dequantize
    with pytest.raises(ModelFileError) as info:
        call(np.zeros((1, LENGTH), np.float32))
    assert str(info.value) == f"{files['nwc_dynamic']}: integer {side} tensor without quantisation parameters"


def test_quantisation_rounds_shifts_and_saturates():
    """q = clip(round(x / s) + z) with the tensor's own s, z; x = (q - z) * s back (written out here)."""
    model = tflite.TFLitePredictor(pretrained.resolve_model_path("pretrained:edge.tflite"))
    (s_in, z_in), (s_out, z_out) = model._in["quantization"], model._out["quantization"]
    x = np.array([[0.0, s_in * 0.49, s_in * 0.51, -s_in * 2.4, 1e6, -1e6, s_in * 3]], np.float32)
    expected = np.clip(np.array([0, 0, 1, -2, 10 ** 9, -10 ** 9, 3]) + z_in, -128, 127)
    assert model._quantize(x, model._in).tolist() == [expected.tolist()]
    assert model._quantize(x, model._in).dtype == np.int8
    q = np.array([[-128, -9, 0, 127]], np.int8)
    np.testing.assert_allclose(model._dequantize(q), (q.astype(np.float64) - z_out) * s_out, rtol=1e-6)
    assert model._dequantize(q).dtype == np.float32


EDGE_TFLITE = pretrained.resolve_model_path("pretrained:edge.tflite")


def test_without_litert_tensorflow_s_interpreter_is_used_and_without_both_the_litert_extra_is_named(monkeypatch):
    tf = pytest.importorskip("tensorflow")  # the tflite extra's TensorFlow: the fallback's oracle
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # importing LiteRT now raises ImportError
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    assert tflite.interpreter_class() is tf.lite.Interpreter
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(MissingExtraError) as info:
        tflite.interpreter_class()
    assert str(info.value) == ("this needs the 'litert' extra (ai-edge-litert is not installed): "
                               "pip install -c constraints.txt 'ecgcnn[litert]'")


@pytest.mark.parametrize(("error", "shown"), [(RuntimeError(""), "RuntimeError"),
                                              (ValueError("  first line\nsecond line"), "first line"),
                                              (ValueError("x" * 200), "x" * 160)])
def test_an_interpreter_that_refuses_the_file_is_one_line_with_its_first_line_or_its_type(monkeypatch, error,
                                                                                           shown):
    def refuse(**kwargs):
        raise error

    monkeypatch.setattr(tflite, "interpreter_class", lambda: refuse)
    with pytest.raises(ModelFileError) as info:
        tflite.TFLitePredictor(EDGE_TFLITE)
    assert str(info.value) == f"{EDGE_TFLITE}: not a loadable TFLite model ({shown})"

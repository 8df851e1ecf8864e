"""Fast tier (mutation-tested, see docs/mutation.md): how ``runtimes/onnx`` opens ONNX Runtime sessions.

The oracle is ONNX Runtime itself: the options a session reports back, the error text ORT raises for the same file,
and the outputs of a session opened here with ORT's own defaults."""

from __future__ import annotations

import sys

import numpy as np
import onnx as onnx_format
import onnxruntime as ort
import pytest

from ecgcnn.core.errors import MissingExtraError, ModelFileError
from ecgcnn.core.provenance import usable_cores
from ecgcnn.runtimes import load_predictor, onnx, pretrained

pytestmark = pytest.mark.fast

EDGE = pretrained.resolve_model_path("pretrained:edge.onnx")
CUDA = "CUDAExecutionProvider" in ort.get_available_providers()
CUDA_NOTE = "note: CUDA execution provider not available; running ONNX Runtime on the CPU\n"


def _ort_error(path) -> str:
    """The first line of what ONNX Runtime itself says about ``path``."""
    with pytest.raises(Exception) as info:  # noqa: PT011 - ORT's own exception types
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return str(info.value).splitlines()[0]


def test_sessions_log_errors_only_and_take_the_threads_asked_for():
    default = onnx.open_session(EDGE).get_session_options()
    assert default.log_severity_level == 3  # warnings off: ORT warns about unused initialisers on stderr
    reference = ort.SessionOptions()  # threads None: ORT's own thread settings
    assert (default.intra_op_num_threads, default.inter_op_num_threads) == \
        (reference.intra_op_num_threads, reference.inter_op_num_threads)
    for threads in (1, 3):
        options = onnx.open_session(EDGE, threads=threads).get_session_options()
        assert (options.intra_op_num_threads, options.inter_op_num_threads) == (threads, 1)
        assert options.log_severity_level == 3


@pytest.mark.skipif(CUDA, reason="this ONNX Runtime has the CUDA provider")
@pytest.mark.parametrize(("device", "quiet", "note"), [("cpu", False, ""), ("cuda", False, CUDA_NOTE),
                                                       ("cuda", True, ""), ("auto", False, "")])
def test_the_cpu_is_used_without_cuda_and_an_explicit_cuda_request_says_so(capsys, device, quiet, note):
    session = onnx.open_session(EDGE, device, quiet=quiet)
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert capsys.readouterr() == ("", note)


@pytest.mark.parametrize("content", [b"", b"not an onnx graph at all\n" * 40, None])
def test_an_unloadable_file_is_one_line_with_ort_s_first_line(tmp_path, content):
    path = tmp_path / ("x" * 150 + ".onnx")  # ORT's message quotes the path: longer than the 160 characters kept
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    expected = f"{path}: not a loadable ONNX model ({_ort_error(path)[:160]})"
    with pytest.raises(ModelFileError) as info:
        onnx.open_session(path)
    assert str(info.value) == expected
    assert len(_ort_error(path)) > 160  # the truncation is exercised
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_predictor_on_the_cpu_runs_single_threaded_chunks_on_every_core(dataset):
    model = onnx.OnnxPredictor(EDGE)
    assert model.providers == ["CPUExecutionProvider"] and model.runtime == "onnx"
    assert (model.batch_size, model.workers) == (16, usable_cores())  # edge.onnx records no cpu_batch
    assert model.session.get_session_options().intra_op_num_threads == 1
    assert model.input_name == model.session.get_inputs()[0].name
    assert (onnx.OnnxPredictor(EDGE, threads=5).workers, onnx.OnnxPredictor(EDGE, threads=1).workers) == (5, 1)
    assert onnx.PREDICTOR is onnx.OnnxPredictor
    beats = model.preprocess(dataset.x_test[:37])  # two chunks of 16 and a remainder
    reference = ort.InferenceSession(str(EDGE), providers=["CPUExecutionProvider"])
    expected = reference.run(None, {reference.get_inputs()[0].name: beats[:, None, :].astype(np.float32)})[0]
    np.testing.assert_allclose(model.logits(beats), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model._logits(beats[:3].astype(np.float32)), expected[:3], rtol=1e-5, atol=1e-5)


def test_predictor_on_an_accelerator_calls_the_model_1024_beats_at_a_time(monkeypatch):
    """Provider availability is the machine's; the session is real, only the provider list it reports is not."""

    class OnAccelerator:
        def __init__(self, session):
            self.session = session

        def get_providers(self):
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]

        def __getattr__(self, name):
            return getattr(self.session, name)

    opened = []

    def open_on_accelerator(path, device, threads):
        opened.append((path, device, threads))
        return OnAccelerator(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]))

    monkeypatch.setattr(onnx, "open_session", open_on_accelerator)
    model = onnx.OnnxPredictor(EDGE, device="cuda", threads=4)
    assert opened == [(EDGE, "cuda", 1)]
    assert (model.batch_size, model.workers) == (1024, 1)


def test_loader_passes_threads_to_the_predictor():
    model = load_predictor(EDGE, threads=2)
    assert isinstance(model, onnx.OnnxPredictor) and model.workers == 2


def test_onnx_runtime_on_the_cpu_calls_one_single_threaded_session_per_core():
    edge, best = load_predictor("pretrained:edge.onnx", threads=3), load_predictor("pretrained:best.onnx")
    assert (edge.workers, edge.batch_size) == (3, 16)
    assert (best.workers, best.batch_size) == (usable_cores(), 4)  # Hydra's own call size, recorded by the exporter
    assert best.metadata["cpu_batch"] == 4
    assert edge.session.get_session_options().intra_op_num_threads == 1


class _Opened:
    """Stands in for ``ort.InferenceSession`` where a machine without CUDA must look like one with it: records the
    providers asked for and opens the real session on the CPU."""

    def __init__(self):
        self.providers: list = []

    def __call__(self, path, sess_options=None, providers=None):
        self.providers.append(providers)
        return _REAL_SESSION(path, sess_options=sess_options, providers=["CPUExecutionProvider"])


_REAL_SESSION = ort.InferenceSession


@pytest.mark.parametrize(("device", "expected"), [
    ("cpu", ["CPUExecutionProvider"]), (None, ["CPUExecutionProvider"]),
    ("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"]),
    ("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"])])
def test_cuda_comes_first_where_onnx_runtime_has_it_and_cuda_or_auto_was_asked(monkeypatch, capsys, device, expected):
    opened = _Opened()
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", opened)
    onnx.open_session(EDGE) if device is None else onnx.open_session(EDGE, device)
    model = onnx.OnnxPredictor(EDGE) if device is None else onnx.OnnxPredictor(EDGE, device)
    assert opened.providers == [expected, expected]
    assert model.path == EDGE and capsys.readouterr() == ("", "")


@pytest.mark.skipif(CUDA, reason="this ONNX Runtime has the CUDA provider")
def test_an_explicit_cuda_request_says_it_runs_on_the_cpu_unless_asked_to_be_quiet(capsys):
    onnx.open_session(EDGE, "cuda")  # quiet is off by default
    assert capsys.readouterr() == ("", CUDA_NOTE)


@pytest.mark.parametrize(("error", "shown"), [(RuntimeError(""), "RuntimeError"),
                                              (ValueError("first line\nsecond line"), "first line")])
def test_a_session_error_shows_its_first_line_or_else_its_type(monkeypatch, error, shown):
    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(ort, "InferenceSession", refuse)
    with pytest.raises(ModelFileError) as info:
        onnx.open_session(EDGE)
    assert str(info.value) == f"{EDGE}: not a loadable ONNX model ({shown})"


def test_without_onnx_runtime_the_error_names_the_runtime_only_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(MissingExtraError) as info:
        onnx.open_session(EDGE)
    assert "'onnxruntime' extra" in str(info.value) and "'ecgcnn[onnxruntime]'" in str(info.value)


def test_a_file_without_ecgcnn_metadata_is_named_in_the_refusal(tmp_path):
    graph = onnx_format.load(str(EDGE))
    del graph.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx_format.save(graph, str(bare))
    with pytest.raises(ModelFileError) as info:
        onnx.OnnxPredictor(bare)
    assert str(info.value).startswith(f"{bare}: model has no ecgcnn metadata")

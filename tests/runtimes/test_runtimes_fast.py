"""Fast tier (mutation-tested, see docs/mutation.md): checkpoints, the shipped pretrained files, the inference
contract and the loader. Small models only; the shipped files are opened, never converted."""

from __future__ import annotations

import json
import pickle
import shutil
import threading
import time
import zipfile

import numpy as np
import pytest
import torch

from ecgcnn.core import fileio
from ecgcnn.core.errors import EcgcnnError, ModelFileError
from ecgcnn.core.preprocess import PREPROCESSING, normalize_beats
from ecgcnn.models import build_model
from ecgcnn.runtimes import base, checkpoint, load_predictor, loader, pretrained

pytestmark = pytest.mark.fast  # the fast tier: make test-fast, pre-commit, mutation testing


def _raises(exc_type, call, *args, **kwargs) -> str:
    with pytest.raises(exc_type) as info:
        call(*args, **kwargs)
    return str(info.value)


def _metadata(model="base-cnn-small", num_classes=5, **changes):
    meta = {"model": model, "model_kwargs": {"num_classes": num_classes, "in_channels": 1, "dropout": 0.3},
            "labels": list(range(1, num_classes + 1)), "input_length": 140, "preprocessing": dict(PREPROCESSING)}
    return {**meta, **changes}


@pytest.fixture
def small(tmp_path):
    torch.manual_seed(0)
    model = build_model("base-cnn-small").eval()
    return checkpoint.save_checkpoint(tmp_path / "small_best.pth", model, _metadata(), note="kept"), model


# ------------------------------------------------------------------------------------------------------ checkpoint

def test_checkpoint_round_trip(small, dataset):
    path, model = small
    assert sorted(p.name for p in path.parent.iterdir()) == ["small_best.pth"]
    payload = checkpoint.read_checkpoint(path)
    assert payload["format"] == "ecgcnn-checkpoint" and payload["format_version"] == 1
    assert payload["note"] == "kept" and payload["metadata"] == _metadata()
    assert payload["state_dict"].keys() == model.state_dict().keys()
    restored, meta = checkpoint.model_from_checkpoint(str(path))
    assert meta == _metadata() and not restored.training
    x = torch.from_numpy(dataset.x_test[:4]).unsqueeze(1)
    with torch.no_grad():
        torch.testing.assert_close(restored(x), model(x))
    again, _ = checkpoint.model_from_checkpoint("ignored", payload)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))


def test_saved_weights_are_a_snapshot(tmp_path):
    model = build_model("base-cnn-small")
    path = checkpoint.save_checkpoint(tmp_path / "a.pth", model, _metadata())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    state = checkpoint.read_checkpoint(path)["state_dict"]
    assert all(torch.equal(state[k], before[k]) for k in before)


def test_save_refuses_incomplete_metadata(tmp_path):
    meta = {k: v for k, v in _metadata().items() if k not in ("labels", "preprocessing")}
    assert _raises(ValueError, checkpoint.save_checkpoint, tmp_path / "x.pth", build_model("base-cnn-small"), meta) \
        == "checkpoint metadata lacks ['labels', 'preprocessing']"
    assert not (tmp_path / "x.pth").exists()


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_unreadable_checkpoints_are_one_line_errors(small, tmp_path, monkeypatch):
    path, _ = small
    assert _raises(ModelFileError, checkpoint.read_checkpoint, tmp_path / "none.pth") == \
        f"{tmp_path / 'none.pth'}: checkpoint not found"
    evil = tmp_path / "evil.pth"
    torch.save({"format": "ecgcnn-checkpoint", "payload": _Exploit()}, evil)
    assert _raises(ModelFileError, checkpoint.read_checkpoint, evil) == \
        f"{evil}: not a safe ecgcnn checkpoint: it contains objects that are not plain tensors or values " \
        f"(refused, not executed)"
    truncated = tmp_path / "t.pth"
    truncated.write_bytes(path.read_bytes()[:100])
    message = _raises(ModelFileError, checkpoint.read_checkpoint, truncated)
    assert message.startswith(f"{truncated}: not a readable PyTorch checkpoint (truncated or corrupt: ")
    assert "\n" not in message

    def fail(exc):
        def load(*args, **kwargs):
            raise exc
        return load

    monkeypatch.setattr(torch, "load", fail(pickle.UnpicklingError("bad opcode\nmore")))
    assert _raises(ModelFileError, checkpoint.read_checkpoint, path) == \
        f"{path}: not a safe ecgcnn checkpoint: bad opcode"
    monkeypatch.setattr(torch, "load", fail(pickle.UnpicklingError()))
    assert _raises(ModelFileError, checkpoint.read_checkpoint, path) == \
        f"{path}: not a safe ecgcnn checkpoint: unsafe content"
    for words in ("Unsupported global: GLOBAL os.system", "Weights only load failed; weights_only=False would run it"):
        monkeypatch.setattr(torch, "load", fail(pickle.UnpicklingError(words)))  # torch's wording differs by version
        assert _raises(ModelFileError, checkpoint.read_checkpoint, path) == \
            f"{path}: not a safe ecgcnn checkpoint: it contains objects that are not plain tensors or values " \
            f"(refused, not executed)"
    for exc, shown in ((EOFError(), "EOFError"), (zipfile.BadZipFile("not a zip\nx"), "not a zip"),
                       (RuntimeError("PytorchStreamReader failed"), "PytorchStreamReader failed")):
        monkeypatch.setattr(torch, "load", fail(exc))
        assert _raises(ModelFileError, checkpoint.read_checkpoint, path) == \
            f"{path}: not a readable PyTorch checkpoint (truncated or corrupt: {shown})"
    calls = []
    monkeypatch.setattr(torch, "load", lambda fh, **kwargs: calls.append(kwargs) or {})
    _raises(ModelFileError, checkpoint.read_checkpoint, path)
    assert calls == [{"map_location": "cpu", "weights_only": True}]


def _payload(**changes):
    payload = {"format": "ecgcnn-checkpoint", "format_version": 1, "metadata": _metadata(),
               "state_dict": {"w": torch.zeros(2)}}
    return {**payload, **changes}


@pytest.mark.parametrize("payload, problem", [
    ([1, 2], "not an ecgcnn checkpoint (expected a dict with format='ecgcnn-checkpoint'); plain state_dicts are not "
             "self-describing"),
    (_payload(format="other"), "not an ecgcnn checkpoint (expected a dict with format='ecgcnn-checkpoint'); plain "
                               "state_dicts are not self-describing"),
    (_payload(format_version=2), "checkpoint format version 2 is not supported (expected 1)"),
    ({k: v for k, v in _payload().items() if k != "format_version"},
     "checkpoint format version None is not supported (expected 1)"),
    (_payload(metadata=None), "checkpoint has no metadata"),
    (_payload(metadata=_metadata(input_length="140")),
     "ecgcnn metadata field 'input_length' is missing or not a int"),
    (_payload(metadata={k: v for k, v in _metadata().items() if k != "model_kwargs"}),
     "ecgcnn metadata field 'model_kwargs' is missing or not a dict"),
    (_payload(metadata=_metadata(model="resnet")), "unknown model 'resnet' (known: base-cnn, base-cnn-small, vgg, "
                                                   "inception, tcn, ensemble, hydra, minirocket, hydra-minirocket)"),
    (_payload(state_dict=None), "checkpoint state_dict is missing or holds non-tensors"),
    (_payload(state_dict={"w": torch.zeros(1), "b": [0.0]}), "checkpoint state_dict is missing or holds non-tensors"),
])
def test_checkpoint_schema(tmp_path, payload, problem):
    path = tmp_path / "c.pth"
    torch.save(payload, path)
    assert _raises(ModelFileError, checkpoint.read_checkpoint, path) == f"{path}: {problem}"


def test_checkpoint_schema_accepts_an_empty_state_dict(tmp_path):
    path = tmp_path / "c.pth"
    torch.save(_payload(state_dict={}), path)
    assert checkpoint.read_checkpoint(path)["state_dict"] == {}


def test_checkpoints_that_do_not_fit_their_model(tmp_path):
    model = build_model("base-cnn-small")
    path = checkpoint.save_checkpoint(tmp_path / "a.pth", model, _metadata(model_kwargs={"num_classes": 5,
                                                                                          "width": 3}))
    message = _raises(ModelFileError, checkpoint.model_from_checkpoint, path)
    assert message.startswith(f"{path}: model arguments {{'num_classes': 5, 'width': 3}} do not fit "
                              f"'base-cnn-small' (") and message.endswith(")")
    path = checkpoint.save_checkpoint(tmp_path / "b.pth", build_model("base-cnn-small", num_classes=3), _metadata())
    message = _raises(ModelFileError, checkpoint.model_from_checkpoint, path)
    assert message.startswith(f"{path}: weights do not fit a 'base-cnn-small' model with "
                              f"{_metadata()['model_kwargs']} (another model or class count? Error(s) in loading")
    assert "\n" not in message
    partial = checkpoint.read_checkpoint(checkpoint.save_checkpoint(tmp_path / "p.pth", model, _metadata()))
    del partial["state_dict"][next(iter(partial["state_dict"]))]  # weights are loaded strictly: none may be missing
    message = _raises(ModelFileError, checkpoint.model_from_checkpoint, "p.pth", partial)
    assert message.startswith("p.pth: weights do not fit a 'base-cnn-small' model")
    path = checkpoint.save_checkpoint(tmp_path / "c.pth", model, _metadata(labels=[1, 2, 3]))
    assert _raises(ModelFileError, checkpoint.model_from_checkpoint, path) == \
        f"{path}: 3 labels but the model has 5 outputs"
    default_count = _metadata(model_kwargs={"in_channels": 1})  # num_classes left to the model's default (5)
    path = checkpoint.save_checkpoint(tmp_path / "d.pth", build_model("base-cnn-small"), default_count)
    assert checkpoint.model_from_checkpoint(path)[1]["labels"] == [1, 2, 3, 4, 5]
    default_count["labels"] = [1, 2, 3]  # the count is checked against the model's outputs, not its arguments
    path = checkpoint.save_checkpoint(tmp_path / "e.pth", build_model("base-cnn-small"), default_count)
    assert _raises(ModelFileError, checkpoint.model_from_checkpoint, path) == \
        f"{path}: 3 labels but the model has 5 outputs"


# ------------------------------------------------------------------------------------------------------ pretrained

MANIFEST = pretrained.read_manifest()


def test_manifest_and_spec_resolution():
    assert set(MANIFEST["models"]) == {"best", "edge"}
    assert pretrained.is_pretrained_spec("pretrained:edge") and not pretrained.is_pretrained_spec("edge.pth")
    assert pretrained.resolve_model_path("some/model.onnx") == pretrained.Path("some/model.onnx")
    for suffix, name in (("", "edge.pth"), (".pth", "edge.pth"), (".onnx", "edge.onnx"),
                         (".tflite", "edge_int8_full.tflite")):
        assert pretrained.resolve_model_path(f"pretrained:edge{suffix}") == pretrained.PRETRAINED_DIR / name
    assert pretrained.resolve_model_path("pretrained:best.onnx").name == "best.onnx"


def test_unknown_specs_list_the_choices():
    choices = ("pretrained:best, pretrained:best.onnx, pretrained:best.tflite, pretrained:edge, pretrained:edge.onnx, "
               "pretrained:edge.tflite")
    for spec in ("pretrained:huge", "pretrained:edge.pt", "pretrained:", "pretrained:edge.onnx.gz"):
        assert _raises(EcgcnnError, pretrained.resolve_model_path, spec) == \
            f"{spec}: unknown pretrained model; expected one of {choices}"


def test_sha256_of_the_shipped_files():
    for entry in MANIFEST["models"]["edge"]["files"].values():
        path = pretrained.PRETRAINED_DIR / entry["file"]
        assert fileio.file_sha256(path) == entry["sha256"]
        assert path.stat().st_size == entry["bytes"]


@pytest.fixture
def copy(tmp_path):
    directory = tmp_path / "pretrained"
    directory.mkdir()
    manifest = json.loads(json.dumps(MANIFEST))
    del manifest["models"]["best"]
    for entry in manifest["models"]["edge"]["files"].values():
        shutil.copy(pretrained.PRETRAINED_DIR / entry["file"], directory / entry["file"])
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory, manifest


def test_a_damaged_or_incomplete_installation_is_refused(copy):
    directory, manifest = copy
    assert pretrained.resolve_model_path("pretrained:edge.onnx", directory) == directory / "edge.onnx"
    assert _raises(EcgcnnError, pretrained.resolve_model_path, "pretrained:best", directory) == \
        "pretrained:best: unknown pretrained model; expected one of pretrained:edge, pretrained:edge.onnx, " \
        "pretrained:edge.tflite"
    damaged = bytearray((directory / "edge.pth").read_bytes())
    damaged[-10] ^= 1
    (directory / "edge.pth").write_bytes(bytes(damaged))
    assert _raises(ModelFileError, pretrained.resolve_model_path, "pretrained:edge", directory) == \
        f"{directory / 'edge.pth'}: sha256 does not match {directory / 'manifest.json'} (damaged installation)"
    (directory / "edge.onnx").unlink()
    assert _raises(ModelFileError, pretrained.resolve_model_path, "pretrained:edge.onnx", directory) == \
        f"{directory / 'edge.onnx'}: pretrained file missing from the installation"
    del manifest["models"]["edge"]["files"]["tflite-int8-full"]
    (directory / "manifest.json").write_text(json.dumps(manifest))
    assert _raises(EcgcnnError, pretrained.resolve_model_path, "pretrained:edge.tflite", directory) == \
        "pretrained:edge.tflite: this pretrained model is not shipped in that format"
    (directory / "manifest.json").write_text("{")
    message = _raises(ModelFileError, pretrained.read_manifest, directory)
    assert message.startswith(f"{directory / 'manifest.json'}: not valid JSON (Expecting")
    (directory / "manifest.json").unlink()
    assert _raises(ModelFileError, pretrained.resolve_model_path, "pretrained:edge", directory) == \
        f"{directory / 'manifest.json'}: no pretrained models are installed with this copy of ecgcnn"
    (directory / "manifest.json").write_text(json.dumps({"format": "ecgcnn-pretrained"}))
    assert _raises(EcgcnnError, pretrained.resolve_model_path, "pretrained:edge", directory) == \
        "pretrained:edge: unknown pretrained model; expected one of "


# ------------------------------------------------------------------------------------------- the inference contract

class _Echo(base.Predictor):
    """A backend whose logits are its (preprocessed) input: the contract around ``_logits`` made visible."""

    runtime = "onnx"
    batch_size = 2

    def __init__(self, metadata, path=None):
        super().__init__(metadata, path)
        self.calls = []

    def _logits(self, beats):
        self.calls.append(beats.shape[0])
        return beats * 1.0


ECHO_META = {"model": "tcn", "labels": [10, 20, 30], "input_length": 3, "class_names": ["a", "b", "c"],
             "preprocessing": {"name": "none"}, "config": {"recipe": "edge"}}


def test_softmax_is_stable_and_normalised():
    probs = base.softmax(np.array([[1000.0, 1001.0, 1002.0], [0.0, 0.0, 0.0], [-5.0, 0.0, 5.0]]))
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs[0], [0.09003057, 0.24472847, 0.66524096], rtol=1e-6)
    np.testing.assert_allclose(probs[1], [1 / 3] * 3)
    np.testing.assert_allclose(probs[2], [4.50940412e-05, 6.69254912e-03, 9.93262357e-01], rtol=1e-6)


def test_predictor_batches_and_maps_labels():
    echo = _Echo(dict(ECHO_META), "m.onnx")
    beats = np.array([[0.0, 5.0, 1.0], [3.0, 1.0, 2.0], [0.0, 0.0, 9.0], [1.0, 0.0, 0.0], [2.0, 8.0, 1.0]])
    np.testing.assert_array_equal(echo.logits(beats), beats.astype(np.float32))
    assert echo.calls == [2, 2, 1]
    assert echo.predict(beats).tolist() == [20, 10, 30, 10, 20]
    assert echo.predict_indices(beats).tolist() == [1, 0, 2, 0, 1]
    probs = echo.predict_proba(beats)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs, base.softmax(beats), rtol=1e-6)
    assert echo.logits(np.zeros((0, 3))).shape == (0, 3) and echo.logits(np.zeros((0, 3))).dtype == np.float32
    assert echo.predict(np.zeros((0, 3))).tolist() == []
    with pytest.raises(EcgcnnError, match=r"expected beats of shape \(N, 3\), got \(1, 4\)"):
        echo.logits(np.zeros((1, 4)))


class _Slow(_Echo):
    """An echo whose first ``workers`` calls wait until all run at once, and whose earlier chunks finish last."""

    def __init__(self, metadata, workers):
        super().__init__(metadata)
        self.workers = workers
        self.together = threading.Barrier(workers, timeout=5)
        self.started = 0
        self.lock = threading.Lock()
        self.overlapped = []

    def _logits(self, beats):
        with self.lock:
            self.started += 1
            first = self.started <= self.workers
        if first:
            try:
                self.together.wait()
                self.overlapped.append(True)
            except threading.BrokenBarrierError:
                self.overlapped.append(False)
        time.sleep(0.002 * (20 - float(beats[0, 0]) / 2))  # chunk i is beats 2i, 2i+1: later chunks return first
        return super()._logits(beats)


@pytest.mark.parametrize("workers", [2, 3])
def test_chunks_run_on_workers_and_come_back_in_order(workers):
    model = _Slow(dict(ECHO_META), workers)
    beats = np.arange(3 * 2 * workers + 1, dtype=np.float64)[:, None] * np.array([[1.0, 0.5, 0.25]])
    np.testing.assert_array_equal(model.logits(beats), beats.astype(np.float32))
    assert sorted(model.calls) == [1] + [2] * (3 * workers)
    assert model.overlapped == [True] * workers  # the first ``workers`` chunks ran at the same time


def test_predictor_description_and_preprocessing():
    echo = _Echo(dict(ECHO_META), "dir/m.onnx")
    assert echo.path == base.Path("dir/m.onnx") and _Echo(dict(ECHO_META)).path is None
    assert echo.describe() == "edge (onnx, dir/m.onnx)"
    assert (echo.model_name, echo.name, echo.format, echo.num_classes, echo.input_length) == ("tcn", "edge", "onnx",
                                                                                              3, 3)
    assert echo.labels == [10, 20, 30] and echo.class_names == ["a", "b", "c"]
    beats = np.array([[1.0, 2.0, 6.0]])
    np.testing.assert_array_equal(echo.preprocess(beats), beats.astype(np.float32))  # not a z-normalised model
    znorm = _Echo({**ECHO_META, "preprocessing": dict(PREPROCESSING)})
    np.testing.assert_allclose(znorm.preprocess(beats), normalize_beats(beats))
    np.testing.assert_allclose(znorm.predict_proba(beats), base.softmax(normalize_beats(beats)), rtol=1e-6)
    no_names = _Echo({k: v for k, v in ECHO_META.items() if k not in ("class_names", "preprocessing")})
    assert no_names.class_names == ["10", "20", "30"] and no_names.preprocess(beats).tolist() == [[1, 2, 6]]


def test_shipped_formats_agree(dataset):
    beats = dataset.x_test[:16] * 3.0 + 1.0  # another scale and offset: every runtime normalises the beats itself
    torch_model = load_predictor("pretrained:edge")
    onnx_model = load_predictor("pretrained:edge.onnx")
    tflite_model = load_predictor("pretrained:edge.tflite")
    assert (torch_model.format, onnx_model.format, tflite_model.format) == ("pytorch", "onnx", "tflite-int8-full")
    assert torch_model.name == "edge" and torch_model.labels == [1, 2, 3, 4, 5]
    reference = torch_model.predict_proba(dataset.x_test[:16])
    np.testing.assert_allclose(torch_model.predict_proba(beats), reference, atol=1e-5)
    np.testing.assert_allclose(onnx_model.predict_proba(beats), reference, atol=1e-4)
    assert np.mean(tflite_model.predict(beats) == torch_model.predict(beats)) >= 0.9
    assert torch_model.predict(dataset.x_test[:16]).tolist() == (reference.argmax(1) + 1).tolist()


@pytest.mark.parametrize("spec", ["pretrained:edge", "pretrained:edge.onnx", "pretrained:edge.tflite",
                                  "pretrained:best", "pretrained:best.onnx"])
def test_chunked_calls_give_each_beat_its_own_answer(dataset, spec):
    """Beats are classified in chunks of ``batch_size``: every beat gets what it gets when classified alone."""
    model = load_predictor(spec)
    beats = dataset.x_test[:2 * model.batch_size + 7]  # two full chunks and a remainder
    alone = np.concatenate([model.predict_proba(beat[None]) for beat in beats])
    np.testing.assert_allclose(model.predict_proba(beats), alone, atol=1e-6)


def test_loader_opens_each_format_with_its_backend(tmp_path, monkeypatch):
    opened = []

    class Spy:
        def __init__(self, path, device, threads):
            opened.append((path, device, threads))

    for runtime in ("torch", "onnx"):
        monkeypatch.setattr(loader.load_backend(runtime), "PREDICTOR", Spy)
    loader.load_predictor("pretrained:edge", device="cuda", threads=3)
    loader.load_predictor("pretrained:edge.onnx")
    assert opened == [(pretrained.PRETRAINED_DIR / "edge.pth", "cuda", 3),
                      (pretrained.PRETRAINED_DIR / "edge.onnx", "cpu", None)]
    assert loader.load_backend("tflite").__name__ == "ecgcnn.runtimes.tflite"
    assert _raises(ModelFileError, load_predictor, tmp_path / "m.onnx") == \
        f"{tmp_path / 'm.onnx'}: model file not found"
    assert _raises(ModelFileError, load_predictor, tmp_path / "m.h5") == \
        f"{tmp_path / 'm.h5'}: unknown model format '.h5'; expected one of .onnx, .pt, .pth, .tflite"
    (tmp_path / "dir.onnx").mkdir()
    assert _raises(ModelFileError, load_predictor, tmp_path / "dir.onnx") == \
        f"{tmp_path / 'dir.onnx'}: model file not found"


@pytest.mark.parametrize("name", ["edge", "best"])
def test_full_int8_logits_are_the_dequantised_interpreter_outputs(dataset, name):
    """A full-INT8 file's logits: the interpreter's int8 outputs for int8 inputs, both (de)quantised here with the
    tensors' own scale and zero point (q = round(x / s) + z, x = (q - z) * s), and probabilities their softmax."""
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415 - optional extra

    path = pretrained.resolve_model_path(f"pretrained:{name}.tflite")
    beats = dataset.x_test[:24]
    x = (beats - beats.mean(axis=1, keepdims=True)) / beats.std(axis=1, ddof=1, keepdims=True)
    interpreter = Interpreter(model_path=str(path))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    (s_in, z_in), (s_out, z_out) = inp["quantization"], out["quantization"]
    q = np.clip(np.round(x / s_in) + z_in, -128, 127).astype(np.int8)
    shape = [len(q), *(int(d) for d in inp["shape"][1:])]  # (N, 140, 1) or (N, 1, 140)
    interpreter.resize_tensor_input(inp["index"], shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], q.reshape(shape))
    interpreter.invoke()
    logits = (interpreter.get_tensor(out["index"]).astype(np.float64) - z_out) * s_out
    predictor = load_predictor(path)
    np.testing.assert_allclose(predictor.logits(predictor.preprocess(beats)), logits, rtol=0, atol=1e-6)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(predictor.predict_proba(beats), e / e.sum(axis=1, keepdims=True), atol=1e-6)


@pytest.mark.parametrize("name", ["edge", "best"])
def test_full_int8_probabilities_stay_close_to_the_float_model(dataset, name):
    """Not only the class: the int8 file's probabilities stay near the ONNX (float) file's on 500 official test
    beats (measured: mean |delta p| 0.001 for edge, 0.017 for best)."""
    beats = dataset.x_test[:500]
    float_p = load_predictor(f"pretrained:{name}.onnx").predict_proba(beats)
    int8_p = load_predictor(f"pretrained:{name}.tflite").predict_proba(beats)
    delta = np.abs(float_p - int8_p)
    assert delta.mean() <= 0.03 and np.percentile(delta.max(axis=1), 99) <= 0.15, (delta.mean(), delta.max())
    assert np.mean(float_p.argmax(1) == int8_p.argmax(1)) >= 0.99


def test_pytorch_on_the_cpu_calls_each_architecture_with_its_own_chunk_size():
    """Hydra declares the call size PyTorch was measured fastest with (models/hydra.py); the CNNs keep the base's."""
    assert load_predictor("pretrained:best").batch_size == 16
    assert load_predictor("pretrained:edge").batch_size == 64

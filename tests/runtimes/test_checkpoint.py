"""Self-describing checkpoints: round trip, schema checks, safe loading, corrupt files."""

import os
import pickle

import numpy as np
import pytest
import torch

from ecgcnn.core import fileio
from ecgcnn.core.errors import EcgcnnError, ModelFileError
from ecgcnn.core.preprocess import PREPROCESSING
from ecgcnn.models import build_model
from ecgcnn.runtimes import load_predictor
from ecgcnn.runtimes.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint
from ecgcnn.runtimes.torch import TorchPredictor


def _metadata(name="tcn", num_classes=5):
    return {"model": name, "model_kwargs": {"num_classes": num_classes, "in_channels": 1, "dropout": 0.3},
            "labels": list(range(1, num_classes + 1)), "input_length": 140, "preprocessing": dict(PREPROCESSING)}


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_model("tcn").eval()
    return save_checkpoint(tmp_path / "tcn_best.pth", model, _metadata()), model


def test_round_trip_needs_nothing_but_the_file(checkpoint, dataset):
    path, model = checkpoint
    restored, metadata = model_from_checkpoint(path)
    assert metadata["model"] == "tcn" and metadata["labels"] == [1, 2, 3, 4, 5]
    x = torch.from_numpy(dataset.x_test[:8]).unsqueeze(1)
    with torch.no_grad():
        torch.testing.assert_close(restored(x), model(x))
    predictor = load_predictor(path)
    probabilities = predictor.predict_proba(dataset.x_test[:8])
    with torch.no_grad():  # the predictor's output is the model's own softmax (beats are already z-normalised)
        expected = torch.softmax(model(x), 1).numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert predictor.predict(dataset.x_test[:8]).tolist() == (expected.argmax(1) + 1).tolist()  # labels 1..5
    assert predictor.predict_indices(dataset.x_test[:8]).tolist() == expected.argmax(1).tolist()


def test_atomic_save_leaves_no_temporary_files(checkpoint):
    path, _ = checkpoint
    assert sorted(p.name for p in path.parent.iterdir()) == ["tcn_best.pth"]
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_save_that_fails_half_way_keeps_the_old_checkpoint(checkpoint, monkeypatch):
    path, model = checkpoint
    before = path.read_bytes()

    def half_written(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_written)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, _metadata())
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["tcn_best.pth"]


def test_atomic_writers_keep_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    path.write_text("old")

    def failing_fsync(fd):
        raise OSError("I/O error")

    monkeypatch.setattr(fileio.os, "fsync", failing_fsync)
    for write in (lambda: fileio.write_bytes_atomic(path, b"new" * 1000), lambda: fileio.write_text_atomic(path, "x"),
                  lambda: fileio.write_json_atomic(path, {"a": 1})):
        with pytest.raises(OSError, match="I/O error"):
            write()
        assert path.read_text() == "old"
        assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/ecgcnn_pwned_marker",))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = "/tmp/ecgcnn_pwned_marker"
    if os.path.exists(marker):
        os.remove(marker)
    path = tmp_path / "evil.pth"
    torch.save({"format": "ecgcnn-checkpoint", "payload": _Exploit()}, path)
    with pytest.raises(ModelFileError, match="not a safe ecgcnn checkpoint"):
        read_checkpoint(path)
    assert not os.path.exists(marker)
    # a plain pickle file is refused the same way
    path.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(ModelFileError):
        read_checkpoint(path)
    assert not os.path.exists(marker)


def test_truncated_and_random_files(checkpoint, tmp_path):
    path, _ = checkpoint
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        read_checkpoint(truncated)
    noise = tmp_path / "noise.pth"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelFileError):
        read_checkpoint(noise)


def test_plain_state_dict_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save(build_model("tcn").state_dict(), path)
    with pytest.raises(ModelFileError, match="not an ecgcnn checkpoint"):
        read_checkpoint(path)


def test_weights_of_another_model_or_class_count(tmp_path):
    vgg = build_model("vgg")
    path = save_checkpoint(tmp_path / "mixed.pth", vgg, _metadata("tcn"))
    with pytest.raises(ModelFileError, match="weights do not fit a 'tcn' model"):
        model_from_checkpoint(path)
    three = build_model("tcn", num_classes=3)
    path = save_checkpoint(tmp_path / "classes.pth", three, _metadata("tcn", 5))
    with pytest.raises(ModelFileError, match="another model or class count"):
        model_from_checkpoint(path)


def test_missing_metadata_field(tmp_path):
    model = build_model("tcn")
    metadata = _metadata()
    path = tmp_path / "x.pth"
    torch.save({"format": "ecgcnn-checkpoint", "format_version": 1, "state_dict": model.state_dict(),
                "metadata": {k: v for k, v in metadata.items() if k != "labels"}}, path)
    with pytest.raises(ModelFileError, match="'labels' is missing"):
        read_checkpoint(path)


def test_predictor_validates_beats(checkpoint):
    predictor = TorchPredictor(checkpoint[0])

    with pytest.raises(EcgcnnError, match=r"expected beats of shape \(N, 140\)"):
        predictor.predict_proba(np.zeros((2, 139)))
    with pytest.raises(EcgcnnError, match="NaN"):
        predictor.predict_proba(np.full((1, 140), np.nan))

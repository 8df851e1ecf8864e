"""``<run>_last.pth`` through the file: a run resumed from the checkpoint written after epoch 1 or epoch 3 of 4 (before
and after the epoch the uninterrupted run chooses) gives that run's every epoch and weights, finished members come
back as they were given, and a checkpoint that cannot be resumed is one line. The oracle is the uninterrupted run
and the values handed to ``save_last``, never what ``read_resume_state`` returns of itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgcnn.core.errors import EcgcnnError
from ecgcnn.core.preprocess import normalize_beats
from ecgcnn.data.dataset import load_dataset
from ecgcnn.models import build_model
from ecgcnn.runtimes.checkpoint import read_checkpoint, save_checkpoint
from ecgcnn.runtimes.metadata import build_metadata
from ecgcnn.training import loop, resume
from ecgcnn.training.config import TrainConfig

pytestmark = pytest.mark.fast
KWARGS = {"num_classes": 5, "in_channels": 1, "dropout": 0.3}
SETTINGS = {"model": "base-cnn-small", "epochs": 4, "seed": 1, "progress": False, "batch_size": 32, "lr": 3e-3,
            "jitter": 0.05, "scale": 0.1}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def beats():
    ds = load_dataset(load_test=False)
    pick = np.random.default_rng(3).permutation(len(ds.index_train))[:80]
    return torch.from_numpy(normalize_beats(ds.x_train[pick]))[:, None, :], torch.from_numpy(ds.index_train[pick])


def _job(cfg, beats, **job_args):
    x, y = beats
    return loop.MemberJob(cfg, 0, dict(KWARGS), x, y, np.arange(60), np.arange(60, 80), torch.device("cpu"),
                          **job_args)


def _epochs(result):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in result["history"]]


FINISHED = [{"best_epoch": 2, "val": {"accuracy": 0.5}, "val_predictions": np.array([[0.25, 0.75], [1.0, 0.0]])}]


@pytest.fixture(scope="module")
def uninterrupted(beats, tmp_path_factory):
    """The full run, and the last checkpoint as save_last wrote it after each epoch (copied away each time)."""
    folder = tmp_path_factory.mktemp("last")
    cfg = TrainConfig(**SETTINGS)
    written = {}

    def save(state):
        path = folder / f"after{state.epoch}.pth"
        resume.save_last(path, cfg, dict(KWARGS), [dict(r) for r in FINISHED], state)
        written[state.epoch] = path

    full = loop.fit_member(_job(cfg, beats, on_epoch_end=save))
    assert 1 < full["best_epoch"] <= 3, full["best_epoch"]  # the two resume points fall on both sides of it
    return cfg, full, written


@pytest.mark.parametrize("after", [1, 3])
def test_resuming_from_the_file_gives_the_uninterrupted_run(beats, uninterrupted, after):
    cfg, full, written = uninterrupted
    lines = []
    state = resume.read_resume_state(written[after], cfg, lines.append)
    assert lines == [f"resuming after epoch {after} from {written[after]}"]
    assert state["epoch"] == after and state["member"] == 0
    resumed_epochs = []
    resumed = loop.fit_member(_job(cfg, beats, resume_state=state, on_epoch_end=lambda s: resumed_epochs.append(
        s.epoch)))
    assert resumed_epochs == list(range(after + 1, 5))
    assert _epochs(resumed) == _epochs(full) and len({r["train_loss"] for r in full["history"]}) == 4
    assert resumed["best_epoch"] == full["best_epoch"] and resumed["val"] == full["val"]
    assert all(torch.equal(resumed["state"][k], full["state"][k]) for k in full["state"])
    np.testing.assert_array_equal(resumed["val_predictions"], full["val_predictions"])


def test_finished_members_and_the_metadata_come_back(uninterrupted):
    cfg, full, written = uninterrupted
    state = resume.read_resume_state(written[4], cfg, lambda line: None)
    assert len(state["finished"]) == 1
    got, given = state["finished"][0], FINISHED[0]
    assert isinstance(got["val_predictions"], np.ndarray)
    np.testing.assert_array_equal(got["val_predictions"], given["val_predictions"])
    assert {k: v for k, v in got.items() if k != "val_predictions"} == \
        {k: v for k, v in given.items() if k != "val_predictions"}
    payload = read_checkpoint(written[4])
    assert payload["metadata"]["model"] == "base-cnn-small" and payload["metadata"]["config"] == cfg.as_dict()
    assert payload["metadata"]["best_epoch"] == full["best_epoch"]  # the best so far after the last epoch
    assert len(state["history"]) == 4 and state["best_epoch"] == full["best_epoch"]


def test_the_fold_is_named_when_there_are_several(uninterrupted, tmp_path):
    cfg, _, written = uninterrupted
    lines = []
    resume.read_resume_state(written[1], TrainConfig(**{**SETTINGS, "folds": 1}), lines.append)
    assert lines[0].endswith(f"after epoch 1 from {written[1]}")
    payload = read_checkpoint(written[1])
    payload["metadata"]["config"]["folds"] = 5
    payload["training_state"]["member"] = 2
    path = tmp_path / "fold.pth"
    torch.save(payload, path)
    lines = []
    resume.read_resume_state(path, TrainConfig(**{**SETTINGS, "folds": 5}), lines.append)
    assert lines == [f"resuming after epoch 1 of fold 3 from {path}"]


def test_what_cannot_be_resumed_is_one_line(uninterrupted, tmp_path):
    cfg, _, written = uninterrupted
    with pytest.raises(EcgcnnError) as missing:
        resume.read_resume_state(tmp_path / "none.pth", cfg)
    assert str(missing.value) == f"{tmp_path / 'none.pth'}: nothing to resume (no last checkpoint); run without " \
                                 "--resume"
    plain = tmp_path / "plain.pth"
    model = build_model("base-cnn-small", **KWARGS)
    save_checkpoint(plain, model, build_metadata("base-cnn-small", dict(KWARGS), cfg.as_dict(), 1))
    with pytest.raises(EcgcnnError) as no_state:
        resume.read_resume_state(plain, cfg)
    assert str(no_state.value) == f"{plain}: not a resumable checkpoint (no training state)"
    other = TrainConfig(**{**SETTINGS, "lr": 1e-3, "epochs": 6})
    with pytest.raises(EcgcnnError) as changed:
        resume.read_resume_state(written[1], other)
    assert str(changed.value) == f"{written[1]}: cannot resume with different settings (epochs: 4 -> 6, lr: 0.003 " \
                                 "-> 0.001)"
    unchanged_output = TrainConfig(**{**SETTINGS, "output_dir": str(tmp_path / "elsewhere")})
    assert resume.read_resume_state(written[1], unchanged_output, lambda line: None)["epoch"] == 1

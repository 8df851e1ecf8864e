"""Fast tier (mutation-tested, see docs/mutation.md): the training loop of one member and its choice of epoch.

A few epochs of the small CNN on 80 training beats, one thread. Where a value must be checked exactly, the learning
rate is made negligible (1e-30) so the weights stay at their seeded initial values and the loop's bookkeeping can be
recomputed here independently; the epoch choice is driven by scripted validation figures.
"""

from __future__ import annotations

import copy
import math
import sys
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ecgcnn.core.preprocess import normalize_beats
from ecgcnn.data.dataset import load_dataset
from ecgcnn.models import build_model
from ecgcnn.training import loop
from ecgcnn.training.config import TrainConfig
from ecgcnn.training.distributed import Distributed

pytestmark = pytest.mark.fast  # the fast tier: make test-fast, pre-commit, mutation testing

KWARGS = {"num_classes": 5, "in_channels": 1, "dropout": 0.0}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is fastest, and results are repeatable
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def beats():
    ds = load_dataset(load_test=False)
    pick = np.random.default_rng(0).permutation(len(ds.index_train))[:80]
    return torch.from_numpy(normalize_beats(ds.x_train[pick]))[:, None, :], torch.from_numpy(ds.index_train[pick])


def _job(beats, member=0, **settings):
    job_keys = {"model_kwargs", "teacher", "on_epoch_end", "log", "resume_state", "tag", "dist"}
    job_args = {k: settings.pop(k) for k in list(settings) if k in job_keys}
    cfg = TrainConfig(**{"model": "base-cnn-small", "epochs": 2, "seed": 0, "progress": False, "batch_size": 32,
                         **settings})
    x, y = beats
    return loop.MemberJob(cfg, member, job_args.pop("model_kwargs", dict(KWARGS)), x, y, np.arange(60),
                          np.arange(60, 80), torch.device("cpu"), **job_args)


# ------------------------------------------------------------------------------------------------------ pieces

def test_batches_shuffle_with_the_generator_and_drop_single_beats():
    def sizes(n, size, seed=0):
        return [len(b) for b in loop.batches(n, size, torch.Generator().manual_seed(seed))]

    assert sizes(5, 2) == [2, 2] and sizes(4, 2) == [2, 2] and sizes(6, 4) == [4, 2] and sizes(1, 4) == []
    assert sizes(3, 3) == [3]
    order = torch.randperm(7, generator=torch.Generator().manual_seed(3))
    got = torch.cat(list(loop.batches(7, 3, torch.Generator().manual_seed(3))))
    assert got.tolist() == order[:6].tolist()


def test_class_weights():
    assert loop.class_weights(torch.tensor([0, 1]), 2, 0.0) is None
    weights = loop.class_weights(torch.tensor([0, 0, 0, 1]), 3, 1.0)  # an absent class counts as one beat
    assert weights.dtype == torch.float32
    np.testing.assert_allclose(weights.numpy(), [5 / 9, 5 / 3, 5 / 3], rtol=1e-6)
    y = torch.tensor([0, 0, 0, 0, 1, 2, 2, 0])
    for power in (0.5, 1.0, 2.0):
        weights = loop.class_weights(y, 3, power)
        assert float(weights[y].mean()) == pytest.approx(1.0)  # the average weight per training beat is 1
        counts = np.array([5.0, 1.0, 2.0])
        ratio = weights.numpy() / weights.numpy()[0]
        np.testing.assert_allclose(ratio, (counts / counts[0]) ** -power, rtol=1e-6)


def _reference_kl(student, teacher, t):
    """KL(teacher || student) on temperature-softened distributions, averaged over the batch (numpy)."""
    def log_softmax(z):
        z = z / t
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    p_t, log_s, log_t = np.exp(log_softmax(teacher)), log_softmax(student), log_softmax(teacher)
    return float((p_t * (log_t - log_s)).sum(axis=1).mean())


def test_loss_with_and_without_a_teacher():
    gen = torch.Generator().manual_seed(0)
    logits, teacher = torch.randn(6, 5, generator=gen) * 2, torch.randn(6, 5, generator=gen) * 2
    targets = torch.tensor([0, 1, 2, 3, 4, 0])
    weights = torch.tensor([0.5, 1.0, 1.5, 2.0, 1.0])
    cfg = TrainConfig(label_smoothing=0.1, distill_weight=0.3, distill_temperature=4.0)
    hard = F.cross_entropy(logits, targets, weight=weights, label_smoothing=0.1)
    assert float(loop.loss_fn(logits, targets, weights, cfg)) == pytest.approx(float(hard), rel=1e-6)
    assert float(loop.loss_fn(logits, targets, None, TrainConfig())) == \
        pytest.approx(float(F.cross_entropy(logits, targets)), rel=1e-6)
    soft = _reference_kl(logits.numpy(), teacher.numpy(), 4.0) * 16.0
    assert float(loop.loss_fn(logits, targets, weights, cfg, teacher)) == \
        pytest.approx(0.7 * float(hard) + 0.3 * soft, rel=1e-5)
    assert float(loop.loss_fn(logits, targets, weights, cfg, logits)) == pytest.approx(0.7 * float(hard), rel=1e-5)


# ------------------------------------------------------------------------------------------------ the epoch loop

@pytest.mark.parametrize("settings", [{}, {"class_balance": 1.0, "label_smoothing": 0.1}])
def test_epoch_records_are_the_loop_figures(beats, settings):
    """With a negligible learning rate the weights stay at their seeded values: every figure of the history can be
    recomputed from the same seed, batch order and loss."""
    job = _job(beats, member=1, lr=1e-30, **settings)
    started = time.perf_counter()
    result = loop.fit_member(job)
    elapsed = time.perf_counter() - started
    x, y = beats[0][:60], beats[1][:60]
    torch.manual_seed(1000)  # cfg.seed + 1000 * member
    model = build_model("base-cnn-small", **KWARGS).train()
    generator = torch.Generator().manual_seed(1000)
    weights = loop.class_weights(y, 5, settings.get("class_balance", 0.0))
    total, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for batch in torch.randperm(60, generator=generator).split(32):
            logits = model(x[batch])
            loss = F.cross_entropy(logits, y[batch], weight=weights, label_smoothing=settings.get("label_smoothing", 0))
            total += float(loss) * len(batch)
            correct += int((logits.argmax(1) == y[batch]).sum())
            seen += len(batch)
    first = result["history"][0]
    assert first["epoch"] == 1 and first["lr"] == 1e-30
    assert first["train_loss"] == pytest.approx(total / seen, rel=1e-6)  # float32 throughout (no autocast on CPU)
    assert first["train_accuracy"] == pytest.approx(correct / seen)
    val = loop.score(model, beats[0][60:], beats[1][60:])
    assert first["val_loss"] == pytest.approx(val["loss"], rel=1e-5)
    assert (first["val_accuracy"], first["val_macro_f1"]) == (val["accuracy"], val["macro_f1"])
    assert 0 < first["seconds"] < elapsed
    second = result["history"][1]
    assert second["epoch"] == 2 and second["lr"] == pytest.approx(1e-30 * (1 + math.cos(math.pi / 2)) / 2)
    assert len(result["history"]) == 2


def test_a_teacher_reaches_the_loss(beats):
    """Distilling (weight 1) from a teacher with the student's own initial weights: nothing to learn, loss 0."""
    torch.manual_seed(0)
    teacher = build_model("base-cnn-small", **KWARGS).train()
    alone = loop.fit_member(_job(beats, lr=1e-30, epochs=1))
    distilled = loop.fit_member(_job(beats, lr=1e-30, epochs=1, teacher=teacher, distill_weight=1.0))
    assert alone["history"][0]["train_loss"] > 0.1
    assert distilled["history"][0]["train_loss"] == pytest.approx(0.0, abs=1e-6)


class _Scripted:
    """Replaces the validation figures of each epoch (accuracy, loss); the last call (the chosen model's
    predictions) is passed through."""

    def __init__(self, figures):
        self.figures, self.calls, self.real = list(figures), 0, loop.score

    def __call__(self, model, x, y, batch_size=512):
        result = self.real(model, x, y, batch_size)
        if self.calls < len(self.figures):
            result["accuracy"], result["loss"] = self.figures[self.calls]
        self.calls += 1
        return result


@pytest.mark.parametrize("figures, chosen, marked", [
    ([(0.5, 1.0), (0.8, 0.9), (0.8, 0.9), (0.7, 0.1)], 2, [1, 2]),  # an exact tie keeps the earlier epoch
    ([(0.5, 1.0), (0.8, 0.9), (0.8, 0.85), (0.6, 0.2)], 3, [1, 2, 3]),  # equal accuracy: the lower loss wins
    ([(0.0, 9.0), (0.0, 9.5), (0.0, 8.0), (0.0, 8.0)], 3, [1, 3]),
])
def test_the_epoch_with_the_best_validation_figures_is_kept(beats, monkeypatch, figures, chosen, marked):
    monkeypatch.setattr(loop, "score", _Scripted(figures))
    snapshots, states, lines = {}, [], []

    def on_epoch_end(state: loop.EpochState):
        snapshots[state.epoch] = copy.deepcopy(state.model.state_dict())
        states.append((state.member, state.epoch, len(state.history), state.best["epoch"]))

    result = loop.fit_member(_job(beats, member=2, epochs=4, tag="fold 3/5", on_epoch_end=on_epoch_end,
                                  log=lines.append))
    assert result["best_epoch"] == chosen
    assert [r["val_accuracy"] for r in result["history"]] == [a for a, _ in figures]
    record = result["history"][chosen - 1]
    assert result["val"] == {"accuracy": figures[chosen - 1][0], "macro_f1": record["val_macro_f1"],
                             "loss": figures[chosen - 1][1]}
    assert result["state"].keys() == snapshots[chosen].keys()
    assert all(torch.equal(result["state"][k], snapshots[chosen][k]) for k in snapshots[chosen])
    assert not all(torch.equal(result["state"][k], snapshots[4][k]) for k in snapshots[4])  # it did train on
    model = build_model("base-cnn-small", **KWARGS)
    model.load_state_dict(result["state"])
    np.testing.assert_array_equal(result["val_predictions"],
                                  loop.score(model, beats[0][60:], beats[1][60:])["predictions"])
    best_so_far = [max(range(1, e + 1), key=lambda k: (figures[k - 1][0], -figures[k - 1][1], -k))
                   for e in range(1, 5)]
    assert states == [(2, e, e, best_so_far[e - 1]) for e in range(1, 5)]
    assert len(lines) == 4
    for epoch, line in enumerate(lines, start=1):
        assert line.startswith(f"fold 3/5 epoch {epoch:3d}/4  train loss ")
        assert line.endswith("s  *" if epoch in marked else "s"), line  # "<seconds>s", then the mark
        assert f"val loss {figures[epoch - 1][1]:.4f} acc {figures[epoch - 1][0]:.4f}" in line


class _Bar:
    """Stands in for tqdm: records how the loop asks for its progress bar."""

    made = []

    def __init__(self, iterable, **kwargs):
        self.iterable, self.kwargs, self.postfix = iterable, kwargs, []
        _Bar.made.append(self)

    def __iter__(self):
        return iter(self.iterable)

    def set_postfix(self, **kwargs):
        self.postfix.append(kwargs)


@pytest.mark.parametrize("progress, rank, tag, shown", [(True, 0, "", True), (False, 0, "", False),
                                                        (True, 1, "fold 2/5", False)])
def test_progress_bars(beats, monkeypatch, progress, rank, tag, shown):
    """A bar per epoch on stderr (left to tqdm to hide off a terminal) only with progress on, on rank 0."""
    monkeypatch.setattr(loop, "tqdm", _Bar)
    _Bar.made = []
    dist = _FakeWorld(rank) if rank else Distributed()
    if rank:
        monkeypatch.setattr(loop, "rank_batches", lambda n, size, seed, epoch, dist: list(
            loop.batches(n, size, torch.Generator().manual_seed(seed))))
        monkeypatch.setattr(_FakeWorld, "sum", lambda self, *values: list(values))
        monkeypatch.setattr(_FakeWorld, "sync_buffers", lambda self, model: None)
        monkeypatch.setattr(loop, "DistributedDataParallel", lambda model, **kwargs: model)
    loop.fit_member(_job(beats, progress=progress, tag=tag, dist=dist))
    assert [bar.kwargs for bar in _Bar.made] == [
        {"desc": f"{tag or 'base-cnn-small'} epoch {epoch}/2", "leave": False, "disable": None if shown else True,
         "file": sys.stderr} for epoch in (1, 2)]
    assert [len(bar.iterable) for bar in _Bar.made] == [2, 2]  # 60 beats in batches of 32
    postfix = _Bar.made[0].postfix
    assert len(postfix) == 2 and all(set(p) == {"loss"} and len(p["loss"].split(".")[1]) == 4 for p in postfix)


def test_augmentation_draws_from_the_loops_generator(beats):
    """Shuffling and augmentation draw from the member's own generator (reproducible per seed)."""
    states = {}
    for jitter in (0.0, 0.05):
        loop.fit_member(_job(beats, epochs=1, jitter=jitter,
                             on_epoch_end=lambda s, j=jitter: states.setdefault(j, s.generator.get_state())))
    shuffled_only = torch.Generator().manual_seed(0)
    torch.randperm(60, generator=shuffled_only)
    assert torch.equal(states[0.0], shuffled_only.get_state())
    assert not torch.equal(states[0.05], states[0.0])


def test_log_lines_without_a_tag(beats):
    lines = []
    loop.fit_member(_job(beats, epochs=1, log=lines.append))
    assert len(lines) == 1 and lines[0].startswith("epoch   1/1  train loss ") and lines[0].endswith("s  *")


def _resume_state(state: loop.EpochState) -> dict:
    """What resume.save_last stores, kept in memory."""
    return copy.deepcopy({
        "epoch": state.epoch, "model_state": state.model.state_dict(), "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(), "scaler": state.scaler.state_dict(),
        "generator": state.generator.get_state(), "torch_rng": torch.get_rng_state(), "history": state.history,
        "best_epoch": state.best["epoch"], "best_key": list(state.best["key"]), "best_state": state.best["state"]})


def test_resuming_after_an_epoch_gives_the_uninterrupted_run(beats):
    """Augmentation (the loop's generator), dropout (torch's RNG), Adam and the cosine schedule all resume."""
    settings = dict(epochs=4, lr=3e-3, jitter=0.05, scale=0.1, model_kwargs={**KWARGS, "dropout": 0.3})
    saved = {}
    full = loop.fit_member(_job(beats, **settings, on_epoch_end=lambda s: saved.setdefault(s.epoch,
                                                                                            _resume_state(s))))
    resumed_epochs = []
    resumed = loop.fit_member(_job(beats, **settings, resume_state=saved[2],
                                   on_epoch_end=lambda s: resumed_epochs.append(s.epoch)))
    assert resumed_epochs == [3, 4]
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in full["history"]]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in resumed["history"]] == strip
    assert resumed["best_epoch"] == full["best_epoch"] and resumed["val"] == full["val"]
    assert all(torch.equal(resumed["state"][k], full["state"][k]) for k in full["state"])
    np.testing.assert_array_equal(resumed["val_predictions"], full["val_predictions"])
    assert len({r["train_loss"] for r in full["history"]}) == 4


def test_weight_decay_reaches_the_optimiser(beats):
    plain = loop.fit_member(_job(beats, epochs=1, lr=1e-2))
    decayed = loop.fit_member(_job(beats, epochs=1, lr=1e-2, weight_decay=1.0))
    assert plain["history"][0]["train_loss"] != decayed["history"][0]["train_loss"]
    assert not all(torch.equal(plain["state"][k], decayed["state"][k]) for k in plain["state"])


def test_restore_returns_the_next_epoch_and_the_best_so_far(beats):
    state = {"epoch": 5, "history": [{"epoch": 1}], "best_epoch": 4, "best_key": [0.75, -0.5], "best_state": {"w": 1}}
    calls = []

    class Part:
        def __init__(self, name):
            self.name = name

        def load_state_dict(self, value):
            calls.append((self.name, value))

    for name in ("model_state", "optimizer", "scheduler", "scaler"):
        state[name] = name + " value"
    generator = torch.Generator()
    state["generator"] = torch.Generator().manual_seed(7).get_state()
    state["torch_rng"] = torch.Generator().manual_seed(8).get_state()
    history, best = [], {"epoch": 0, "key": (-1.0, -math.inf), "state": None}
    rng = torch.get_rng_state()
    try:
        assert loop.restore(state, Part("model"), Part("optimizer"), Part("scheduler"), Part("scaler"), generator,
                            history, best) == 6
        assert torch.equal(torch.get_rng_state(), state["torch_rng"])
    finally:
        torch.set_rng_state(rng)
    assert calls == [("model", "model_state value"), ("optimizer", "optimizer value"),
                     ("scheduler", "scheduler value"), ("scaler", "scaler value")]
    assert torch.equal(generator.get_state(), state["generator"])
    assert history == [{"epoch": 1}] and best == {"epoch": 4, "key": (0.75, -0.5), "state": {"w": 1}}


def test_a_refit_trains_the_given_epochs_of_the_same_schedule_and_keeps_the_last(beats):
    """train --refit: no validation beats; ``refit_epochs`` epochs of the cfg.epochs cosine schedule, last kept."""
    snapshots, lines = {}, []
    x, y = beats
    job = loop.MemberJob(TrainConfig(model="base-cnn-small", epochs=4, seed=0, progress=False, batch_size=32,
                                     lr=1e-2), 0, dict(KWARGS), x, y, np.arange(80), np.arange(0), torch.device("cpu"),
                         refit_epochs=2, log=lines.append,
                         on_epoch_end=lambda s: snapshots.setdefault(s.epoch, copy.deepcopy(s.model.state_dict())))
    result = loop.fit_member(job)
    assert [r["epoch"] for r in result["history"]] == [1, 2] and result["best_epoch"] == 2
    assert result["history"][1]["lr"] == pytest.approx(1e-2 * (1 + math.cos(math.pi / 4)) / 2)
    assert all(math.isnan(r[k]) for r in result["history"] for k in ("val_loss", "val_accuracy", "val_macro_f1"))
    assert all(math.isnan(v) for v in result["val"].values()) and set(result["val"]) == {"accuracy", "macro_f1",
                                                                                         "loss"}
    assert result["val_predictions"].shape == (0,) and result["val_predictions"].dtype == np.int64
    assert all(torch.equal(result["state"][k], snapshots[2][k]) for k in snapshots[2])
    assert not all(torch.equal(result["state"][k], snapshots[1][k]) for k in snapshots[1])
    assert [line.split("  train")[0] for line in lines] == ["epoch   1/4", "epoch   2/4"]
    assert all(line.endswith("s  *") and "val loss nan acc nan macro-F1 nan" in line for line in lines)


def test_a_closed_form_refit_fits_all_beats_and_scores_nothing(beats):
    lines = []
    x, y = beats
    job = loop.MemberJob(TrainConfig(model="minirocket", seed=0, progress=False), 0, dict(KWARGS), x, y,
                         np.arange(80), np.arange(0), torch.device("cpu"), refit_epochs=1, log=lines.append)
    result = loop.fit_member(job)
    torch.manual_seed(0)
    model = build_model("minirocket", **KWARGS)
    info = model.fit_closed_form(x, y, class_balance=0.0, seed=0)
    assert result["best_epoch"] is None and result["history"] == [] and result["val"] == {} and lines == []
    assert result["fit"] == {k: v for k, v in info.items() if isinstance(v, (int, float, str))}
    assert result["val_predictions"].shape == (0,) and result["val_predictions"].dtype == np.int64
    assert all(torch.equal(result["state"][k], v) for k, v in model.state_dict().items())


def test_closed_form_models_are_fitted_once(beats):
    lines = []
    job = _job(beats, model="minirocket", class_balance=0.5, member=1, log=lines.append, tag="m")
    result = loop.fit_member(job)
    assert result["best_epoch"] is None and result["history"] == []
    torch.manual_seed(1000)
    model = build_model("minirocket", **KWARGS)
    info = model.fit_closed_form(beats[0][:60], beats[1][:60], class_balance=0.5, seed=1000)
    assert result["fit"] == {k: v for k, v in info.items() if isinstance(v, (int, float, str))}  # scalars only
    assert "alpha" in result["fit"] and any(not isinstance(v, (int, float, str)) for v in info.values())
    assert all(torch.equal(result["state"][k], v) for k, v in model.state_dict().items())
    val = loop.score(model, beats[0][60:], beats[1][60:])
    assert result["val"] == {"accuracy": val["accuracy"], "macro_f1": val["macro_f1"], "loss": val["loss"]}
    np.testing.assert_array_equal(result["val_predictions"], val["predictions"])
    assert len(lines) == 1 and lines[0].startswith("m closed-form fit {'alpha': ")
    assert lines[0].endswith(f": val loss {val['loss']:.4f} acc {val['accuracy']:.4f} macro-F1 {val['macro_f1']:.4f}")
    plain = []
    loop.fit_member(_job(beats, model="minirocket", log=plain.append))
    assert plain[0].startswith("closed-form fit {")


class _FakeWorld(Distributed):
    """Two ranks as far as the loop can tell, in a one-process gloo group."""

    def __init__(self, rank):
        self.world, self.rank, self.local_rank = 2, rank, 0


@pytest.fixture
def gloo(tmp_path):
    torch.distributed.init_process_group("gloo", init_method=(tmp_path / "store").as_uri(), rank=0, world_size=1)
    yield
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("rank", [0, 1])
def test_distributed_members_train_on_their_shard(beats, gloo, rank):
    epochs = []
    result = loop.fit_member(_job(beats, dist=_FakeWorld(rank), on_epoch_end=lambda s: epochs.append(s.epoch)))
    assert epochs == ([1, 2] if rank == 0 else [])  # only rank 0 writes the resumable checkpoint
    assert [r["epoch"] for r in result["history"]] == [1, 2]
    shard = sum(len(b) for b in loop.rank_batches(60, 32, 0, 1, _FakeWorld(rank)))
    assert shard == 30
    assert (result["history"][0]["train_accuracy"] * shard) == pytest.approx(
        round(result["history"][0]["train_accuracy"] * shard))


def test_shift_augmentation_moves_beats_both_ways_by_up_to_shift_samples():
    """A ramp shifted by k samples reads k less at its middle: the offsets drawn are every integer from -shift to
    +shift, about equally often ("largest time shift in samples, either direction")."""
    from ecgcnn.training.augment import Augment, augment_batch  # noqa: PLC0415

    ramp = torch.arange(140, dtype=torch.float32).repeat(2100, 1, 1)
    shifted = augment_batch(ramp, Augment(shift=3), torch.Generator().manual_seed(0))
    offsets = (ramp[:, 0, 70] - shifted[:, 0, 70]).round().long()
    torch.testing.assert_close(shifted[:, 0, 70], ramp[:, 0, 70] - offsets.float())  # whole samples
    counts = torch.bincount(offsets + 3, minlength=7)
    assert len(counts) == 7 and counts.min() > 0.8 * 300 and counts.max() < 1.2 * 300  # 2,100 beats / 7 offsets


def test_an_ensembles_validation_loss_is_the_mean_over_its_beats():
    """Members scored on their own folds: the loss is weighted by each fold's beats (worked by hand), accuracy and
    macro-F1 are those of the out-of-fold predictions together."""
    from ecgcnn.training.run import validation_summary  # noqa: PLC0415

    y = np.array([0, 1, 0, 1])
    finished = [{"val": {"loss": 1.0, "accuracy": 0.0}, "val_predictions": np.array([0, 1, 1])},
                {"val": {"loss": 4.0, "accuracy": 0.0}, "val_predictions": np.array([1])}]
    summary = validation_summary(finished, y, [np.array([0, 1, 2]), np.array([3])], num_classes=2)
    assert summary["loss"] == pytest.approx((3 * 1.0 + 1 * 4.0) / 4)
    assert summary["accuracy"] == pytest.approx(3 / 4)  # truth 0, 1, 0, 1 against 0, 1, 1, 1
    assert summary["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)  # F1 of class 0: 2/3, of class 1: 4/5
    one = [{"val": {"loss": 2.5, "accuracy": 0.5}, "val_predictions": np.array([0])}]
    assert validation_summary(one, y, [np.array([0])], num_classes=2) == {"loss": 2.5, "accuracy": 0.5}


# ------------------------------------------------------------------------------------------------ min_steps

def test_batches_per_epoch_counts_what_batches_yields():
    for n in range(0, 70):
        for size in (2, 3, 32, 64):
            yielded = sum(1 for _ in loop.batches(n, size, torch.Generator().manual_seed(0)))
            assert loop.batches_per_epoch(n, size) == yielded, (n, size)


def test_min_steps_adds_epochs_to_a_small_training_set_and_stretches_the_schedule(beats):
    """60 training beats in batches of 32 are 2 steps an epoch: 7 steps need 4 epochs (ceil(7 / 2)), cosine over 4."""
    lines = []
    result = loop.fit_member(_job(beats, epochs=1, min_steps=7, lr=1e-2, log=lines.append))
    assert [r["epoch"] for r in result["history"]] == [1, 2, 3, 4] and result["epochs"] == 4
    expected_lr = [1e-2 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert [r["lr"] for r in result["history"]] == pytest.approx(expected_lr)
    assert [line.split("  train")[0] for line in lines] == [f"epoch   {e}/4" for e in range(1, 5)]
    # enough steps already: the epoch count stands
    assert loop.fit_member(_job(beats, epochs=3, min_steps=6, lr=1e-30))["epochs"] == 3


def test_a_refit_keeps_the_schedule_of_the_run_that_chose_its_epochs(beats):
    """All 80 beats are 3 steps an epoch, so min_steps alone would give a 3-epoch schedule; the chosen run's 4 stay."""
    x, y = beats
    job = loop.MemberJob(TrainConfig(model="base-cnn-small", epochs=1, min_steps=9, seed=0, progress=False,
                                     batch_size=32, lr=1e-2), 0, dict(KWARGS), x, y, np.arange(80), np.arange(0),
                         torch.device("cpu"), refit_epochs=2, schedule_epochs=4)
    result = loop.fit_member(job)
    assert [r["epoch"] for r in result["history"]] == [1, 2]
    assert result["history"][1]["lr"] == pytest.approx(1e-2 * (1 + math.cos(math.pi / 4)) / 2)

"""Tail-swapped training copies (``--tail-swap``): the head is the beat's own, the tail another training beat's.

Oracles, computed here from the inputs: every copy's first ``at`` samples are an affine image of its beat's (the
copies are z-normalised again), its sample-to-sample steps from ``at`` on are an affine image of exactly one other
beat's steps, and that beat sits on the same training side; the copy is flat across the join."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcnn.training.augment import add_tail_swaps

pytestmark = pytest.mark.fast


def _affine_match(a: np.ndarray, b: np.ndarray) -> bool:
    """``a == s * b + o`` for some s > 0 and o (to float32 precision)."""
    design = np.stack([b, np.ones_like(b)], axis=1)
    (s, o), *_ = np.linalg.lstsq(design, a, rcond=None)
    return s > 0 and np.allclose(a, s * b + o, atol=1e-4 * (1 + np.abs(a).max()))


def _steps_source(copy_steps: np.ndarray, beats: np.ndarray, at: int) -> list[int]:
    """Which beats' steps from ``at`` on the copy's steps are a positive multiple of."""
    return [j for j in range(len(beats)) if _affine_match(copy_steps, np.diff(beats[j, at:]))]


@pytest.mark.parametrize("at", [3, 30, 60])
def test_each_training_beat_gets_one_copy_with_its_head_and_another_training_beats_tail(at):
    rng = np.random.default_rng(3)
    beats = np.cumsum(rng.normal(size=(24, 80)), axis=1) * rng.uniform(0.5, 3, (24, 1)) + rng.normal(size=(24, 1))
    labels = np.arange(24) % 3
    splits = [(np.arange(0, 16), np.arange(16, 24)), (np.arange(8, 24), np.arange(0, 8))]

    x, y, extended = add_tail_swaps(beats, labels, splits, at, seed=0)

    assert x.shape == (24 + 16 + 16, 80) and np.allclose(x.mean(1), 0, atol=1e-5)
    assert np.allclose(x.std(1, ddof=1), 1, atol=1e-4)
    assert np.allclose(x[:24], (beats - beats.mean(1, keepdims=True)) / beats.std(1, ddof=1, keepdims=True),
                       atol=1e-5)  # the beats themselves, z-normalised
    for (train, val), (new_train, new_val) in zip(splits, extended, strict=True):
        np.testing.assert_array_equal(new_val, val)  # validation beats stay beats that exist
        np.testing.assert_array_equal(new_train[:len(train)], train)
        copies = new_train[len(train):]
        assert len(copies) == len(train) and copies.min() >= 24
        for beat, row in zip(train, copies, strict=True):
            assert y[row] == labels[beat]  # the label stays with the head
            assert _affine_match(x[row, :at], beats[beat, :at])
            assert np.isclose(x[row, at], x[row, at - 1], atol=1e-5)  # flat across the join
            sources = _steps_source(np.diff(x[row, at:]), beats, at)
            assert len(sources) == 1 and sources[0] != beat and sources[0] in set(train)


def test_zero_adds_nothing_and_a_single_training_beat_gets_no_copy():
    beats = np.random.default_rng(0).normal(size=(4, 20))
    labels = np.array([0, 1, 0, 1])
    splits = [(np.array([0, 1]), np.array([2, 3]))]
    x, y, extended = add_tail_swaps(beats, labels, splits, 0, seed=0)
    assert x is beats and y is labels and extended is splits
    x, y, extended = add_tail_swaps(beats, labels, [(np.array([0]), np.array([1, 2, 3]))], 5, seed=0)
    assert len(x) == 4 and list(extended[0][0]) == [0]


def test_copies_depend_on_the_seed_only():
    beats = np.random.default_rng(1).normal(size=(30, 40))
    labels, splits = np.zeros(30, int), [(np.arange(30), np.arange(0))]
    a = add_tail_swaps(beats, labels, splits, 10, seed=4)[0]
    assert np.array_equal(a, add_tail_swaps(beats, labels, splits, 10, seed=4)[0])
    assert not np.array_equal(a, add_tail_swaps(beats, labels, splits, 10, seed=5)[0])


def test_a_swap_point_without_a_head_or_a_tail_is_refused():
    beats, labels = np.zeros((4, 20)), np.zeros(4, int)
    for at in (20, 19, 25):
        with pytest.raises(ValueError, match=f"tail swap at sample {at}: expected 1 to 18"):
            add_tail_swaps(beats, labels, [(np.arange(4), np.arange(0))], at, seed=0)

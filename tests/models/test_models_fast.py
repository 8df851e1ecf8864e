"""Every architecture against a reference written here from its description, not from its code.

* The four CNNs: a forward pass written with ``torch.nn.functional`` alone from each docstring's layer list, reading
  the module's weights by position (convolutions, batch norms, linears in order), with batch-norm statistics set to
  random values so that a skipped or misplaced layer shows; the TCN's weight norm (``g * v / |v|``) and its causal
  padding (zeros on the left only) are written here too.
* Hydra: the counts in NumPy from the paper (every group's competition at every time step), an all-zero beat whose
  answer is known (every kernel ties), the sparse scaling and the dilations by a loop over powers of two.
* MiniRocket: the dilations and features per dilation as the paper's reference code shares them out (written here
  independently), the 84 kernels from their definition, PPV in NumPy, and biases that are the paper's quantiles of
  one training beat's convolution output.
* The ridge head: a weighted ridge solved here with the normal equations, leave-one-out by refitting without each
  beat, and scikit-learn's ``RidgeClassifierCV``.

Fast (seconds): part of the mutation tier (docs/mutation.md).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import RidgeClassifierCV
from torch import nn
from torch.nn.utils import parametrize

from ecgcnn.models import (
    _registry,
    _ridge,
    build_model,
    count_parameters,
    fold_for_export,
    hydra,
    list_models,
    model_accepts,
)
from ecgcnn.models._ridge import DEFAULT_ALPHAS, class_weights, fit_head, one_vs_rest_targets, ridge_loo_fit
from ecgcnn.models.hydra import hydra_dilations
from ecgcnn.models.minirocket import minirocket_dilations, minirocket_kernels

pytestmark = pytest.mark.fast

CNNS = ("base-cnn", "base-cnn-small", "vgg", "inception", "tcn")


def _of(model: nn.Module, kind: type) -> list:
    return [m for m in model.modules() if isinstance(m, kind)]


def _randomise_batch_norms(model: nn.Module, seed: int = 0) -> None:
    """Running statistics and affine parameters away from (0, 1), so that every batch norm changes its input."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in _of(model, nn.BatchNorm1d):
            n = bn.num_features
            bn.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            bn.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            bn.weight.copy_(torch.rand(n, generator=g) + 0.5)
            bn.bias.copy_(torch.randn(n, generator=g) * 0.3)


def _bn(h, bn):
    return (h - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + 1e-5) * bn.weight[:, None] \
        + bn.bias[:, None]


def _same_conv(h, conv, bias=True):
    k = conv.weight.shape[-1]
    return F.conv1d(h, conv.weight, conv.bias if bias else None, padding=k // 2)


# ------------------------------------------------------------------------------------------------------ registry

def test_registry_refuses_a_name_twice_and_records_how_a_model_was_built(monkeypatch):
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    _registry.register_model("probe")(lambda **kwargs: nn.Identity())
    with pytest.raises(ValueError) as error:
        _registry.register_model("probe")(nn.Identity)
    assert str(error.value) == "model 'probe' registered twice"
    assert list_models()[-1] == "probe"
    model = build_model("probe", widths=3)
    assert model.model_name == "probe"
    assert model.init_kwargs == {"num_classes": 5, "in_channels": 1, "dropout": 0.3, "widths": 3}
    model = build_model("base-cnn-small", num_classes=3, dropout=0.1, in_channels=2)
    assert model.model_name == "base-cnn-small"  # a size variant keeps its registered name
    assert model.init_kwargs == {"num_classes": 3, "in_channels": 2, "dropout": 0.1}
    with pytest.raises(ValueError) as error:
        build_model("resnet")
    assert str(error.value) == f"unknown model 'resnet'; known models: {', '.join(list_models())}"


def test_model_accepts_reads_the_constructor():
    assert model_accepts("hydra", "seed") and model_accepts("minirocket", "input_length")
    assert not model_accepts("base-cnn", "seed") and not model_accepts("tcn", "members")
    assert model_accepts("ensemble", "members")


def test_every_architecture_has_the_uniform_defaults():
    """The registry's contract: ``(num_classes=5, in_channels=1, dropout=0.3)`` when built without arguments."""
    torch.manual_seed(0)
    for name in list_models():
        model = _registry._REGISTRY[name]().eval()  # the architecture's own defaults, not build_model's
        with torch.no_grad():
            assert model(torch.randn(2, 1, 140)).shape == (2, 5), name
        assert all(d.p == 0.3 for d in _of(model, nn.Dropout)), name


def test_count_parameters_counts_weights_not_buffers():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    assert count_parameters(model) == 3 * 4 + 4 + 4 + 4  # the running statistics are buffers


def test_fold_for_export_is_an_eval_copy_with_plain_weights():
    torch.manual_seed(0)
    model = build_model("tcn", dropout=0.4)  # training mode: the copy must not be
    x = torch.randn(2, 1, 140)
    with torch.no_grad():
        folded = fold_for_export(model)
        assert not folded.training and model.training
        assert folded.init_kwargs == model.init_kwargs and folded.model_name == "tcn"
        assert not any(parametrize.is_parametrized(m) for m in folded.modules())
        assert any(parametrize.is_parametrized(m) for m in model.modules())  # the original is left alone
        torch.testing.assert_close(folded(x), model.eval()(x), atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------------------------------- CNNs

def _base_cnn_reference(model, x):
    """Conv(k7)→BN→ReLU→MaxPool2; Conv(k5)→BN→ReLU→MaxPool2; Conv(k3)→BN→ReLU; mean over time; FC→ReLU→FC."""
    convs, bns, fcs = _of(model, nn.Conv1d), _of(model, nn.BatchNorm1d), _of(model, nn.Linear)
    h = x
    for i, (conv, bn) in enumerate(zip(convs, bns, strict=True)):
        h = F.relu(_bn(_same_conv(h, conv), bn))
        if i < 2:
            h = F.max_pool1d(h, 2)
    h = F.relu(F.linear(h.mean(-1), fcs[0].weight, fcs[0].bias))
    return F.linear(h, fcs[1].weight, fcs[1].bias)


def _vgg_reference(model, x):
    """VGG11's 1-1-2-2-2 convs (k3, same padding) each →BN→ReLU, MaxPool2 after each block; GAP; FC→ReLU→FC→ReLU→FC."""
    convs, bns, fcs = _of(model, nn.Conv1d), _of(model, nn.BatchNorm1d), _of(model, nn.Linear)
    h, layer = x, 0
    for convs_in_block in (1, 1, 2, 2, 2):
        for _ in range(convs_in_block):
            h = F.relu(_bn(_same_conv(h, convs[layer]), bns[layer]))
            layer += 1
        h = F.max_pool1d(h, 2)
    h = h.mean(-1)
    h = F.relu(F.linear(h, fcs[0].weight, fcs[0].bias))
    h = F.relu(F.linear(h, fcs[1].weight, fcs[1].bias))
    return F.linear(h, fcs[2].weight, fcs[2].bias)


def _inception_reference(model, x):
    """Six modules (bottleneck 1x1 → k9/k19/k39; MaxPool3 → 1x1; concat → BN → ReLU), a 1x1+BN shortcut added
    after modules 3 and 6 (then ReLU); GAP; FC→ReLU→FC."""
    convs, bns, fcs = _of(model, nn.Conv1d), _of(model, nn.BatchNorm1d), _of(model, nn.Linear)
    # module order: stage1's three modules (5 convs, 1 BN each), shortcut1 (1 conv, 1 BN), stage2, shortcut2
    conv_at = {"stage1": 0, "shortcut1": 15, "stage2": 16, "shortcut2": 31}
    bn_at = {"stage1": 0, "shortcut1": 3, "stage2": 4, "shortcut2": 7}

    def module(h, c, b):
        z = F.conv1d(h, convs[c].weight)
        branches = [F.conv1d(z, convs[c + j].weight, padding=convs[c + j].weight.shape[-1] // 2) for j in (1, 2, 3)]
        pooled = F.conv1d(F.max_pool1d(h, 3, stride=1, padding=1), convs[c + 4].weight)
        return F.relu(_bn(torch.cat(branches + [pooled], dim=1), bns[b]))

    for stage, shortcut in (("stage1", "shortcut1"), ("stage2", "shortcut2")):
        h = x
        for m in range(3):
            h = module(h, conv_at[stage] + 5 * m, bn_at[stage] + m)
        x = F.relu(h + _bn(F.conv1d(x, convs[conv_at[shortcut]].weight), bns[bn_at[shortcut]]))
    h = F.relu(F.linear(x.mean(-1), fcs[0].weight, fcs[0].bias))
    return F.linear(h, fcs[1].weight, fcs[1].bias)


def _weight_normed(conv):
    g, v = conv.parametrizations.weight.original0, conv.parametrizations.weight.original1
    return g * v / v.norm(dim=(1, 2), keepdim=True)


def _tcn_reference(model, x, dilations=(1, 2, 4, 8)):
    """Per dilation: two weight-normed causal convs (zeros on the left only) each →ReLU, + residual (1x1 conv where
    the width changes) → ReLU; GAP; FC→ReLU→FC."""
    fcs = _of(model, nn.Linear)
    for module, d in zip(model.features, dilations, strict=True):
        k = module.conv1.parametrizations.weight.original1.shape[-1]
        out = x
        for conv in (module.conv1, module.conv2):
            out = F.relu(F.conv1d(F.pad(out, ((k - 1) * d, 0)), _weight_normed(conv), conv.bias, dilation=d))
        residual = x if isinstance(module.downsample, nn.Identity) else F.conv1d(
            x, module.downsample.weight, module.downsample.bias)
        x = F.relu(out + residual)
    h = F.relu(F.linear(x.mean(-1), fcs[0].weight, fcs[0].bias))
    return F.linear(h, fcs[1].weight, fcs[1].bias)


REFERENCES = {"base-cnn": _base_cnn_reference, "base-cnn-small": _base_cnn_reference, "vgg": _vgg_reference,
              "inception": _inception_reference, "tcn": _tcn_reference}
# (out channels, in channels, kernel) of every convolution, as the docstrings list them (1 input channel)
CONV_SHAPES = {
    "base-cnn": [(64, 1, 7), (128, 64, 5), (256, 128, 3)],
    "base-cnn-small": [(32, 1, 7), (64, 32, 5), (128, 64, 3)],
    "vgg": [(64, 1, 3), (128, 64, 3), (256, 128, 3), (256, 256, 3), (512, 256, 3), (512, 512, 3), (512, 512, 3),
            (512, 512, 3)],
    "inception": [s for first in (1, 128) for s in  # stage1 (1 input channel), shortcut1, stage2, shortcut2
                  [(32, first, 1), (32, 32, 9), (32, 32, 19), (32, 32, 39), (32, first, 1)]
                  + [(32, 128, 1), (32, 32, 9), (32, 32, 19), (32, 32, 39), (32, 128, 1)] * 2
                  + [(128, first, 1)]],
}
LINEAR_SHAPES = {"base-cnn": [(128, 256), (5, 128)], "base-cnn-small": [(64, 128), (5, 64)],
                 "vgg": [(512, 512), (512, 512), (5, 512)], "inception": [(64, 128), (5, 64)],
                 "tcn": [(32, 64), (5, 32)]}
DROPOUTS = {"base-cnn": 4, "base-cnn-small": 4, "vgg": 6, "inception": 1, "tcn": 5}  # a TCN module uses its one twice


@pytest.mark.parametrize("name", CNNS)
def test_cnn_forward_is_the_described_layers(name):
    torch.manual_seed(1)
    model = build_model(name).eval()
    _randomise_batch_norms(model)
    x = torch.randn(3, 1, 140)
    with torch.no_grad():
        torch.testing.assert_close(model(x), REFERENCES[name](model, x), atol=1e-4, rtol=1e-4)
        other = torch.randn(2, 1, 97)  # global average pooling: any length that survives the pooling
        torch.testing.assert_close(model(other), REFERENCES[name](model, other), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", CNNS)
def test_cnn_shapes_classes_channels_and_dropout(name):
    model = build_model(name, num_classes=3, in_channels=2, dropout=0.45)
    if name in CONV_SHAPES:
        assert [tuple(c.weight.shape) for c in _of(build_model(name), nn.Conv1d)] == CONV_SHAPES[name]
    assert [tuple(f.weight.shape) for f in _of(build_model(name), nn.Linear)] == LINEAR_SHAPES[name]
    assert [round(d.p, 6) for d in _of(model, nn.Dropout)] == [0.45] * DROPOUTS[name]
    assert model(torch.randn(4, 2, 140)).shape == (4, 3)
    assert _of(model, nn.Linear)[-1].out_features == 3


def test_inception_with_other_filters_is_the_described_layers():
    model = build_model("inception", filters=8).eval()
    assert [tuple(f.weight.shape) for f in _of(model, nn.Linear)] == [(64, 32), (5, 64)]  # width 4 * 8
    assert {tuple(c.weight.shape)[:2] for c in _of(model, nn.Conv1d)} <= {(8, 1), (8, 8), (8, 32), (32, 1), (32, 32)}
    _randomise_batch_norms(model)
    x = torch.randn(2, 1, 70)
    with torch.no_grad():
        torch.testing.assert_close(model(x), _inception_reference(model, x), atol=1e-4, rtol=1e-4)


def test_tcn_widths_and_residual_projection():
    model = build_model("tcn")
    downsamples = [m.downsample for m in model.features]
    assert isinstance(downsamples[0], nn.Conv1d) and tuple(downsamples[0].weight.shape) == (64, 1, 1)
    assert all(isinstance(d, nn.Identity) for d in downsamples[1:])
    assert [m.chomp for m in model.features] == [2, 4, 8, 16]
    wide = build_model("tcn", channels=16, kernel_size=5, dilations=(1, 3))
    assert [m.chomp for m in wide.features] == [4, 12]
    _randomise_batch_norms(wide)
    x = torch.randn(2, 1, 60)
    with torch.no_grad():
        torch.testing.assert_close(wide.eval()(x), _tcn_reference(wide, x, dilations=(1, 3)), atol=1e-5, rtol=1e-5)


def test_ensemble_is_the_mean_of_its_members_and_refuses_nesting():
    torch.manual_seed(0)
    ensemble = build_model("ensemble", num_classes=3, dropout=0.2, in_channels=2,
                           members=["base-cnn-small", "tcn", "tcn"]).eval()
    assert [type(m).__name__ for m in ensemble.members] == ["BaseCNN", "TCN", "TCN"]
    assert all(d.p == 0.2 for d in _of(ensemble, nn.Dropout))
    x = torch.randn(2, 2, 140)
    with torch.no_grad():
        expected = sum(m(x) for m in ensemble.members) / 3
        assert expected.shape == (2, 3)
        torch.testing.assert_close(ensemble(x), expected)
    for members in ([], ["tcn", "ensemble"]):
        with pytest.raises(ValueError) as error:
            build_model("ensemble", members=members)
        assert str(error.value) == f"ensemble members must be one or more base architectures, got {members}"
    assert len(build_model("ensemble").members) == 1  # the default: one base-cnn


# ---------------------------------------------------------------------------------------------------------- Hydra

def _hydra_dilations_by_loop(length):
    """Powers of two d with (9 - 1) * d <= length - 1."""
    out, d = [], 1
    while 8 * d <= length - 1:
        out.append(d)
        d *= 2
    return out


def _hydra_counts(model, x, dx=None):
    """The paper's counts in NumPy, in the model's feature order (per dilation, on the beat then on its first
    difference: the soft counts of kernel slot 0..k-1 over all groups, then the hard counts). ``dx``: the second
    branch's input when it is given instead of the beats' own difference."""
    k, feats = model.k, []
    dx = np.diff(x, axis=-1) if dx is None else dx
    for i, d in enumerate(model.dilations):
        for source, inp in (("x", x), ("dx", dx)):
            w = getattr(model, f"kernels_{i}_{source}").double().numpy()  # (groups * k, channels, 9)
            groups, length = w.shape[0] // k, inp.shape[-1]
            xp = np.pad(inp, ((0, 0), (0, 0), (4 * d, 4 * d)))
            z = sum(np.einsum("oc,bct->bot", w[:, :, m], xp[:, :, m * d:m * d + length]) for m in range(9))
            z = z.reshape(len(x), k, groups, length)  # channel j * groups + h: kernel j of group h
            soft = np.where(z == z.max(axis=1, keepdims=True), z, 0.0).sum(-1)
            hard = (z == z.min(axis=1, keepdims=True)).sum(-1).astype(np.float64)
            feats.append(np.concatenate([soft.reshape(len(x), -1), hard.reshape(len(x), -1)], axis=1))
    return np.concatenate(feats, axis=1)


@pytest.mark.parametrize("length", [9, 16, 17, 50, 140, 300])
def test_hydra_dilations_and_feature_count(length):
    assert hydra_dilations(length) == _hydra_dilations_by_loop(length)
    model = build_model("hydra", k=4, g=6, input_length=length)
    assert model.dilations == _hydra_dilations_by_loop(length)
    assert model.num_features == len(model.dilations) * 6 * 4 * 2
    assert model.head.in_features == model.num_features and model.head.out_features == 5
    assert model.feature_mean.shape == model.feature_std.shape == (model.num_features,)


def test_hydra_refusals():
    for kwargs, text in (({"k": 1}, "k=1, g=64"), ({"g": 1}, "k=8, g=1"), ({"g": 7}, "k=8, g=7"),
                         ({"g": 0}, "k=8, g=0")):
        with pytest.raises(ValueError) as error:
            build_model("hydra", **kwargs)
        assert str(error.value) == f"hydra needs k >= 2 and an even g >= 2, got {text}"
    with pytest.raises(ValueError) as error:
        build_model("hydra", input_length=8)
    assert str(error.value) == "hydra needs beats of at least 9 samples, got 8"
    assert build_model("hydra", k=2, g=2, input_length=9).num_features == 1 * 2 * 2 * 2  # the smallest allowed


def test_hydra_kernels_are_centred_unit_l1_and_seeded():
    model = build_model("hydra", k=4, g=6, seed=3)
    names = [f"kernels_{i}_{s}" for i in range(len(model.dilations)) for s in ("x", "dx")]
    assert sorted(n for n in model.state_dict() if n.startswith("kernels_")) == sorted(names)
    for name in names:
        w = getattr(model, name).double()
        assert w.shape == (3 * 4, 1, 9) and getattr(model, name).dtype == torch.float32
        np.testing.assert_allclose(w.sum(-1), 0.0, atol=1e-6)
        np.testing.assert_allclose(w.abs().sum(-1), 1.0, rtol=1e-6)
    assert len({getattr(model, n).numpy().tobytes() for n in names}) == len(names)  # fresh draws everywhere
    same, other = build_model("hydra", k=4, g=6, seed=3), build_model("hydra", k=4, g=6, seed=4)
    assert all(torch.equal(getattr(same, n), getattr(model, n)) for n in names)
    assert not any(torch.equal(getattr(other, n), getattr(model, n)) for n in names)
    assert model.seed == 3 and model.in_channels == 1 and (model.k, model.g, model.input_length) == (4, 6, 140)
    assert sorted(dict(model.named_parameters())) == ["head.bias", "head.weight"]
    assert not model.head.weight.any() and not model.head.bias.any()


def test_hydra_groups_read_a_random_subset_of_channels():
    model = build_model("hydra", k=3, g=20, in_channels=4, seed=1)
    again = build_model("hydra", k=3, g=20, in_channels=4, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(),
                                                   strict=True))  # the subsets are seeded too
    half, sizes = 10, []
    for name in ("kernels_0_x", "kernels_2_dx"):
        w = getattr(model, name)
        assert w.shape == (half * 3, 4, 9)
        used = w.abs().sum(-1) > 0  # (kernel, channel)
        for h in range(half):
            rows = used[[j * half + h for j in range(3)]]
            assert (rows == rows[0]).all()  # the k kernels of a group read the same channels
            sizes.append(int(rows[0].sum()))
            chosen = w[h, rows[0]].double()
            assert torch.equal(chosen, chosen[:1].expand_as(chosen))  # the same kernel on each chosen channel
            np.testing.assert_allclose(chosen.abs().sum(-1), 1.0, rtol=1e-6)  # centred, unit L1, not rescaled
            np.testing.assert_allclose(chosen.sum(-1), 0.0, atol=1e-6)
    assert sorted(set(sizes)) == [1, 2, 3, 4]  # every subset size, from one channel to all
    x = torch.randn(2, 4, 140)
    with torch.no_grad():
        np.testing.assert_allclose(model.counts(x).double().numpy(), _hydra_counts(model, x.double().numpy()),
                                   rtol=1e-4, atol=1e-4)


def test_hydra_on_two_channels_has_groups_on_either_one():
    model = build_model("hydra", k=2, g=16, in_channels=2)
    used = model.kernels_0_x.abs().sum(-1) > 0
    assert {tuple(row) for row in used.tolist()} == {(True, False), (False, True), (True, True)}


def test_hydra_and_minirocket_default_to_seed_0():
    for name, key in (("hydra", "kernels_0_x"), ("minirocket", "kernels_0")):
        kwargs = {"in_channels": 3}
        assert torch.equal(build_model(name, **kwargs).state_dict()[key],
                           build_model(name, seed=0, **kwargs).state_dict()[key])
        assert not torch.equal(build_model(name, **kwargs).state_dict()[key],
                               build_model(name, seed=1, **kwargs).state_dict()[key])


@pytest.mark.parametrize("length", [140, 61])
def test_hydra_counts_are_the_papers(length):
    model = build_model("hydra", k=8, g=16, seed=2, input_length=length)
    x = torch.randn(6, 1, length, generator=torch.Generator().manual_seed(length))
    with torch.no_grad():
        counts = model.counts(x).double().numpy()
    reference = _hydra_counts(model, x.double().numpy())
    assert counts.shape == reference.shape == (6, model.num_features)
    # float32 against float64 convolutions: a near-tie may change a winner now and then, never more
    assert np.isclose(counts, reference, rtol=1e-4, atol=1e-4).mean() >= 0.999


def test_hydra_ties_count_for_every_kernel():
    """An all-zero beat: every response is 0, so every kernel is both a winner (adding 0) and a loser (adding 1)."""
    model = build_model("hydra", k=4, g=6, input_length=40)
    with torch.no_grad():
        counts = model.counts(torch.zeros(1, 1, 40))[0]
    per_input = 2 * 4 * 6 // 2  # soft then hard counts of k * g / 2 kernels
    expected = []
    for _ in model.dilations:
        for length in (40, 39):  # the beat, then its first difference
            expected += [0.0] * (per_input // 2) + [float(length)] * (per_input // 2)
    assert counts.tolist() == expected


def test_hydra_reads_a_first_difference_given_to_it():
    """``model(x, dx)``: the second branch counts on ``dx`` (here noise, not the beats' difference), the first on
    ``x``; the logits are the fitted head on those counts, scaled, worked out in NumPy (float64 throughout)."""
    model = build_model("hydra", k=4, g=8, input_length=40, seed=0, num_classes=3)
    g = torch.Generator().manual_seed(1)
    beats, labels = torch.randn(24, 1, 40, generator=g), torch.arange(24) % 3
    model.fit_closed_form(beats, labels)
    model = model.double()
    x, dx = beats.double(), torch.randn(24, 1, 39, generator=g).double()
    counts = _hydra_counts(model, x.numpy(), dx.numpy())
    mean, std = model.feature_mean.numpy(), model.feature_std.numpy()
    features = (np.sqrt(np.maximum(counts, 0.0)) - mean) * (counts > 0) / std
    expected = features @ model.head.weight.detach().numpy().T + model.head.bias.detach().numpy()
    with torch.no_grad():
        np.testing.assert_allclose(model(x, dx).numpy(), expected, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(model(x, x[..., 1:] - x[..., :-1]).numpy(), model(x).numpy(), rtol=0, atol=0)
        assert not np.allclose(model(x, dx).numpy(), model(x).numpy())


@pytest.mark.parametrize("stats_block", [4096, 5], ids=["one-block", "blocks-of-5-beats"])
def test_hydra_scaling_is_sparse_and_fitted_on_the_beats_given(stats_block, monkeypatch):
    """sqrt(count) standardised by the mean and (population) std over the beats where the count is positive; a
    zero or negative count gives 0; a feature whose std is ~0 is divided by 1. The fit sums its statistics a block of
    beats at a time (memory); blocks of 5 here as well."""
    monkeypatch.setattr(hydra, "_STATS_BLOCK", stats_block)
    model = build_model("hydra", k=4, g=8, input_length=40, seed=0, num_classes=3)
    g = torch.Generator().manual_seed(0)
    beats = torch.randn(24, 1, 40, generator=g)
    beats[:4] = 0.0  # all-zero beats: soft counts 0, so the non-zero statistics must leave them out
    labels = torch.arange(24) % 3
    info = model.fit_closed_form(beats, labels, batch_size=5)
    counts = _hydra_counts(model, beats.double().numpy())
    root, positive = np.sqrt(np.maximum(counts, 0.0)), counts > 0
    n = np.maximum(positive.sum(0), 1)
    mean = (root * positive).sum(0) / n
    std = np.sqrt((((root - mean) * positive) ** 2).sum(0) / n)
    std = np.where(std > 1e-6, std, 1.0)
    assert (positive.sum(0) < 24).any()
    np.testing.assert_allclose(model.feature_mean.double().numpy(), mean, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(model.feature_std.double().numpy(), std, rtol=1e-3, atol=1e-4)
    features = (root - mean) * positive / std
    with torch.no_grad():
        np.testing.assert_allclose(model.features(beats).double().numpy(), features, rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(model.transform(beats, batch_size=7).double().numpy(), features, rtol=1e-3,
                                   atol=1e-3)
        reference = RidgeClassifierCV(alphas=DEFAULT_ALPHAS).fit(features, labels.numpy())
        assert info["alpha"] == pytest.approx(reference.alpha_)
        np.testing.assert_allclose(model(beats).double().numpy(), reference.decision_function(features), atol=1e-3)
    assert info["features"] == model.num_features == 3 * 8 * 4 * 2
    # a negative soft count (every kernel answering below zero all along) is no evidence: 0, as a zero count
    counts = torch.full((1, model.num_features), 4.0)
    counts[0, :3] = torch.tensor([-2.0, 0.0, 9.0])
    scaled = model._scale(counts)[0].double().numpy()
    mean, std = model.feature_mean.double().numpy(), model.feature_std.double().numpy()
    np.testing.assert_allclose(scaled[:3], [0.0, 0.0, (3.0 - mean[2]) / std[2]], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(scaled[3:], (2.0 - mean[3:]) / std[3:], rtol=1e-5, atol=1e-5)
    again = build_model("hydra", k=4, g=8, input_length=40, seed=0, num_classes=3)
    again.fit_closed_form(beats, labels, seed=9, batch_size=5)  # the kernels come from the constructor: seed is moot
    torch.testing.assert_close(again.head.weight, model.head.weight, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("name", ["hydra", "minirocket"])
def test_a_constant_feature_is_divided_by_one(name):
    """Copies of one beat: every feature is the same on all of them, so its std is 0 and replaced by 1 (not a
    division by zero), and the standardised features are all 0."""
    kwargs = {"k": 4, "g": 4} if name == "hydra" else {"num_features": 168}
    model = build_model(name, input_length=30, num_classes=2, **kwargs)
    beats = torch.randn(1, 1, 30, generator=torch.Generator().manual_seed(0)).repeat(6, 1, 1)
    model.fit_closed_form(beats, torch.tensor([0, 1] * 3))
    assert torch.equal(model.feature_std, torch.ones(model.num_features))
    with torch.no_grad():
        torch.testing.assert_close(model.transform(beats), torch.zeros(6, model.num_features), atol=1e-6, rtol=0)
        np.testing.assert_allclose(model(beats).numpy(), 0.0, atol=1e-6)  # balanced labels: both targets average 0


# ------------------------------------------------------------------------------------------------------ MiniRocket

def _paper_dilations(length, num_features, num_kernels=84, max_dilations=32):
    """The MiniRocket reference code's sharing-out, written from the paper: exponentially spaced dilations (integer
    part), duplicates merged with their counts; each count times features-per-kernel / dilations-drawn, floored;
    the remainder given one at a time from the smallest dilation, cycling."""
    per_kernel = num_features // num_kernels
    drawn = min(per_kernel, max_dilations)
    exponent = math.log2((length - 1) / 8)
    values = [int(2 ** (exponent * i / (drawn - 1))) if drawn > 1 else 1 for i in range(drawn)]
    dilations = sorted(set(values))
    features = [values.count(d) * per_kernel // drawn for d in dilations]
    i = 0
    while sum(features) < per_kernel:
        features[i % len(features)] += 1
        i += 1
    return dilations, features


@pytest.mark.parametrize("length, num_features", [(140, 9996), (140, 84), (140, 168), (140, 840), (60, 2000),
                                                  (300, 10000), (17, 168), (9, 84), (140, 3000), (500, 84 * 40)])
def test_minirocket_dilations_are_the_papers(length, num_features):
    assert minirocket_dilations(length, num_features) == _paper_dilations(length, num_features)


def test_minirocket_kernels_are_every_placement_of_three_twos():
    kernels = minirocket_kernels()
    placements = [tuple(np.flatnonzero(row == 2)) for row in kernels.numpy()]
    assert placements == list(itertools.combinations(range(9), 3))  # all 84, in the reference order
    assert ((kernels == -1) | (kernels == 2)).all() and (kernels.sum(1) == 0).all()


def test_minirocket_construction_masks_and_refusals():
    model = build_model("minirocket", num_features=840, input_length=60, num_classes=4)
    dilations, per_dilation = _paper_dilations(60, 840)
    assert (model.dilations, model.features_per_dilation) == (dilations, per_dilation)
    assert model.num_features == 84 * sum(per_dilation) == model.head.in_features
    assert model.head.out_features == 4 and model.feature_mean.shape == (model.num_features,)
    for i, d in enumerate(dilations):
        assert getattr(model, f"biases_{i}").shape == (per_dilation[i], 1, 84, 1)
        valid = getattr(model, f"valid_{i}")[0]
        for j in range(84):
            expected = np.ones(60) if (i + j) % 2 == 0 else (np.abs(np.arange(60) - 29.5) < 30 - 4 * d).astype(float)
            np.testing.assert_array_equal(valid[j].numpy(), expected)
        np.testing.assert_allclose(getattr(model, f"inv_count_{i}")[0].numpy(), 1 / valid.sum(1).numpy())
        assert torch.equal(getattr(model, f"kernels_{i}")[:, 0], minirocket_kernels())
    with pytest.raises(ValueError) as error:
        build_model("minirocket", num_features=83)
    assert str(error.value) == "minirocket needs num_features >= 84, got 83"
    with pytest.raises(ValueError) as error:
        build_model("minirocket", input_length=8)
    assert str(error.value) == "input_length 8 too short for dilation 1"
    assert build_model("minirocket", num_features=84, input_length=9).num_features == 84  # the smallest


def test_minirocket_kernels_read_a_random_subset_of_channels():
    model = build_model("minirocket", num_features=168, in_channels=12, seed=0)
    sizes = []
    for i in range(len(model.dilations)):
        w = getattr(model, f"kernels_{i}")
        assert w.shape == (84, 12, 9)
        used = w.abs().sum(-1) > 0
        sizes += used.sum(1).tolist()
        for j in range(84):
            assert torch.equal(w[j, used[j]], minirocket_kernels()[j].expand(int(used[j].sum()), 9))
    assert min(sizes) >= 1 and max(sizes) <= 9 and len(set(sizes)) > 3  # at most 9 channels per kernel
    other = build_model("minirocket", num_features=168, in_channels=12, seed=1)
    assert not torch.equal(other.kernels_0, model.kernels_0)


def _ppv(model, x):
    """PPV in NumPy: per dilation d, bias r, kernel j, the share of kernel j's outputs (its 'same' outputs, or only
    those clear of the padding) that exceed bias r."""
    length, feats = x.shape[-1], []
    kernels = minirocket_kernels().double().numpy()
    for i, d in enumerate(model.dilations):
        xp = np.pad(x, ((0, 0), (4 * d, 4 * d)))
        z = sum(kernels[None, :, m, None] * xp[:, None, m * d:m * d + length] for m in range(9))  # (B, 84, L)
        inner = slice(4 * d, length - 4 * d)
        biases = getattr(model, f"biases_{i}").double().numpy()[:, 0, :, 0]  # (f, 84)
        for r in range(len(biases)):
            for_kernel = []
            for j in range(84):
                zj = z[:, j] if (i + j) % 2 == 0 else z[:, j, inner]
                for_kernel.append((zj > biases[r, j]).mean(axis=1))
            feats.append(np.stack(for_kernel, axis=1))
    return np.concatenate(feats, axis=1)


def test_minirocket_ppv_is_the_share_above_each_bias():
    model = build_model("minirocket", num_features=420, input_length=50)
    g = torch.Generator().manual_seed(0)
    for i in range(len(model.dilations)):
        biases = getattr(model, f"biases_{i}")
        biases.copy_(torch.randn(biases.shape, generator=g))
    x = torch.randn(5, 1, 50, generator=g)
    with torch.no_grad():
        ppv = model.ppv(x).double().numpy()
    reference = _ppv(model, x[:, 0].double().numpy())
    assert ppv.shape == reference.shape == (5, 420)
    assert np.isclose(ppv, reference, atol=1e-6).mean() >= 0.999
    # integer beats and biases: many outputs equal a bias exactly, and only those above it count
    for i in range(len(model.dilations)):
        biases = getattr(model, f"biases_{i}")
        biases.copy_(torch.randint(-3, 4, biases.shape, generator=g).float())
    x = torch.randint(-2, 3, (4, 1, 50), generator=g).float()
    with torch.no_grad():
        np.testing.assert_allclose(model.ppv(x).double().numpy(), _ppv(model, x[:, 0].double().numpy()), atol=1e-6)


def test_minirocket_biases_are_quantiles_of_one_training_beat_per_kernel():
    """Bias m (1-based over dilation, kernel, bias) is the frac(m * golden ratio) quantile of the kernel's (valid)
    outputs on one of the given beats; which beat depends on the seed."""
    model = build_model("minirocket", num_features=336, input_length=40)
    beats = torch.randn(5, 1, 40, generator=torch.Generator().manual_seed(3))
    model.fit_biases(beats, seed=0)
    golden, m, picks = (1 + math.sqrt(5)) / 2, 0, []
    kernels = minirocket_kernels().double().numpy()
    x = beats[:, 0].double().numpy()
    for i, (d, f) in enumerate(zip(model.dilations, model.features_per_dilation, strict=True)):
        xp = np.pad(x, ((0, 0), (4 * d, 4 * d)))
        biases = getattr(model, f"biases_{i}").double().numpy()[:, 0, :, 0]
        for j in range(84):
            z = sum(kernels[j, t] * xp[:, t * d:t * d + 40] for t in range(9))  # (beat, L)
            usable = z if (i + j) % 2 == 0 else z[:, 4 * d:40 - 4 * d]
            q = np.modf(np.arange(m + 1, m + f + 1) * golden)[0]
            matches = [b for b in range(5) if np.allclose(biases[:, j], np.quantile(usable[b], q), atol=1e-4)]
            assert matches, (i, j)
            picks.append(matches[0])
            m += f
    assert m == model.num_features and len(set(picks)) == 5  # drawn from all the beats, not one
    first = [getattr(model, f"biases_{i}").clone() for i in range(len(model.dilations))]
    model.fit_biases(beats, seed=0)
    assert all(torch.equal(a, getattr(model, f"biases_{i}")) for i, a in enumerate(first))
    model.fit_biases(beats, seed=1)
    assert not torch.equal(first[0], model.biases_0)


def test_minirocket_fit_standardises_with_the_sample_std_and_fits_the_ridge():
    model = build_model("minirocket", num_features=252, input_length=40, num_classes=3)
    g = torch.Generator().manual_seed(5)
    beats = torch.randn(30, 1, 40, generator=g)
    labels = torch.arange(30) % 3
    info = model.fit_closed_form(beats, labels, seed=2, batch_size=7)
    other = build_model("minirocket", num_features=252, input_length=40, num_classes=3)
    other.fit_biases(beats, seed=2)
    assert torch.equal(other.biases_0, model.biases_0)  # the fit's seed draws the bias beats
    ppv = _ppv(model, beats[:, 0].double().numpy())
    mean, std = ppv.mean(0), ppv.std(0, ddof=1)
    std = np.where(std > 1e-6, std, 1.0)
    np.testing.assert_allclose(model.feature_mean.double().numpy(), mean, atol=1e-5)
    np.testing.assert_allclose(model.feature_std.double().numpy(), std, rtol=1e-4, atol=1e-6)
    features = (ppv - mean) / std
    with torch.no_grad():
        np.testing.assert_allclose(model.transform(beats, batch_size=4).double().numpy(), features, atol=1e-3)
        reference = RidgeClassifierCV(alphas=DEFAULT_ALPHAS).fit(features, labels.numpy())
        assert info["alpha"] == pytest.approx(reference.alpha_)
        np.testing.assert_allclose(model(beats).double().numpy(), reference.decision_function(features), atol=1e-3)
    assert info["features"] == 252


# ----------------------------------------------------------------------------------------------------------- ridge

def _weighted_ridge(x, targets, weights, alpha):
    """min sum_i w_i |t_i - W x_i - b|^2 + alpha |W|^2 (intercept unpenalised) by the normal equations."""
    design = np.hstack([x, np.ones((len(x), 1))])
    penalty = alpha * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0
    weighted = weights[:, None] * design
    solution = np.linalg.solve(design.T @ weighted + penalty, weighted.T @ targets)
    return solution[:-1].T, solution[-1]


def test_class_weights_and_targets():
    labels = np.array([0, 0, 0, 1, 2, 2, 0, 0])  # counts 5, 1, 2 (and class 3 absent)
    np.testing.assert_array_equal(class_weights(labels, 4, 0.0), np.ones(8))
    for balance in (0.5, 1.0, 2.0):
        raw = np.array([5.0, 1.0, 2.0])[labels] ** -balance
        np.testing.assert_allclose(class_weights(labels, 4, balance), raw / raw.mean())
    targets = one_vs_rest_targets(np.array([2, 0, 1]), 4)
    np.testing.assert_array_equal(targets, [[-1, -1, 1, -1], [1, -1, -1, -1], [-1, 1, -1, -1]])


@pytest.mark.parametrize("n,p,block", [(18, 7, None), (12, 30, None), (21, 6, 8)],
                         ids=["more-beats", "more-features", "beats-in-three-blocks"])
@pytest.mark.parametrize("weighted", [False, True])
def test_ridge_is_the_normal_equations_with_leave_one_out_by_refitting(weighted, n, p, block, monkeypatch):
    """Both ways of solving (the beats' Gram matrix where p >= n, the features' side a block of beats at a time where
    n > p; blocks of 8 beats here) against the normal equations, refitted without each beat."""
    if block:
        monkeypatch.setattr(_ridge, "_PRIMAL_BLOCK", block)
    rng = np.random.default_rng(4)
    classes = 3
    labels = np.arange(n) % classes
    x = rng.normal(size=(n, p)) + labels[:, None] * rng.normal(size=p)
    weights = rng.uniform(0.3, 3.0, n) if weighted else np.ones(n)
    alphas = (0.01, 1.0, 30.0)
    fit = ridge_loo_fit(x, labels, classes, alphas=alphas, sample_weight=weights if weighted else None)
    targets = np.where(np.arange(classes)[None, :] == labels[:, None], 1.0, -1.0)
    mse, accuracy, decisions = [], [], []
    for alpha in alphas:
        out = np.empty((n, classes))
        for i in range(n):
            keep = np.arange(n) != i
            w, b = _weighted_ridge(x[keep], targets[keep], weights[keep], alpha)
            out[i] = x[i] @ w.T + b
        decisions.append(out)
        mse.append(float((weights[:, None] * (targets - out) ** 2).sum() / (n * classes)))
        accuracy.append(float((out.argmax(1) == labels).mean()))
    np.testing.assert_allclose(fit["loo_mse"], mse, rtol=1e-8)
    np.testing.assert_allclose(fit["loo_accuracy"], accuracy)
    best = int(np.argmin(mse))
    assert fit["alpha"] == alphas[best] and fit["alphas"] == list(alphas)
    assert all(type(a) is float for a in fit["alphas"]) and type(fit["alpha"]) is float
    np.testing.assert_allclose(fit["loo_decision"], decisions[best], atol=1e-8)
    w, b = _weighted_ridge(x, targets, weights, alphas[best])
    np.testing.assert_allclose(fit["weight"], w, atol=1e-8)
    np.testing.assert_allclose(fit["bias"], b, atol=1e-8)
    reference = RidgeClassifierCV(alphas=alphas).fit(x, labels, sample_weight=weights)
    assert reference.alpha_ == fit["alpha"]
    np.testing.assert_allclose(x @ fit["weight"].T + fit["bias"], reference.decision_function(x), atol=1e-8)


def test_ridge_with_more_features_than_beats():
    """The dual form for p >> n (the random-kernel case), against the normal equations solved in the primal."""
    rng = np.random.default_rng(1)
    x, labels = rng.normal(size=(12, 40)), np.array([0, 1] * 6)
    fit = ridge_loo_fit(x, labels, 2, alphas=(0.5,))
    w, b = _weighted_ridge(x, np.where(labels[:, None] == [0, 1], 1.0, -1.0), np.ones(12), 0.5)
    np.testing.assert_allclose(fit["weight"], w, atol=1e-8)
    np.testing.assert_allclose(fit["bias"], b, atol=1e-8)


def test_fit_head_copies_the_weighted_fit_into_the_layer():
    rng = np.random.default_rng(2)
    labels = np.array([0] * 9 + [1] * 3 + [2] * 2)
    x = rng.normal(size=(14, 6)) + labels[:, None]
    head = nn.Linear(6, 3)
    info = fit_head(head, x, labels, class_balance=1.0, alphas=(0.1, 10.0), num_features=6)
    weights = class_weights(labels, 3, 1.0)
    reference = RidgeClassifierCV(alphas=(0.1, 10.0)).fit(x, labels, sample_weight=weights)
    assert info["alpha"] == reference.alpha_ and info["alphas"] == [0.1, 10.0] and info["features"] == 6
    assert set(info) == {"alpha", "alphas", "features", "loo_mse", "loo_accuracy", "loo_decision"}
    assert len(info["loo_mse"]) == len(info["loo_accuracy"]) == 2 and info["loo_decision"].shape == (14, 3)
    with torch.no_grad():
        out = head(torch.from_numpy(x).float()).double().numpy()
    np.testing.assert_allclose(out, reference.decision_function(x), atol=1e-5)
    unweighted = RidgeClassifierCV(alphas=(0.1, 10.0)).fit(x, labels)
    assert not np.allclose(out, unweighted.decision_function(x), atol=1e-3)  # the balance is really applied

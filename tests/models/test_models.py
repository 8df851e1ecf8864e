"""Registry, output shapes, parameter counts (the seed's specs) and export folding."""

import re

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ecgcnn.evaluation.summary import macs_per_beat, model_summary
from ecgcnn.models import build_model, count_parameters, fold_for_export, list_models

from ..conftest import REPO

# Parameter counts of the seed's architectures with 5 classes (VGG: 13.76 MiB as float32, as the seed reports).
# base-cnn-small is the edge recipe's student (ours, not the seed's).
EXPECTED_PARAMETERS = {"base-cnn": 174_597, "vgg": 3_608_325, "inception": 479_813, "tcn": 89_605,
                       "base-cnn-small": 44_293}


def test_registry_lists_the_seed_models_then_ours():
    assert list_models() == ["base-cnn", "base-cnn-small", "vgg", "inception", "tcn", "ensemble", "hydra", "minirocket",
                             "hydra-minirocket"]


def test_unknown_model_lists_known_ones():
    with pytest.raises(ValueError, match="unknown model 'resnet'; known models: base-cnn, base-cnn-small, vgg"):
        build_model("resnet")


def test_ensemble_averages_its_members_and_folds_as_one_model():
    torch.manual_seed(0)
    ensemble = build_model("ensemble", members=["base-cnn-small", "tcn"]).eval()
    x = torch.randn(3, 1, 140)
    expected = (ensemble.members[0](x) + ensemble.members[1](x)) / 2
    torch.testing.assert_close(ensemble(x), expected)
    folded = fold_for_export(ensemble)
    torch.testing.assert_close(folded(x), expected, atol=1e-5, rtol=1e-5)
    assert folded.init_kwargs["members"] == ["base-cnn-small", "tcn"]
    with pytest.raises(ValueError, match="members"):
        build_model("ensemble", members=[])


@pytest.mark.parametrize("name", list(EXPECTED_PARAMETERS))
@pytest.mark.parametrize("num_classes", [5, 3])
def test_output_shape(name, num_classes):
    model = build_model(name, num_classes=num_classes).eval()
    assert model(torch.randn(4, 1, 140)).shape == (4, num_classes)


@pytest.mark.parametrize("name", list(EXPECTED_PARAMETERS))
def test_parameter_count(name):
    assert count_parameters(build_model(name)) == EXPECTED_PARAMETERS[name]


@pytest.mark.parametrize("name", list(EXPECTED_PARAMETERS))
def test_fold_for_export_keeps_outputs(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    folded = fold_for_export(model)
    x = torch.randn(3, 1, 140)
    torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-5)
    assert not any("parametrizations" in key for key in folded.state_dict())


def test_tcn_is_causal():
    torch.manual_seed(0)
    features = build_model("tcn").eval().features
    x = torch.randn(1, 1, 140)
    y = x.clone()
    y[..., 100:] += 1.0  # change only the future
    torch.testing.assert_close(features(x)[..., :100], features(y)[..., :100])


def test_summary_reports_parameters_and_macs():
    text = model_summary("tcn")
    assert "89,605 parameters" in text and "MACs per beat" in text
    assert macs_per_beat(build_model("tcn")) > 10_000_000  # weight-normalised convs are counted too


def test_readme_model_table_matches_the_code():
    """The README's parameter/size/MACs table is what `ecgcnn summary` computes."""

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in EXPECTED_PARAMETERS:
        match = re.search(rf"^\| `{re.escape(name)}` \| ([\d,]+) \| ([\d.]+) MiB \| ([\d.]+) M \|$", readme, re.M)
        assert match, name
        model = build_model(name)
        params = count_parameters(model)
        assert int(match.group(1).replace(",", "")) == params
        assert float(match.group(2)) == round(params * 4 / 2**20, 2)
        assert float(match.group(3)) == round(macs_per_beat(model) / 1e6, 1)


@pytest.mark.parametrize(("name", "kwargs"), [("hydra", {}), ("hydra", {"in_channels": 2, "input_length": 61}),
                                              ("minirocket", {}),
                                              ("minirocket", {"num_classes": 3, "input_length": 90})])
def test_random_kernel_models_count_their_functional_convolutions(name, kwargs):
    """Hydra and MiniRocket convolve with functions, which torchinfo does not see (it reported Hydra's 3.2 M MACs
    per beat as 0); their own count must equal PyTorch's FLOP counter (2 FLOPs per multiply-accumulate)."""
    model = build_model(name, **kwargs).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, model.in_channels, model.input_length))
    assert macs_per_beat(model) == counter.get_total_flops() // 2 > 0

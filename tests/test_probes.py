import pytest
import torch

from resexplorer.nets.config import ModelConfig
from resexplorer.nets.models import build_model
from resexplorer.nets.probes import (
    layer_response_stds,
    residual_ratios,
    response_layers,
    stage_means,
)
from resexplorer.runs.recipe import TrainConfig
from resexplorer.training.launch import new_race


def _eval_model(name):
    torch.manual_seed(0)
    return build_model(name).eval()


@pytest.mark.parametrize("shortcut", "ABC")
def test_zero_initialised_resnet_has_every_ratio_exactly_zero(shortcut):
    model = _eval_model(ModelConfig("resnet", 20, shortcut, zero_init_residual=True))
    assert residual_ratios(model, torch.randn(4, 3, 32, 32)) == [0.0] * 9


def test_trained_like_resnet_ratios_are_positive_and_per_block():
    model = _eval_model("resnet-20")
    ratios = residual_ratios(model, torch.randn(4, 3, 32, 32))
    assert len(ratios) == 9 and all(r > 0 for r in ratios)


@torch.no_grad()
def test_ratio_matches_a_direct_computation():
    model = _eval_model("resnet-8")
    x = torch.randn(3, 3, 32, 32)
    block_input = model.relu(model.bn1(model.conv1(x)))
    block = model.layer1[0]
    f = block.residual(block_input)
    expected = (f.flatten(1).norm(dim=1) / block_input.flatten(1).norm(dim=1)).mean()
    assert residual_ratios(model, x)[0] == pytest.approx(float(expected), rel=1e-5)


def test_plain_analogue_is_defined_only_where_shapes_match():
    ratios = residual_ratios(_eval_model("plain-20"), torch.randn(4, 3, 32, 32))
    assert ratios[3] is None and ratios[6] is None  # the stride-2 blocks
    assert all(r is not None and r > 0 for i, r in enumerate(ratios) if i not in (3, 6))
    assert stage_means([1.0, None, 3.0, None, None, None], 3) == [2.0, None]


@torch.no_grad()
def test_response_stds_follow_every_3x3_layer_after_bn():
    model = _eval_model("resnet-20")
    x = torch.randn(4, 3, 32, 32)
    stds = layer_response_stds(model, x)
    assert len(stds) == len(response_layers(model)) == 19  # 6n + 1 conv layers
    assert stds[0] == pytest.approx(float(model.bn1(model.conv1(x)).std()), rel=1e-5)


def test_runs_record_probes_at_every_epoch(tiny_data, tmp_path):
    race, runs = new_race(
        [ModelConfig("resnet", 8, num_classes=4)],
        tiny_data,
        TrainConfig(epochs=2, batch_size=32, device="cpu"),
        tmp_path,
    )
    race.run()
    records = runs["resnet-8"].metrics("epoch")
    assert [len(r["probes"]["residual_ratio"]) for r in records] == [3, 3]
    assert [len(r["probes"]["response_std"]) for r in records] == [7, 7]
    assert len(records[0]["probes"]["residual_ratio_by_stage"]) == 3

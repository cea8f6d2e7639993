import pytest
import torch
from helpers import ON_CPU

from resexplorer.nets.config import ModelConfig
from resexplorer.nets.models import PadShortcut, build_model
from resexplorer.nets.probes import inside_stats, response_layers, stage_means
from resexplorer.runs.recipe import TrainConfig
from resexplorer.training.launch import new_race


def _eval_model(name):
    torch.manual_seed(0)
    return build_model(name).eval()


@pytest.mark.parametrize("shortcut", "ABC")
def test_zero_initialised_resnet_has_every_ratio_exactly_zero(shortcut):
    model = _eval_model(ModelConfig("resnet", 20, shortcut, zero_init_residual=True))
    assert inside_stats(model, torch.randn(4, 3, 32, 32)).branch_ratio == [0.0] * 9


def test_resnet_ratios_are_positive_and_per_block():
    ratios = inside_stats(_eval_model("resnet-20"), torch.randn(4, 3, 32, 32)).branch_ratio
    assert len(ratios) == 9 and all(r > 0 for r in ratios)


def _block_inputs(model, x) -> list[torch.Tensor]:
    inputs = []
    handles = [b.register_forward_pre_hook(lambda m, args: inputs.append(args[0])) for b in model.blocks()]
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return inputs


def _mean_ratio(numerator, denominator) -> float:
    return float((numerator.flatten(1).norm(dim=1) / denominator.flatten(1).norm(dim=1)).mean())


@pytest.mark.parametrize("name", ["resnet-8", "resnet-8-B", "resnet-8-C"])
@torch.no_grad()
def test_the_branch_is_measured_against_what_it_is_added_to(name):
    """||F(x)|| / ||shortcut(x)||: at a downsampling block the shortcut's
    output (subsampled and padded, or projected) is not x."""
    model, x = _eval_model(name), torch.randn(3, 3, 32, 32)
    inputs = _block_inputs(model, x)
    expected = [_mean_ratio(b.residual(i), b.shortcut(i)) for b, i in zip(model.blocks(), inputs)]
    assert inside_stats(model, x).branch_ratio == pytest.approx(expected, rel=1e-5)


class _BranchAsShortcut(torch.nn.Module):
    """A shortcut that returns the block's own branch: F(x) = shortcut(x)."""

    def __init__(self, block):
        super().__init__()
        self.branch = block.residual

    def forward(self, x):
        return self.branch(x)


def test_a_branch_equal_to_its_shortcut_has_ratio_one_even_where_the_shape_changes():
    model = _eval_model("resnet-8-B")
    for block in model.blocks():
        block.shortcut = _BranchAsShortcut(block)
    assert inside_stats(model, torch.randn(4, 3, 32, 32)).branch_ratio == pytest.approx([1.0] * 3, rel=1e-5)


@torch.no_grad()
def test_the_plain_analogue_measures_against_option_a_everywhere():
    """A plain block's change ||block(x) - A(x)|| / ||A(x)||, A the
    parameter-free option-A shortcut: x where the shape holds, subsampled
    and zero-padded where it changes; defined at every block."""
    model, x = _eval_model("plain-8"), torch.randn(3, 3, 32, 32)
    inputs = _block_inputs(model, x)
    expected = []
    for block, i in zip(model.blocks(), inputs):
        a = i if block.conv1.stride[0] == 1 else PadShortcut(block.conv2.out_channels)(i)
        expected.append(_mean_ratio(block(i) - a, a))
    assert inside_stats(model, x).branch_ratio == pytest.approx(expected, rel=1e-5)
    assert stage_means([1.0, None, 3.0, None, None, None], 3) == [2.0, None]


@torch.no_grad()
def test_response_stds_follow_every_3x3_layer_after_bn():
    model = _eval_model("resnet-20")
    x = torch.randn(4, 3, 32, 32)
    stds = inside_stats(model, x).response_std
    assert len(stds) == len(response_layers(model)) == 19  # 6n + 1 conv layers
    assert stds[0] == pytest.approx(float(model.bn1(model.conv1(x)).std(unbiased=False)), rel=1e-5)


def test_runs_record_probes_at_every_epoch(tiny_data, tmp_path):
    race, runs = new_race(
        [ModelConfig("resnet", 8, num_classes=4)],
        tiny_data,
        TrainConfig(epochs=2, batch_size=32),
        tmp_path,
        options=ON_CPU,
    )
    race.run()
    records = runs["resnet-8"].metrics("epoch")
    assert [len(r["probes"]["branch_ratio"]) for r in records] == [3, 3]
    assert [len(r["probes"]["response_std"]) for r in records] == [7, 7]
    assert len(records[0]["probes"]["branch_ratio_by_stage"]) == 3

import re

import pytest
import torch
from torch import nn

from resexplorer.nets.config import ModelConfig
from resexplorer.nets.models import (
    BasicBlock,
    PadShortcut,
    build_model,
    count_parameters,
)
from resexplorer.services.paper import TABLE6_PARAMS_M  # option-A parameter counts, in millions
from resexplorer.services.planning import all_model_names

# Every model the app offers, as timm's tests walk its registry: a model added
# to the offer is tested without a line here.
ALL_CONFIGS = [ModelConfig.from_name(name) for name in all_model_names()]


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda c: c.name)
def test_forward_shape_finite_and_backward_reaches_every_parameter(config):
    torch.manual_seed(0)
    model = build_model(config)
    x = torch.randn(4, 3, 32, 32)
    logits = model(x)
    assert logits.shape == (4, 10)
    assert torch.isfinite(logits).all()
    features = model.forward_features(x)
    assert features.shape == (4, 64, 8, 8) and model.stem(x).shape == (4, 16, 32, 32)
    assert torch.equal(model.forward_head(features), logits)  # the parts make up the whole
    logits.sum().backward()
    for name, param in model.named_parameters():
        # a zero-init branch starts at gamma = 0 in its last BN: what lies behind that
        # gamma gets no gradient at the first step (the block starts as the identity)
        behind_zero = config.zero_init_residual and re.fullmatch(r"layer\d\.\d+\.(conv1|bn1|conv2)\..*", name)
        assert param.grad is not None, name
        assert (param.grad.abs().sum() == 0) if behind_zero else (param.grad.abs().sum() > 0), name


@pytest.mark.parametrize("depth,millions", [(d, m) for d, m in TABLE6_PARAMS_M.items() if d <= 110])
def test_parameter_counts_match_table6(depth, millions):
    resnet = count_parameters(build_model(ModelConfig("resnet", depth, "A")))
    plain = count_parameters(build_model(ModelConfig("plain", depth)))
    assert round(resnet / 1e6, 2 if millions < 1 else 1) == millions
    assert plain == resnet  # option A adds no parameters


def _projection_params(cin, cout):
    return cin * cout + 2 * cout  # 1x1 conv without bias + BN weight and bias


@pytest.mark.parametrize("depth", [20, 56, 110])
def test_options_b_and_c_add_exactly_their_projections(depth):
    n = (depth - 2) // 6
    a = count_parameters(build_model(ModelConfig("resnet", depth, "A")))
    b = count_parameters(build_model(ModelConfig("resnet", depth, "B")))
    c = count_parameters(build_model(ModelConfig("resnet", depth, "C")))
    # B: projections only where 16->32 and 32->64
    assert b - a == _projection_params(16, 32) + _projection_params(32, 64)
    # C: a projection on all 3n shortcuts
    every = [_projection_params(16, 16)] * n
    every += [_projection_params(16, 32)] + [_projection_params(32, 32)] * (n - 1)
    every += [_projection_params(32, 64)] + [_projection_params(64, 64)] * (n - 1)
    assert c - a == sum(every)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("resnet-20", ModelConfig("resnet", 20, "A")),
        ("plain-56", ModelConfig("plain", 56)),
        ("resnet-32-B", ModelConfig("resnet", 32, "B")),
        ("resnet-110-C", ModelConfig("resnet", 110, "C")),
        ("resnet-56-zero", ModelConfig("resnet", 56, "A", zero_init_residual=True)),
    ],
)
def test_names_parse_both_ways(name, expected):
    config = ModelConfig.from_name(name)
    assert config == expected
    assert config.name == name
    assert ModelConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("bad", ["resnet-21", "resnet-2", "plain-20-B", "vgg-16", "resnet-20-D", "resnet", ""])
def test_bad_names_are_value_errors_that_list_valid_names(bad):
    with pytest.raises(ValueError, match="6n\\+2"):
        ModelConfig.from_name(bad)


def test_bad_depth_in_config_is_a_value_error():
    with pytest.raises(ValueError, match="6n\\+2"):
        ModelConfig("resnet", 22)


def test_architecture_is_the_papers():
    model = build_model("resnet-20")
    assert [len(s) for s in model.stages] == [3, 3, 3]
    assert [s[0].conv1.stride for s in model.stages] == [(1, 1), (2, 2), (2, 2)]
    assert [s[0].conv2.out_channels for s in model.stages] == [16, 32, 64]
    assert model.conv1.out_channels == 16 and model.linear.in_features == 64
    # the plain net: same stack, no shortcut anywhere
    plain = build_model("plain-20")
    assert all(not block.has_shortcut for block in plain.blocks())
    assert [type(b.shortcut) for b in model.blocks()].count(PadShortcut) == 2


def test_every_relu_is_its_own_module_and_not_inplace():
    model = build_model("resnet-20-B")
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == 1 + 2 * 9  # stem + two per block
    assert len({id(m) for m in relus}) == len(relus)
    assert not any(m.inplace for m in relus)


def test_each_relu_module_runs_once_per_forward():
    model = build_model("resnet-8")
    calls = []
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.register_forward_hook(lambda mod, i, o: calls.append(id(mod)))
    model(torch.randn(2, 3, 32, 32))
    assert len(calls) == len(set(calls)) == 1 + 2 * 3


def test_block_exposes_residual_and_shortcut():
    torch.manual_seed(0)
    block = build_model("resnet-20").layer2[0].eval()
    x = torch.relu(torch.randn(2, 16, 32, 32))
    f, s = block.residual(x), block.shortcut(x)
    assert f.shape == s.shape == (2, 32, 16, 16)
    assert torch.allclose(block(x), torch.relu(f + s))


def test_option_a_pads_planes_over_four_each_side():
    x = torch.randn(1, 16, 8, 8)
    y = PadShortcut(32)(x)
    assert y.shape == (1, 32, 4, 4)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert y[:, :8].abs().sum() == 0 and y[:, 24:].abs().sum() == 0


@pytest.mark.parametrize("shortcut", "ABC")
def test_zero_init_residual_blocks_start_as_their_shortcut(shortcut):
    torch.manual_seed(0)
    model = build_model(ModelConfig("resnet", 20, shortcut, zero_init_residual=True)).eval()
    x = torch.relu(torch.randn(2, 16, 32, 32))  # block inputs are post-ReLU
    for block in model.blocks():
        assert block.residual(x).abs().max() == 0
        out = block(x)
        expected = torch.relu(block.shortcut(x))
        assert torch.equal(out, expected)
        if isinstance(block.shortcut, nn.Identity):
            assert torch.equal(out, x)  # the identity map
        x = out


def test_zero_init_changes_only_the_last_bn_of_each_branch():
    torch.manual_seed(0)
    normal = build_model("resnet-20")
    torch.manual_seed(0)
    zero = build_model("resnet-20-zero")
    for (name, a), (_, b) in zip(normal.state_dict().items(), zero.state_dict().items()):
        if name.endswith("bn2.weight"):
            assert b.abs().sum() == 0 and a.abs().sum() > 0
        else:
            assert torch.equal(a, b), name


def test_public_reference_weight_names():
    # the PyTorch CIFAR ResNet reference names; its option-A weights load unchanged
    keys = set(build_model("resnet-20").state_dict())
    assert {
        "conv1.weight",
        "bn1.running_mean",
        "layer1.0.conv1.weight",
        "layer3.2.bn2.weight",
        "linear.weight",
        "linear.bias",
    } <= keys
    assert isinstance(build_model("resnet-20").layer1[0], BasicBlock)

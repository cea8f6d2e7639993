"""Compiled training steps: chosen by the run's length, equal to eager
steps, and eager again when compiling fails."""

import pytest
import torch
from torch import nn

from resexplorer.nets.config import ModelConfig
from resexplorer.runs.recipe import RunOptions, TrainConfig
from resexplorer.training import engine
from resexplorer.training.engine import Race, compile_wanted, new_member

pytestmark = pytest.mark.slow  # browsers, subprocesses, builds: see pytest.ini

CPU = torch.device("cpu")


CONFIG = TrainConfig(epochs=1, batch_size=32, lr=0.05, train_subset=64)


def _compile(setting: str) -> RunOptions:
    return RunOptions(device="cpu", log_every=1, compile=setting)


@pytest.mark.parametrize(
    "setting, epochs, images, device, wanted",
    [
        ("auto", 30, 50_000, "cpu", True),  # a CIFAR-10 run of half an hour and more
        ("auto", 2, 5_000, "cpu", False),  # a minute's demo: compiling would take longer than it wins
        ("auto", 30, 50_000, "meta", False),  # a device "auto" does not compile for (MPS, say)
        ("on", 1, 64, "cpu", True),
        ("off", 500, 50_000, "cpu", False),
    ],
)
def test_auto_compiles_where_the_run_is_long_enough_to_win(setting, epochs, images, device, wanted):
    config = TrainConfig(epochs=epochs)
    assert compile_wanted(config, _compile(setting), images, torch.device(device)) is wanted


def test_a_cuda_step_is_compiled_to_replay_cuda_graphs_and_a_cpu_step_is_not(monkeypatch):
    """Small nets on a GPU are bound by kernel launches, which CUDA graphs
    remove; on the CPU there are none to replay. (That the graphs are
    recorded and train as eager does is bench/gpu_checks.py's, on a GPU.)"""
    modes = []
    monkeypatch.setattr(engine.torch, "compile", lambda module, mode=None: modes.append(mode) or module)
    net = nn.Linear(2, 2)
    engine.compiled_step(net, torch.device("cuda", 1))
    engine.compiled_step(net, CPU)
    assert modes == ["reduce-overhead", None]
    assert engine.replays_graphs(torch.device("cuda", 0)) and not engine.replays_graphs(CPU)


def _race(data, options: RunOptions) -> tuple[Race, list]:
    records = []

    class Epochs(engine.Callback):
        def on_epoch_end(self, member, event):
            records.append((event.train_loss, event.test_error))

    members = [new_member(ModelConfig("resnet", 8, num_classes=data.num_classes), CONFIG, CPU, True)]
    return Race(members, data, CONFIG, CPU, [Epochs()], probes=[], options=options), records


def test_a_step_that_fails_to_compile_goes_on_eager(tiny_data, monkeypatch):
    class CannotCompile(nn.Module):
        def __init__(self, module, **options):
            super().__init__()
            self.module = module

        def forward(self, images):
            raise RuntimeError("backend compiler failed: no C compiler")

    monkeypatch.setattr(engine.torch, "compile", CannotCompile)
    compiled, tried = _race(tiny_data, _compile("on"))
    with pytest.warns(RuntimeWarning, match="resnet-8: torch.compile failed .*no C compiler.*training eager"):
        assert compiled.run() == {"resnet-8": "done"}
    eager, plain = _race(tiny_data, _compile("off"))
    eager.run()
    assert tried == plain and compiled.members[0].trainer is compiled.members[0].model
    for a, b in zip(compiled.members[0].model.parameters(), eager.members[0].model.parameters()):
        assert torch.equal(a, b)


def test_a_compiled_step_trains_as_the_eager_one(tiny_data):
    """A real torch.compile (about half a minute on 2 CPU cores)."""
    compiled, got = _race(tiny_data, _compile("on"))
    assert compiled.compiled and compiled.run() == {"resnet-8": "done"}
    assert compiled.members[0].eager is not None  # it compiled: nothing fell back
    eager, want = _race(tiny_data, _compile("off"))
    eager.run()
    assert got[0][0] == pytest.approx(want[0][0], rel=1e-4)
    for a, b in zip(compiled.members[0].model.parameters(), eager.members[0].model.parameters()):
        assert torch.allclose(a, b, atol=1e-4)

import math

import pytest
import torch
from helpers import ON_CPU, ON_CPU_EVERY_STEP, StopAfterEpoch

from resexplorer.errors import ConfigError, RunError
from resexplorer.nets.config import ModelConfig
from resexplorer.runs.checkpoints import load_run_checkpoint
from resexplorer.runs.recipe import RunOptions, TrainConfig
from resexplorer.training.engine import (
    Callback,
    Race,
    autocast_for,
    lr_at,
    new_member,
    train_step,
)
from resexplorer.training.launch import new_race, resumed_race

CPU = torch.device("cpu")


def _config(**kw):
    base = dict(epochs=2, batch_size=32, lr=0.05, seed=0)
    return TrainConfig(**{**base, **kw})


class Recorder(Callback):
    def __init__(self):
        self.steps, self.epochs, self.ended = [], [], []

    def on_step(self, member, event):
        self.steps.append(event)

    def on_epoch_end(self, member, event):
        self.epochs.append(event)

    def on_end(self, member):
        self.ended.append((member.name, member.status, member.message))


@pytest.mark.parametrize("schedule", ["paper", "cosine", "onecycle", "constant"])
def test_schedules_are_pure_functions_of_the_step(schedule):
    config = TrainConfig(epochs=10, lr=0.1, schedule=schedule)
    values = [lr_at(s, 1000, config, 100) for s in range(1000)]
    assert values == [lr_at(s, 1000, config, 100) for s in range(1000)]
    assert all(0 <= v <= 0.1 + 1e-12 for v in values)


def test_schedule_shapes():
    paper = TrainConfig(epochs=10, lr=0.1, schedule="paper")
    assert [lr_at(s, 1000, paper, 100) for s in (0, 499, 500, 749, 750, 999)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    )
    cosine = TrainConfig(epochs=10, lr=0.1, schedule="cosine")
    assert lr_at(0, 1000, cosine, 100) == pytest.approx(0.1)
    assert lr_at(500, 1000, cosine, 100) == pytest.approx(0.05)
    assert lr_at(999, 1000, cosine, 100) < 1e-5
    onecycle = TrainConfig(epochs=10, lr=0.1, schedule="onecycle")
    peak = max(range(1000), key=lambda s: lr_at(s, 1000, onecycle, 100))
    assert peak == 300 and lr_at(0, 1000, onecycle, 100) == pytest.approx(0.004)
    warm = TrainConfig(epochs=10, lr=0.1, schedule="constant", warmup_epochs=1)
    assert lr_at(0, 1000, warm, 100) == pytest.approx(0.01) and lr_at(100, 1000, warm, 100) == pytest.approx(0.1)


def test_bad_train_configs_are_value_errors():
    for kw in ({"epochs": 0}, {"batch_size": 1}, {"lr": -1}, {"schedule": "wild"}):
        with pytest.raises(ValueError):
            TrainConfig(**kw)
    for kw in ({"device": "tpu"}, {"log_every": -1}, {"compile": "maybe"}):
        with pytest.raises(ValueError):
            RunOptions(**kw)


def test_loss_falls_in_a_few_cpu_steps(tiny_data):
    recorder = Recorder()
    member = new_member(ModelConfig("resnet", 8, num_classes=4), _config(), CPU)
    Race([member], tiny_data, _config(epochs=3), CPU, [recorder], options=ON_CPU_EVERY_STEP).run()
    first = sum(e.loss for e in recorder.steps[:2]) / 2
    assert recorder.epochs[-1].train_loss < 0.7 * first
    assert recorder.epochs[-1].test_error < 0.75  # better than chance (4 classes)
    assert recorder.ended == [("resnet-8", "done", "")]


def test_race_feeds_every_model_the_same_batches(tiny_data):
    seen = {}
    members = [new_member(ModelConfig(a, 8, num_classes=4), _config(), CPU) for a in ("plain", "resnet")]
    for m in members:
        seen[m.name] = []
        m.model.register_forward_pre_hook(
            lambda mod, args, name=m.name: seen[name].append(args[0].clone()) if mod.training else None
        )
    Race(members, tiny_data, _config(), CPU, options=ON_CPU_EVERY_STEP).run()
    assert len(seen["plain-8"]) == len(seen["resnet-8"]) == 2 * math.ceil(120 / 32)
    assert all(torch.equal(a, b) for a, b in zip(seen["plain-8"], seen["resnet-8"]))


def test_initial_weights_depend_on_the_seed_not_on_the_race():
    alone = new_member(ModelConfig("resnet", 8), _config(), CPU)
    new_member(ModelConfig("plain", 20), _config(), CPU)
    again = new_member(ModelConfig("resnet", 8), _config(), CPU)
    for a, b in zip(alone.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)


def test_a_diverging_model_stops_and_the_others_go_on(tiny_data):
    recorder = Recorder()
    members = [new_member(ModelConfig(a, 8, num_classes=4), _config(), CPU) for a in ("plain", "resnet")]
    with torch.no_grad():
        members[0].model.linear.bias.fill_(float("inf"))  # its first loss is not finite
    statuses = Race(members, tiny_data, _config(), CPU, [recorder], options=ON_CPU_EVERY_STEP).run()
    assert statuses == {"plain-8": "diverged", "resnet-8": "done"}
    assert "lower the learning rate" in members[0].message
    assert [e.epoch for e in recorder.epochs if e.model == "resnet-8"] == [1, 2]
    assert not [e for e in recorder.epochs if e.model == "plain-8"]


def test_cancel_takes_effect_within_one_step(tiny_data):
    calls = {"n": 0}
    steps = []

    def stop_after_three():
        calls["n"] += 1
        return calls["n"] > 3

    member = new_member(ModelConfig("resnet", 8, num_classes=4), _config(), CPU)
    member.model.register_forward_pre_hook(lambda mod, args: steps.append(1) if mod.training else None)
    statuses = Race(
        [member], tiny_data, _config(epochs=5), CPU, should_stop=stop_after_three, options=ON_CPU_EVERY_STEP
    ).run()
    assert statuses == {"resnet-8": "cancelled"} and len(steps) == 3 and member.step == 3


def test_resume_continues_exactly(tiny_data, tmp_path):
    models = [ModelConfig("resnet", 8, num_classes=4), ModelConfig("plain", 8, num_classes=4)]
    config = _config(epochs=2)
    straight, runs_a = new_race(models, tiny_data, config, tmp_path / "a", options=ON_CPU)
    straight.run()

    stopper = StopAfterEpoch(1)
    first, runs_b = new_race(
        models, tiny_data, config, tmp_path / "b", [stopper], should_stop=lambda: stopper.stop, options=ON_CPU
    )
    assert set(first.run().values()) == {"cancelled"}
    torch.manual_seed(1234)  # disturb the global RNG: resume must restore what matters
    resumed = resumed_race(list(runs_b.values()), tiny_data)
    assert set(resumed.run().values()) == {"done"}

    for name in runs_a:
        a, b = runs_a[name].metrics("epoch"), runs_b[name].metrics("epoch")
        assert [r["epoch"] for r in a] == [r["epoch"] for r in b] == [1, 2]
        for ra, rb in zip(a, b):
            for key in ("train_loss", "train_error", "test_loss", "test_error", "lr", "step"):
                assert ra[key] == pytest.approx(rb[key], abs=1e-6), (name, key)
        assert runs_b[name].status()["status"] == "done"
        wa, wb = load_run_checkpoint(runs_a[name])["model"], load_run_checkpoint(runs_b[name])["model"]
        assert all(torch.allclose(wa[k].float(), wb[k].float(), atol=1e-6) for k in wa)


def test_train_step_returns_loss_and_mistakes():
    torch.manual_seed(0)
    member = new_member(ModelConfig("resnet", 8), _config(), CPU)
    images, labels = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    before = member.model.linear.weight.clone()
    loss, mistakes = train_step(member.model, member.optimizer, images, labels, 0.1, autocast_for(CPU, True))
    assert math.isfinite(loss) and 0 <= mistakes <= 8
    assert not torch.equal(before, member.model.linear.weight)


def test_one_writer_per_run_a_second_resume_is_refused(tiny_data, tmp_path):
    """Two resumes of one run at once would both append: the second is
    refused by name while the first holds the run, and the run is free
    again once the first race ends."""
    stopper = StopAfterEpoch(1)
    models = [ModelConfig("resnet", 8, num_classes=4)]
    first, runs = new_race(
        models, tiny_data, _config(epochs=2), tmp_path, [stopper], should_stop=lambda: stopper.stop, options=ON_CPU
    )
    first.run()
    run = runs["resnet-8"]
    resuming = resumed_race([run], tiny_data)
    with pytest.raises(RunError, match=f"{run.run_id} is being trained"):
        resumed_race([run], tiny_data)
    assert [r["epoch"] for r in run.metrics("epoch")] == [1]  # the refused one truncated nothing
    assert set(resuming.run().values()) == {"done"}
    assert [r["epoch"] for r in run.metrics("epoch")] == [1, 2]
    with run.writer():  # released when the race ended
        pass


def test_resume_clears_the_half_written_files_a_killed_writer_left(tiny_data, tmp_path):
    stopper = StopAfterEpoch(1)
    models = [ModelConfig("resnet", 8, num_classes=4)]
    first, runs = new_race(
        models, tiny_data, _config(epochs=2), tmp_path, [stopper], should_stop=lambda: stopper.stop, options=ON_CPU
    )
    first.run()
    run = runs["resnet-8"]
    leftovers = [run.checkpoint_dir / ".epoch-0002.pt.k1ll3d.tmp", run.path / ".status.json.k1ll3d.tmp"]
    for path in leftovers:
        path.write_bytes(b"half")
    resumed_race([run], tiny_data).run()
    assert not any(path.exists() for path in leftovers)


def test_runs_that_cannot_resume_together_are_named(tiny_data, tmp_path):
    models = [ModelConfig("resnet", 8, num_classes=4)]
    _, first = new_race(models, tiny_data, _config(epochs=2), tmp_path, options=ON_CPU)
    _, second = new_race(models, tiny_data, _config(epochs=3, lr=0.1), tmp_path, options=ON_CPU)
    a, b = first["resnet-8"], second["resnet-8"]
    with pytest.raises(ConfigError, match=rf"{a.run_id} and {b.run_id} differ in epochs, lr"):
        resumed_race([a, b], tiny_data)


def test_runs_of_one_recipe_that_ran_differently_resume_together(tiny_data, tmp_path):
    """Where and how a run ran (RunOptions: device, bf16, compile, log
    cadence) is not its recipe: runs that differ only there resume as one
    race, run as the resume says."""
    models = [ModelConfig("resnet", 8, num_classes=4)]
    runs = []
    for options in (ON_CPU, RunOptions(device="auto", log_every=3, bf16=False)):
        stopper = StopAfterEpoch(1)
        race, made = new_race(
            models,
            tiny_data,
            _config(epochs=2),
            tmp_path,
            [stopper],
            should_stop=lambda s=stopper: s.stop,
            options=options,
        )
        race.run()  # stopped after epoch 1: resumable
        runs.append(made["resnet-8"])
    a, b = runs
    assert a.run_options().device != b.run_options().device and a.train_config() == b.train_config()
    race = resumed_race([a, b], tiny_data, options=RunOptions(device="cpu", log_every=2))
    assert race.log_every == 2 and race.device == CPU
    assert len(race.members) == 2

import pytest
import torch

from resexplorer.cli import reference_build
from resexplorer.runs.checkpoints import load_checkpoint, load_run_checkpoint
from resexplorer.runs.recipe import TrainConfig
from resexplorer.runs.store import RunStore
from resexplorer.services.reference import ReferenceGroup

pytestmark = pytest.mark.slow  # browsers, subprocesses, builds: see pytest.ini

PAIR = ReferenceGroup("pair", "A pair", ("plain-8", "resnet-8"), "plain against residual")
SINGLE = ReferenceGroup("single", "One model", ("resnet-8-zero",), "zero-init alone")
TINY_RECIPE = TrainConfig(epochs=2, batch_size=32, lr=0.05, schedule="paper")


def build(data, out, command="cmd", groups=(PAIR, SINGLE), **kw):
    """The reference build on tiny groups and a tiny recipe."""
    reference_build.build_reference_runs(data, out, command, groups, device="cpu", recipe=TINY_RECIPE, **kw)


def test_build_trains_every_group_and_records_command_machine_and_time(tiny_data, tmp_path):
    build(tiny_data, tmp_path, "python -m resexplorer build-reference --data x")
    runs = RunStore(tmp_path).list()
    assert sorted(r.config()["model_name"] for r in runs) == ["plain-8", "resnet-8", "resnet-8-zero"]
    for run in runs:
        config = run.config()
        assert config["command"].startswith("python -m resexplorer build-reference")
        assert config["machine"] and config["build_wall_s"] > 0 and len(config["sittings"]) == 1
        assert run.status()["status"] == "done" and config["train"]["schedule"] == "paper"
    # a second build finds everything done and trains nothing
    log = []
    build(tiny_data, tmp_path, log=log.append)
    assert all("skipped" in line for line in log) and len(RunStore(tmp_path).list()) == 3


def test_a_stopped_build_continues_where_it_stopped(tiny_data, tmp_path):
    calls = {"n": 0}

    def stop_soon():
        calls["n"] += 1
        return calls["n"] > 5

    build(tiny_data, tmp_path, groups=[PAIR], should_stop=stop_soon)
    assert {r.status()["status"] for r in RunStore(tmp_path).list()} == {"cancelled"}
    for run in RunStore(tmp_path).list():  # kept moments packed to commit; the resume state stays
        files = sorted(p.name for p in run.checkpoint_dir.iterdir())
        latest = run.latest_checkpoint()
        assert latest.suffix == ".pt" and "optimizer" in load_checkpoint(latest)
        packed = [name for name in files if name != latest.name]
        assert "epoch-0000.pt.xz" in packed and all(name.endswith(".pt.xz") for name in packed), files
    build(tiny_data, tmp_path, groups=[PAIR])
    runs = RunStore(tmp_path).list()
    assert len(runs) == 2 and {r.status()["status"] for r in runs} == {"done"}
    assert all(len(r.config()["sittings"]) == 2 for r in runs)
    assert all([e["epoch"] for e in r.metrics("epoch")] == [1, 2] for r in runs)


def test_packing_shrinks_checkpoints_and_keeps_their_claims(tiny_data, tmp_path):
    from resexplorer.training.evaluation import evaluate_checkpoint

    build(tiny_data, tmp_path, groups=[PAIR])
    for run in RunStore(tmp_path).list():
        files = sorted(p.name for p in run.checkpoint_dir.iterdir())
        assert files == ["epoch-0000.pt.xz", "epoch-0001.pt.xz", "epoch-0002.pt.xz"]  # no raw .pt
        claims = {e["epoch"]: e["test_error"] for e in run.metrics("epoch")}
        for epoch in (1, 2):
            ckpt = load_run_checkpoint(run, epoch)
            assert "optimizer" not in ckpt and all(v.dtype != torch.float16 for v in ckpt["model"].values())
            assert (
                abs(evaluate_checkpoint(ckpt, tiny_data, "cpu")["test_error"] - claims[epoch])
                <= reference_build.CLAIM_TOLERANCE
            )
        assert load_run_checkpoint(run, "last")["epoch"] == 2
        packed = run.config()["packed"]
        assert set(packed) == {"0", "1", "2"} and packed["2"]["claimed_test_error"] == claims[2]


def test_a_finished_build_ships_the_inside_page_analyses(tiny_data, tmp_path):
    from resexplorer.services import analysis

    build(tiny_data, tmp_path, groups=[PAIR])
    for run in RunStore(tmp_path).list():
        for epoch in (0, 1, 2):
            assert analysis.cached(run, epoch, "inside")["n_images"] == 40  # all of the tiny test split
            assert analysis.cached(run, epoch, "gradients") is not None
        for kind in [k for k in analysis.KINDS if analysis.precomputed(k, at_end=True)]:
            assert analysis.cached(run, 2, kind)["epoch"] == 2
        assert (run.path / analysis.ANALYSIS_DIR / "epoch-0002").is_dir()  # beside the run: shipped with it

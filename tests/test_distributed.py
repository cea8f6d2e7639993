"""torchrun: DistributedDataParallel over 2 CPU processes (gloo). Ranks hold
the same model; a step is the global batch's step; rank 0 alone writes;
runs resume under torchrun and without it."""

import os
import shutil
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from ddp_ranks import CONFIG, MODELS
from helpers import ROOT

from resexplorer import faults
from resexplorer.data.sources import epoch_generator, load_dataset, random_crop_flip, shuffled_batches
from resexplorer.runs.checkpoints import load_run_checkpoint, model_from_checkpoint
from resexplorer.runs.store import RunStore
from resexplorer.training.engine import Race, lr_at, new_member

pytestmark = pytest.mark.slow  # browsers, subprocesses, builds: see pytest.ini

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
TRAIN_FLAGS = [
    *("--data", "synthetic", "--device", "cpu", "--epochs", "2", "--batch-size", "32", "--lr", "0.05"),
    *("--train-subset", "128", "--test-subset", "64", "--log-every", "1"),
]
RESULTS = ("epoch", "step", "train_loss", "train_error", "test_loss", "test_error")


def _run(command: list[str], kill: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != faults.KILL_AT}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")  # torchrun's default, said outright
    if kill:
        env[faults.KILL_AT] = kill
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _ranks(out, steps: int | None = None) -> dict[int, dict]:
    done = _run([*TORCHRUN, "tests/ddp_ranks.py", str(out), *([str(steps)] if steps else [])])
    assert done.returncode == 0, done.stderr[-3000:]
    return {rank: torch.load(out / f"rank{rank}.pt") for rank in (0, 1)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    return out, _ranks(out)


def test_ranks_hold_the_same_model_and_rank_0_alone_writes_it(trained):
    out, held = trained
    for name in held[0]:
        assert held[0][name].keys() == held[1][name].keys()
        assert all(torch.equal(held[0][name][k], held[1][name][k]) for k in held[0][name]), name
    runs = {run.config()["model_name"]: run for run in RunStore(out / "runs").list()}
    assert sorted(runs) == sorted(m.name for m in MODELS)  # one run per model: one writer
    for name, run in runs.items():
        assert run.status()["status"] == "done" and run.config()["world_size"] == 2
        assert [e["epoch"] for e in run.metrics("epoch")] == [1, 2]
        model = model_from_checkpoint(load_run_checkpoint(run))  # on one device, no DDP prefixes
        assert all(torch.equal(v, held[0][name][k]) for k, v in model.state_dict().items())


def test_a_step_across_ranks_is_the_global_batch_step(tmp_path):
    """DDP's step equals one process's step over the same global batch, the
    gradient summed over the two shards each rank takes; BatchNorm
    normalises each shard by its own statistics, as under DDP (SyncBatchNorm
    runs on GPUs only), so the shards are what the one process feeds it."""
    held = _ranks(tmp_path, steps=1)[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank computes (see _run): the same sums in the same order
    try:
        _one_process_step(held)
    finally:
        torch.set_num_threads(threads)


def _one_process_step(held: dict) -> None:
    data = load_dataset("synthetic")
    config = type(CONFIG).from_dict({**CONFIG.to_dict(), "epochs": 1, "train_subset": CONFIG.batch_size})
    for model_config in MODELS:
        model_config = type(model_config).from_dict({**model_config.to_dict(), "num_classes": data.num_classes})
        member = new_member(model_config, config, torch.device("cpu"), channels_last=True)
        race = Race([member], data, config, torch.device("cpu"), probes=[])
        gen = epoch_generator(config.seed, 0)
        indices = next(shuffled_batches(len(race.train), config.batch_size, gen, 2))
        images = race.normalize(random_crop_flip(race.train.images[indices], gen))
        labels = race.train.labels[indices]
        for group in member.optimizer.param_groups:
            group["lr"] = lr_at(0, race.total_steps, config, race.steps_per_epoch)
        member.optimizer.zero_grad()
        for rank in (0, 1):
            shard = slice(rank, None, 2)
            share = labels[shard].shape[0] / labels.shape[0]
            (F.cross_entropy(member.model(images[shard]), labels[shard]) * share).backward()
        member.optimizer.step()
        for name, param in member.model.named_parameters():
            assert torch.allclose(param, held[model_config.name][name], atol=1e-7), (model_config.name, name)


def test_runs_killed_under_torchrun_resume_under_it_and_without_it(trained, tmp_path):
    """Killed (rank 0, SIGKILL) when resnet-8 had finished epoch 2 and plain-8
    epoch 1; resumed under torchrun, both end where the uninterrupted ranks
    ended; a copy resumes in one process too."""
    reference_out, _ = trained
    killed = _run([*TORCHRUN, "-m", "resexplorer", "train", "--model", "resnet-8", "--model", "plain-8",
                   *TRAIN_FLAGS, "--runs", str(tmp_path / "runs")], kill="epoch-tidied@3")  # fmt: skip
    assert killed.returncode != 0
    runs = RunStore(tmp_path / "runs").list()
    assert sorted(len(run.metrics("epoch")) for run in runs) == [1, 2]
    shutil.copytree(tmp_path / "runs", tmp_path / "copy")

    resumed = _run([*TORCHRUN, "-m", "resexplorer", "resume", *[str(r.path) for r in runs], "--data", "synthetic"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    truth = {run.config()["model_name"]: run for run in RunStore(reference_out / "runs").list()}
    for run in runs:
        assert run.status()["status"] == "done"
        got, want = run.metrics("epoch"), truth[run.config()["model_name"]].metrics("epoch")
        assert [r[k] for r in got for k in RESULTS] == pytest.approx([r[k] for r in want for k in RESULTS])

    copies = RunStore(tmp_path / "copy").list()
    alone = _run([sys.executable, "-m", "resexplorer", "resume", *[str(r.path) for r in copies], "--data", "synthetic"])
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert all([e["epoch"] for e in run.metrics("epoch")] == [1, 2] for run in copies)

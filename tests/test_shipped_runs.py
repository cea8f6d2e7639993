"""The reference runs shipped in assets/runs: what a visitor is shown
before training anything must be complete, small and true to the paper.

These read the committed files only (no data set): the full-test-split
re-evaluation happens when a run is packed (`reference_build.pack_run`) and is
recorded in its config; here the shipped weights are re-checked on the
100 CIFAR-10 test images in assets/samples."""

from __future__ import annotations

import pytest
import torch

from resexplorer.cli.reference_build import CLAIM_TOLERANCE
from resexplorer.data.samples import cifar_samples
from resexplorer.runs.checkpoints import load_checkpoint
from resexplorer.runs.store import RunStore, epochs_to_keep
from resexplorer.science.inference import load_run_model
from resexplorer.services import analysis
from resexplorer.services.claims import claims_of_runs
from resexplorer.services.reference import (
    REFERENCE_GROUPS,
    REFERENCE_RECIPE,
    REFERENCE_RUNS_DIR,
    recipe_note,
    reference_runs,
)

# Every reference group must ship finished: a group added to the build
# fails these until its runs are trained, packed and committed.
GROUPS = list(REFERENCE_GROUPS)
END = REFERENCE_RECIPE.epochs
MOMENTS = sorted(epochs_to_keep(END))  # initialisation, first epoch, middle, end
SIZE_LIMIT = 40e6


def _shipped_bytes() -> int:
    """Every file in assets/runs except the resume state of a run still
    training (its newest epoch whole, optimizer included), which packing removes."""
    total = 0
    for run in RunStore(REFERENCE_RUNS_DIR).list():
        resume_state = run.latest_checkpoint() if run.status()["status"] != "done" else None
        total += sum(p.stat().st_size for p in run.path.rglob("*") if p.is_file() and p != resume_state)
    return total


def test_the_shipped_runs_stay_under_40_mb():
    assert RunStore(REFERENCE_RUNS_DIR).list(), "no reference runs shipped"
    assert _shipped_bytes() < SIZE_LIMIT


@pytest.mark.parametrize("group", GROUPS)
def test_each_group_is_complete_on_the_one_recipe(group):
    runs = reference_runs(group)
    assert tuple(r.config()["model_name"] for r in runs) == REFERENCE_GROUPS[group].models
    recipe = REFERENCE_RECIPE.to_dict()  # settings added since the build read their defaults
    for run in runs:
        config = run.config()
        assert run.status()["status"] == "done", run.run_id
        trained = run.train_config().to_dict()
        assert {k: trained[k] for k in recipe} == recipe, run.run_id
        epochs = run.metrics("epoch")
        assert [e["epoch"] for e in epochs] == list(range(1, END + 1))
        assert all(e["train_error"] is not None and e["test_error"] is not None for e in epochs)
        # the rebuild is on record: its command, the machine, the wall time
        assert config["command"].startswith("python -m resexplorer build-reference")
        assert config["machine"] and config["build_wall_s"] > 0 and config["sittings"]


@pytest.mark.parametrize("group", GROUPS)
def test_each_run_keeps_four_compact_moments_that_reproduce_their_claims(group):
    for run in reference_runs(group):
        assert run.kept_epochs() == MOMENTS, run.run_id
        files = sorted(p.name for p in run.checkpoint_dir.iterdir())
        assert files == [f"epoch-{e:04d}.pt.xz" for e in MOMENTS], "only compact checkpoints ship, no resume state"
        for epoch in MOMENTS:
            ckpt = load_checkpoint(run.checkpoint_path(epoch))
            assert ckpt["epoch"] == epoch and "optimizer" not in ckpt
            assert all(v.dtype in (torch.float32, torch.int64) for v in ckpt["model"].values())
        # packing re-tested each trained moment on the whole test split
        claims = {e["epoch"]: e["test_error"] for e in run.metrics("epoch")}
        packed = run.config()["packed"]
        assert sorted(int(e) for e in packed) == MOMENTS
        for epoch in MOMENTS[1:]:
            entry = packed[str(epoch)]
            assert entry["claimed_test_error"] == claims[epoch]
            assert abs(entry["reevaluated_test_error"] - claims[epoch]) <= CLAIM_TOLERANCE, (run.run_id, epoch, entry)


@pytest.mark.parametrize("group", GROUPS)
def test_the_shipped_weights_classify_the_sample_test_images_as_claimed(group):
    """The final weights err on the 100 sample test images about as often as
    their metrics claim for the whole split (3 binomial standard deviations,
    plus one image); the untrained ones are near chance."""
    images, labels, _ = cifar_samples()
    for run in reference_runs(group):
        claimed = run.metrics("epoch")[-1]["test_error"]
        for epoch, expected in ((END, claimed), (0, 0.9)):
            model = load_run_model(run, epoch, device="cpu")
            error = float((model.probabilities(images).argmax(1) != labels.numpy()).mean())
            band = 3 * (expected * (1 - expected) / len(labels)) ** 0.5 + 1 / len(labels)
            assert abs(error - expected) <= band, (run.run_id, epoch, error, expected)


def test_the_fig6_runs_show_what_the_paper_shows():
    runs = reference_runs("fig6")
    assert all(r.status()["status"] == "done" for r in runs)
    claims = claims_of_runs(runs)
    assert [c.holds for c in claims] == [True, True, True], "\n".join(map(str, claims))
    assert all(f"epoch {END}" in c.detail for c in claims[1:])  # judged at the end of training


def test_the_shortcut_option_runs_show_what_the_paper_shows():
    """Section 4.1 (Table 3): every shortcut option fixes plain-32's training, and
    the options differ little from one another."""
    runs = reference_runs("shortcuts")
    assert all(r.status()["status"] == "done" for r in runs)
    claims = claims_of_runs(runs, "shortcuts")
    assert [c.holds for c in claims] == [True, True], "\n".join(map(str, claims))
    assert all(f"epoch {END}" in c.detail for c in claims)  # judged at the end of training


def _inside(model_name: str, epoch: int) -> dict:
    """The shipped Fig. 7 analysis of one reference model (1000 test images)."""
    (run,) = [r for r in reference_runs() if r.config()["model_name"] == model_name]
    found = analysis.cached(run, epoch, "inside")
    assert found is not None, f"{model_name} ships no inside analysis at epoch {epoch}"
    return found


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return sum(values) / len(values)


def test_the_fig6_analyses_show_small_residual_responses():
    """Fig. 7 on what the Inside page shows before anyone trains: trained
    ResNets respond less than their plain counterparts, and the deeper
    ResNet's residual functions are smaller still against their inputs."""
    for depth in (20, 56):
        assert _mean(_inside(f"resnet-{depth}", END)["response_std"]) < _mean(
            _inside(f"plain-{depth}", END)["response_std"]
        )
    assert _mean(_inside("resnet-56", END)["branch_ratio"]) < _mean(_inside("resnet-20", END)["branch_ratio"])


def test_the_shortcut_analyses_show_small_residual_responses():
    """Fig. 7 holds for every shortcut option: each trained resnet-32
    responds less than plain-32 does."""
    plain = _mean(_inside("plain-32", END)["response_std"])
    for name in ("resnet-32", "resnet-32-B", "resnet-32-C"):
        assert _mean(_inside(name, END)["response_std"]) < plain, name


def test_the_zero_init_control_starts_every_residual_branch_at_zero():
    """resnet-56-zero begins as a stack of identities (F(x) = 0 in every
    block, where resnet-56 starts near the size of its inputs) and learns
    non-zero residuals from there."""
    start = _inside("resnet-56-zero", 0)["branch_ratio"]
    assert len(start) == 27 and all(r == 0 for r in start)
    assert _mean(_inside("resnet-56", 0)["branch_ratio"]) > 0.5
    assert all(r > 0 for r in _inside("resnet-56-zero", END)["branch_ratio"])


def test_the_recipe_note_says_what_the_reference_runs_are():
    note = recipe_note(reference_runs("fig6"))
    for words in ("30 epochs", "11,730 iterations", "64,000", "1-epoch warm-up", "one seed", "JPEG copy"):
        assert words in note, words
    finals = [r.summary()["final_test_error"] for r in reference_runs("fig6")]
    assert f"{100 * min(finals):.1f}–{100 * max(finals):.1f}%" in note  # theirs
    assert "7.0–13.5%" in note  # the paper's, for the same four models (Table 6; Fig. 6 read off for plain nets)


def _shipped_tta_records() -> list[tuple[str, dict]]:
    found = []
    for run in reference_runs():
        record = analysis.cached(run, END, "tta_testset")
        if record is not None:
            found.append((run.config()["model_name"], record))
    return found


def test_the_shipped_tta_costs_compare_across_strategies():
    """A shipped record's milliseconds are what a newcomer reads first: per
    forward pass, every fixed strategy costs about the same (the same model
    on the same images), so one strategy looking dear is a burst of other
    work on the build machine, not its cost."""
    records = _shipped_tta_records()
    assert records, "no shipped TTA scores"
    for model, record in records:
        per_pass = {
            s: ms / record["passes_per_image"][s]
            for s, ms in record["ms_per_image"].items()
            if s not in record.get("unsure_below", {})  # selective: its passes vary by image
        }
        assert max(per_pass.values()) < 2.5 * min(per_pass.values()), (model, per_pass)


@pytest.mark.parametrize("group", GROUPS)
def test_each_run_ships_what_the_pages_draw_on_opening(group):
    """Every analysis the reference build computes, at every kept moment or
    at the end (TTA's test-set scores, clean and corrupted, among them), is
    cached beside the run: a page that opens on a shipped run draws it at
    once, with no button to wait on."""
    for run in reference_runs(group):
        for epoch in MOMENTS:
            for kind in [k for k in analysis.KINDS if analysis.precomputed(k, at_end=epoch == END)]:
                assert analysis.shipped_beside(run, epoch, kind), (run.run_id, epoch, kind)

"""The Inside page's lines (services/inside_series.py), from analysis results and the
probes runs record. Cases whose right answer is known."""

import os
from types import SimpleNamespace

import pytest

from resexplorer.data.sources import load_dataset
from resexplorer.runs.store import Run
from resexplorer.services import analysis, inside_series

RESULT = {
    "response_std": [0.5, 2.0, 1.0],
    "layer_names": ["stem", "s1.b1.conv1", "s1.b1.conv2"],
    "branch_ratio": [0.2, 0.4],
    "block_names": ["s1.b1", "s2.b1"],
    "weight_grad_norm": [1.0, 2.0, 3.0],
    "input_grad_norm": [4.0, 5.0],
    "error_without": [0.1, 0.5],
    "baseline_error": 0.08,
    "ks": [1, 2],
    "mean_error": [0.2, 0.3],
    "draws": 5,
    "axes": [[-1.0, 0.0, 1.0]],
    "loss": [2.0, 1.0, 2.0],
    "n_images": 1000,
    "settings": {"split": "test"},
    "images": "cifar10",
}
RESNET = inside_series.Checkpoint(None, "resnet-8", "resnet-8 @ end (epoch 2)", 2, "resnet")
PLAIN = inside_series.Checkpoint(None, "plain-8", "plain-8 @ end (epoch 2)", 2, "plain")


def test_lines_from_analysis_results():
    (line,) = inside_series.response_lines([(RESNET, RESULT)])
    assert (line.label, line.model, line.x, line.y) == (
        "resnet-8 @ end (epoch 2)",
        "resnet-8",
        [1, 2, 3],
        [0.5, 2.0, 1.0],
    )
    assert line.hover == RESULT["layer_names"]
    (ranked,) = inside_series.response_lines([(RESNET, RESULT)], ranked=True)
    assert ranked.y == [2.0, 1.0, 0.5] and ranked.hover is None  # sorted: no layer to name
    (ratios,) = inside_series.ratio_lines([(RESNET, RESULT)])
    assert ratios.x == [1, 2] and ratios.y == [0.2, 0.4] and ratios.hover == RESULT["block_names"]
    (weights,) = inside_series.gradient_lines([(RESNET, RESULT)])
    (inputs,) = inside_series.gradient_lines([(RESNET, RESULT)], at_inputs=True)
    assert weights.y == [1.0, 2.0, 3.0] and inputs.y == pytest.approx([4 / 128, 5 / 128])  # 16x32x32 values each
    assert [h.split(",")[0] for h in inputs.hover] == RESULT["block_names"]
    deleted, intact = inside_series.lesion_single_lines([(RESNET, RESULT)])
    assert deleted.y == pytest.approx([10.0, 50.0]) and deleted.hover == RESULT["block_names"]
    assert intact.label.endswith(": nothing deleted") and intact.x == [1, 2] and intact.y == pytest.approx([8.0, 8.0])
    assert intact.dash == "dot" and deleted.dash == "solid"
    (randomly,) = inside_series.lesion_random_lines([(RESNET, RESULT)])
    assert randomly.x == [1, 2] and randomly.y == pytest.approx([20.0, 30.0])
    assert inside_series.lesion_draws([(RESNET, RESULT)]) == 5 and inside_series.lesion_draws([]) == 3
    (along,) = inside_series.slice_lines([(RESNET, RESULT)])
    assert along.x == [-1.0, 0.0, 1.0] and along.y == [2.0, 1.0, 2.0]
    plane = {"axes": [[-1.0, 1.0], [-1.0, 1.0]], "loss": [[1.0, 2.0], [3.0, 4.0]]}
    assert inside_series.plane_panels([(RESNET, plane)]) == [
        ("resnet-8 (epoch 2)", [-1.0, 1.0], [[1.0, 2.0], [3.0, 4.0]])
    ]
    assert inside_series.images_seen([RESULT, RESULT]) == "1,000 test images of cifar10"
    assert inside_series.images_seen([]) == ""
    assert not inside_series.any_plain([RESNET]) and inside_series.any_plain([RESNET, PLAIN])


def test_checkpoints_and_recorded_probes_of_trained_runs(two_runs, tmp_path):
    runs = [two_runs["plain-8"], two_runs["resnet-8"]]
    found, missing = inside_series.checkpoints_at(runs, "end")
    assert [(c.label, c.epoch, c.arch) for c in found] == [
        ("plain-8 @ end (epoch 2)", 2, "plain"),
        ("resnet-8 @ end (epoch 2)", 2, "resnet"),
    ]
    assert not missing
    (tmp_path / "untrained").mkdir()
    (tmp_path / "untrained" / "config.json").write_text(runs[0].config_path.read_text())
    _, missing = inside_series.checkpoints_at([Run(tmp_path / "untrained")], "end")
    assert missing == ["plain-8 (untrained)"]

    histories = [inside_series.probe_history(c) for c in found]
    assert [h.epochs for h in histories] == [[1, 2], [1, 2]]
    assert all(len(ratios) == 3 for h in histories for ratios in h.by_stage)  # three stages of one block each
    last = runs[1].metrics("epoch")[-1]["probes"]
    assert histories[1].at(2) == last["branch_ratio"] and histories[1].at(5) is None
    stages = inside_series.stage_lines(histories)
    assert [s.label for s in stages[:3]] == ["plain-8 stage 1", "plain-8 stage 2", "plain-8 stage 3"]
    assert [s.dash for s in stages[:3]] == ["solid", "dash", "dot"] and stages[5].y[-1] == last[
        "branch_ratio_by_stage"
    ][2]
    assert inside_series.last_recorded_epoch(histories) == 2 and inside_series.last_recorded_epoch([]) == 1
    assert [s.label for s in inside_series.block_lines_at(histories, 1)] == ["plain-8, epoch 1", "resnet-8, epoch 1"]
    assert inside_series.block_lines_at(histories, 7) == []


def test_the_probe_history_reads_each_epoch_record_and_skips_those_without_probes():
    def probes(epoch: int) -> dict:
        return {
            "branch_ratio_by_stage": [epoch, 2 * epoch, 3 * epoch],
            "branch_ratio": list(range(epoch, epoch + 6)),
        }

    records = [
        {"epoch": 1},
        {"epoch": 2, "probes": probes(2)},
        {"epoch": 3, "probes": {}},
        {"epoch": 4, "probes": probes(4)},
    ]
    run = SimpleNamespace(metrics=lambda kind: records if kind == "epoch" else pytest.fail(kind))
    history = inside_series.probe_history(inside_series.Checkpoint(run, "resnet-14", "resnet-14", 4))
    assert history.epochs == [2, 4] and history.at(4) == [4, 5, 6, 7, 8, 9] and history.at(3) is None
    stages = inside_series.stage_lines([history])
    assert [(s.label, s.x, s.y) for s in stages] == [
        ("resnet-14 stage 1", [2, 4], [2, 4]),
        ("resnet-14 stage 2", [2, 4], [4, 8]),
        ("resnet-14 stage 3", [2, 4], [6, 12]),
    ]
    (blocks,) = inside_series.block_lines_at([history], 2)
    assert blocks.x == [1, 2, 3, 4, 5, 6] and blocks.y == [2, 3, 4, 5, 6, 7]
    quiet = SimpleNamespace(metrics=lambda kind: records[:1])
    silent = inside_series.probe_history(inside_series.Checkpoint(quiet, "resnet-8", "resnet-8", 1))
    assert silent.epochs == [] and inside_series.stage_lines([silent]) == []
    assert not history.legacy


def test_the_gradient_growth_says_first_against_last_block_per_value():
    plain = inside_series.Checkpoint(None, "plain-56", "plain-56 @ initialisation", 0, "plain")
    dead = inside_series.Checkpoint(None, "resnet-8", "resnet-8 @ end", 2)
    results = [(plain, {"input_grad_norm": [8800.0] + [40.0] * 25 + [1.0]}), (dead, {"input_grad_norm": [1.0, 0.5, 0]})]
    assert inside_series.gradient_growth(results) == (
        "plain-56 @ initialisation: 4,400×; resnet-8 @ end: no gradient at the last block"
    )


@pytest.mark.parametrize(
    "model, kept",
    [
        ("resnet-14", [0, 1, 3, 5]),  # the first block of stages 2 and 3 changes the shape
        ("plain-14", [0, 1, 3, 5]),  # (the old records had None there already)
        ("resnet-14-B", [0, 1, 3, 5]),
        ("resnet-14-C", []),  # projections everywhere: no block's shortcut is x
    ],
)
def test_older_records_keep_only_the_blocks_where_both_measures_agree(model, kept):
    """Runs recorded before the branch ratio kept ||F(x)|| / ||x||; that equals
    ||F(x)|| / ||shortcut(x)|| where the shortcut is the identity, and only
    those blocks are shown (the stage means are taken over them)."""
    old = [0.1, 0.2, 0.5, 0.3, 0.6, 0.4]  # 6 blocks: two per stage
    records = [{"epoch": 1, "probes": {"residual_ratio": old, "residual_ratio_by_stage": [9, 9, 9]}}]
    run = SimpleNamespace(metrics=lambda kind: records)
    history = inside_series.probe_history(inside_series.Checkpoint(run, model, model, 1))
    assert history.legacy and history.epochs == [1]
    assert history.at(1) == [v if i in kept else None for i, v in enumerate(old)]
    means = [
        sum(old[i] for i in kept if i // 2 == stage) / max(1, sum(i // 2 == stage for i in kept)) for stage in range(3)
    ]
    assert history.by_stage[0] == [m if any(i // 2 == s for i in kept) else None for s, m in enumerate(means)]


def test_the_lines_read_real_analysis_results(two_runs):
    run = two_runs["plain-8"]
    pool = analysis.ImagePool.from_dataset(load_dataset(os.environ["RESEXPLORER_DATA"]))  # the runs' image folder
    (checkpoint,), _ = inside_series.checkpoints_at([run], "end")
    settings = {
        "inside": {"n": 12},
        "gradients": {"n": 12},
        "lesion_single": {"n": 12},
        "landscape_1d": {"n": 12, "points": 3},
    }
    results = {kind: analysis.compute(run, 2, kind, pool, device="cpu", **s) for kind, s in settings.items()}
    (responses,) = inside_series.response_lines([(checkpoint, results["inside"])])
    assert len(responses.y) == len(responses.hover) > 0
    (ratios,) = inside_series.ratio_lines([(checkpoint, results["inside"])])
    assert len(ratios.y) == 3  # plain-8's three blocks
    assert len(inside_series.gradient_lines([(checkpoint, results["gradients"])], at_inputs=True)[0].y) == 3
    deleted, intact = inside_series.lesion_single_lines([(checkpoint, results["lesion_single"])])
    assert len(deleted.y) == 3 and intact.y[0] == pytest.approx(100 * results["lesion_single"]["baseline_error"])
    assert len(inside_series.slice_lines([(checkpoint, results["landscape_1d"])])[0].y) == 3
    assert inside_series.images_seen([results["inside"]]) == f"12 test images of {pool.name}"

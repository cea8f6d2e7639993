"""The Fig. 6 and shortcut-option checks, on constructed per-epoch records."""

import pytest

from resexplorer.cli import main
from resexplorer.nets.config import ModelConfig
from resexplorer.runs.recipe import TrainConfig
from resexplorer.runs.store import RunStore
from resexplorer.services.claims import fig6_claims, shortcut_claims


def _records(train: list[float], test: list[float]) -> list[dict]:
    return [{"epoch": e + 1, "train_error": a, "test_error": b} for e, (a, b) in enumerate(zip(train, test))]


def _paper_like() -> dict[str, list[dict]]:
    """Ten epochs shaped like Fig. 6: the deep plain net worst, the deep ResNet best."""
    return {
        "plain-20": _records([0.5 - 0.03 * e for e in range(10)], [0.5 - 0.025 * e for e in range(10)]),
        "plain-56": _records([0.7 - 0.02 * e for e in range(10)], [0.7 - 0.02 * e for e in range(10)]),
        "resnet-20": _records([0.45 - 0.03 * e for e in range(10)], [0.45 - 0.03 * e for e in range(10)]),
        "resnet-56": _records([0.45 - 0.035 * e for e in range(10)], [0.46 - 0.032 * e for e in range(10)]),
    }


def test_runs_shaped_like_the_paper_pass_every_check():
    claims = fig6_claims(_paper_like())
    assert [c.holds for c in claims] == [True, True, True], [str(c) for c in claims]
    assert "epochs 6-10" in claims[0].detail


@pytest.mark.parametrize(
    "model, epoch, key, value, broken",
    [
        ("plain-56", 7, "train_error", 0.2, 0),  # one epoch of the last half below plain-20: degradation fails
        ("resnet-56", 10, "test_error", 0.5, 1),  # deeper ResNet ends worse on the test set
        ("resnet-56", 10, "train_error", 0.9, 2),  # deeper ResNet ends above the plain net in training
    ],
)
def test_each_check_fails_when_its_finding_is_not_there(model, epoch, key, value, broken):
    epochs = _paper_like()
    epochs[model][epoch - 1][key] = value
    claims = fig6_claims(epochs)
    assert [i for i, c in enumerate(claims) if not c.holds] == [broken], [str(c) for c in claims]
    assert "FAILS" in str(claims[broken])


def test_a_plain_gap_in_the_first_half_does_not_count():
    epochs = _paper_like()
    epochs["plain-56"][1]["train_error"] = 0.1  # epoch 2: early training is noisy
    assert fig6_claims(epochs)[0].holds


def test_unfinished_runs_are_compared_at_the_last_epoch_all_reached():
    epochs = _paper_like()
    epochs["resnet-20"] = epochs["resnet-20"][:6]
    claims = fig6_claims(epochs)
    assert "epoch 6:" in claims[1].detail and "epochs 4-6" in claims[0].detail


def test_a_missing_model_is_an_error_not_a_pass():
    epochs = _paper_like()
    del epochs["plain-20"]
    with pytest.raises(ValueError, match="plain-20"):
        fig6_claims(epochs)


def _store_group(root, epochs: dict[str, list[dict]], group: str = "fig6") -> None:
    store = RunStore(root)
    for name, records in epochs.items():
        run = store.create(
            ModelConfig.from_name(name),
            TrainConfig(epochs=len(records)),
            {"source": "synthetic"},
            extra={"reference_group": group},
        )
        for record in records:  # what the claims read, in a record complete enough to be read
            complete = {"step": 10 * record["epoch"], "train_loss": None, "test_loss": None, "lr": 0.1}
            run.append_metric({"kind": "epoch", **complete, **record})
        run.set_status("done")


def test_the_command_line_reports_each_check_and_fails_when_one_fails(tmp_path, capsys):
    _store_group(tmp_path / "good", _paper_like())
    assert main(["check-claims", "--runs", str(tmp_path / "good")]) == 0
    out = capsys.readouterr().out
    assert out.count("[ok]") == 3 and "plain-56: done, epoch 10 of 10" in out
    epochs = _paper_like()
    epochs["resnet-56"][-1]["test_error"] = 0.99
    _store_group(tmp_path / "bad", epochs)
    assert main(["check-claims", "--runs", str(tmp_path / "bad")]) == 1
    assert "[FAILS] resnet-56's final test error" in capsys.readouterr().out


# --- section 4.1 (Table 3): shortcut options ------------------------------------------


def _options_like_the_paper() -> dict[str, list[dict]]:
    """Ten epochs shaped like Table 3: plain-32 worst, A/B/C close together."""
    return {
        "plain-32": _records([0.6 - 0.025 * e for e in range(10)], [0.6 - 0.02 * e for e in range(10)]),
        "resnet-32": _records([0.5 - 0.03 * e for e in range(10)], [0.5 - 0.03 * e for e in range(10)]),
        "resnet-32-B": _records([0.5 - 0.031 * e for e in range(10)], [0.5 - 0.031 * e for e in range(10)]),
        "resnet-32-C": _records([0.5 - 0.032 * e for e in range(10)], [0.5 - 0.032 * e for e in range(10)]),
    }


def test_shortcut_options_shaped_like_the_paper_pass_both_checks():
    claims = shortcut_claims(_options_like_the_paper())
    assert [c.holds for c in claims] == [True, True], [str(c) for c in claims]
    # epoch 10: A 23%, B 22.1%, C 21.2% against plain-32's 42% (test)
    assert (
        "A 23.00%, B 22.10%, C 21.20%, within 1.80 points; plain-32 42.00%, 19.00 points above the worst"
        in claims[1].detail
    )


@pytest.mark.parametrize(
    "model, key, value, broken",
    [
        ("resnet-32-B", "train_error", 0.5, 0),  # option B trains worse than the plain net
        ("resnet-32-C", "test_error", 0.02, 1),  # option C far better than A: the options differ a lot
        ("plain-32", "test_error", 0.24, 1),  # the plain net as good as the options
    ],
)
def test_each_shortcut_check_fails_when_its_finding_is_not_there(model, key, value, broken):
    epochs = _options_like_the_paper()
    epochs[model][-1][key] = value
    claims = shortcut_claims(epochs)
    assert [i for i, c in enumerate(claims) if not c.holds] == [broken], [str(c) for c in claims]


def test_a_missing_shortcut_option_is_an_error_not_a_pass():
    epochs = _options_like_the_paper()
    del epochs["resnet-32-C"]
    with pytest.raises(ValueError, match="resnet-32-C"):
        shortcut_claims(epochs)


def test_the_command_line_checks_every_group_the_folder_holds(tmp_path, capsys):
    _store_group(tmp_path, _paper_like(), "fig6")
    assert main(["check-claims", "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("[ok]") == 3 and "shortcuts: no runs, not checked" in out
    assert main(["check-claims", "--runs", str(tmp_path), "--group", "shortcuts"]) == 2  # asked for, absent: an error
    assert "no reference runs of shortcuts to check" in capsys.readouterr().err
    epochs = _options_like_the_paper()
    epochs["resnet-32"][-1]["train_error"] = 0.9
    _store_group(tmp_path, epochs, "shortcuts")
    assert main(["check-claims", "--runs", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("[ok]") == 4 and "[FAILS] resnet-32 with shortcut option A, B or C" in out
    assert main(["check-claims", "--runs", str(tmp_path), "--group", "fig6"]) == 0


def test_an_empty_folder_has_nothing_to_check(tmp_path, capsys):
    assert main(["check-claims", "--runs", str(tmp_path)]) == 2
    assert "no reference runs of fig6, shortcuts" in capsys.readouterr().err

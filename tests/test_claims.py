"""The Fig. 6 checks, on constructed per-epoch records."""

import pytest

from resexplorer.claims import fig6_claims
from resexplorer.cli import main
from resexplorer.models import ModelConfig
from resexplorer.runs import RunStore
from resexplorer.train import TrainConfig


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


def _store_fig6(root, epochs: dict[str, list[dict]]) -> None:
    store = RunStore(root)
    for name, records in epochs.items():
        run = store.create(ModelConfig.from_name(name), TrainConfig(epochs=len(records)), {"source": "synthetic"}, extra={"reference_group": "fig6"})
        for record in records:
            run.append_metric({"kind": "epoch", **record})
        run.set_status("done")


def test_the_command_line_reports_each_check_and_fails_when_one_fails(tmp_path, capsys):
    _store_fig6(tmp_path / "good", _paper_like())
    assert main(["check-claims", "--runs", str(tmp_path / "good")]) == 0
    out = capsys.readouterr().out
    assert out.count("[ok]") == 3 and "plain-56: done, epoch 10 of 10" in out
    epochs = _paper_like()
    epochs["resnet-56"][-1]["test_error"] = 0.99
    _store_fig6(tmp_path / "bad", epochs)
    assert main(["check-claims", "--runs", str(tmp_path / "bad")]) == 1
    assert "[FAILS] resnet-56's final test error" in capsys.readouterr().out

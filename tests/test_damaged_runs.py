"""One damaged run never hides the others: every reader of run files checks
what it reads, a run whose config cannot be read is listed as damaged with
what is wrong, and a run with damaged metric lines is shown without them,
with a word about them. By the store, the `runs` command and every page
that offers runs."""

import json
import shutil
import socket

import pytest
from helpers import ON_CPU_EVERY_STEP, app, drawn

from resexplorer.cli import main
from resexplorer.nets.config import ModelConfig
from resexplorer.runs.recipe import TrainConfig
from resexplorer.runs.store import RunStore
from resexplorer.services import reference
from resexplorer.services.run_table import run_rows
from resexplorer.training.launch import new_race


def _config_text(run_path) -> str:
    return (run_path / "config.json").read_text()


def _insert_metric_line(run_path, line: bytes) -> None:
    """A bad line in the middle of the metrics, not a torn last one."""
    path = run_path / "metrics.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:3], line + b"\n", *lines[3:]]))


def _replace_config(run_path, change) -> None:
    config = json.loads(_config_text(run_path))
    (run_path / "config.json").write_text(json.dumps(change(config)))


DEEP = "[" * 100_000 + "]" * 100_000  # 200 KB that no JSON parser reads: RecursionError

# name: (damage, the words that say what is wrong)
CONFIG_DAMAGE = {
    "config-not-utf8": (lambda p: (p / "config.json").write_bytes(b"\xff\xfe{\x00}"), "not UTF-8"),
    "config-not-an-object": (lambda p: (p / "config.json").write_text("[1, 2]"), "not a JSON object"),
    "config-truncated": (
        lambda p: (p / "config.json").write_text(_config_text(p)[: len(_config_text(p)) // 2]),
        "not valid JSON",
    ),
    "config-lacks-keys": (lambda p: _replace_config(p, lambda c: {"format": c["format"]}), "lacks model_name"),
    "config-bad-model": (lambda p: _replace_config(p, lambda c: {**c, "model": {"arch": 7}}), "model settings"),
    # nested deeper than a JSON parser goes: RecursionError, not JSONDecodeError
    "config-nested-too-deep": (lambda p: (p / "config.json").write_text(DEEP), "not valid JSON"),
    "config-bad-train": (
        lambda p: _replace_config(p, lambda c: {**c, "train": {"epochs": "x"}}),
        "training settings are invalid (a value of the wrong type)",
    ),
}
METRICS_DAMAGE = {
    "metrics-not-utf8": (lambda p: _insert_metric_line(p, b'{"kind":"train","step":\xff}'), "line 4 is not UTF-8"),
    "metrics-line-not-an-object": (lambda p: _insert_metric_line(p, b"[1, 2]"), "line 4 is not a JSON object"),
    "metrics-line-not-json": (lambda p: _insert_metric_line(p, b"{kind: epoch"), "line 4 is not valid JSON"),
    "metrics-line-nested-too-deep": (lambda p: _insert_metric_line(p, DEEP.encode()), "line 4 is not valid JSON"),
    "epoch-record-lacks-keys": (lambda p: _insert_metric_line(p, b'{"kind":"epoch"}'), "line 4 is an epoch record"),
    "epoch-record-bad-probes": (
        lambda p: _insert_metric_line(
            p,
            b'{"kind":"epoch","epoch":1,"step":2,"train_loss":1,"train_error":1,"test_loss":null,'
            b'"test_error":null,"lr":0.1,"probes":[1]}',
        ),
        "line 4 is an epoch record",
    ),
}
STATUS_DAMAGE = {
    "status-pid-not-a-number": (
        lambda p: (p / "status.json").write_text(
            json.dumps({"status": "running", "pid": "abc", "host": socket.gethostname()})
        ),
        None,
    ),
    "status-not-an-object": (lambda p: (p / "status.json").write_text("[]"), None),
    "status-nested-too-deep": (lambda p: (p / "status.json").write_text(DEEP), None),
}
DAMAGE = {**CONFIG_DAMAGE, **METRICS_DAMAGE, **STATUS_DAMAGE}


@pytest.fixture(scope="module")
def good_run(tiny_data, tmp_path_factory):
    race, runs = new_race(
        [ModelConfig("resnet", 8, num_classes=4)],
        tiny_data,
        TrainConfig(epochs=2, batch_size=32, lr=0.05),
        tmp_path_factory.mktemp("good"),
        options=ON_CPU_EVERY_STEP,
    )
    race.run()
    return runs["resnet-8"]


def _folder(tmp_path, good_run, damages) -> tuple:
    """A runs folder: the good run and a damaged copy of it per damage."""
    root = tmp_path / "runs"
    shutil.copytree(good_run.path, root / good_run.run_id)
    for name in damages:
        copy = root / f"20260101-000000-resnet-8-{name}"
        shutil.copytree(good_run.path, copy)
        DAMAGE[name][0](copy)
    return root, good_run.run_id


@pytest.mark.parametrize("name", list(DAMAGE))
def test_a_damaged_run_is_named_with_what_is_wrong_and_the_others_stay_listed(tmp_path, good_run, name):
    root, good = _folder(tmp_path, good_run, [name])
    damaged_id = f"20260101-000000-resnet-8-{name}"
    runs, damaged, _ = RunStore(root).scan()
    listed = [r.run_id for r in runs]
    assert good in listed
    words = DAMAGE[name][1]
    if name in CONFIG_DAMAGE:
        assert damaged_id not in listed
        assert [d.run_id for d in damaged] == [damaged_id]
        assert words in damaged[0].problem, damaged[0].problem
    else:
        assert damaged_id in listed and not damaged
        rows, problems = run_rows(runs, shipped=())
        assert {row["run"] for row in rows} == {good, damaged_id}
        by_id = {row["run"]: row for row in rows}
        assert by_id[damaged_id]["epochs"] == "2/2"  # the good lines still count
        if words:
            assert any(damaged_id in p and "metrics.jsonl" in p and words in p for p in problems), problems
        else:
            assert by_id[damaged_id]["status"] == "interrupted"


def test_a_torn_last_line_is_what_a_kill_leaves_not_damage(tmp_path, good_run):
    root, _ = _folder(tmp_path, good_run, [])
    run = RunStore(root).list()[0]
    with open(run.metrics_path, "ab") as handle:
        handle.write(b'{"kind":"train","st')
    assert run.problems() == [] and len(run.metrics("epoch")) == 2


def test_the_runs_command_lists_the_good_runs_and_names_the_damaged(tmp_path, good_run, capsys):
    root, good = _folder(tmp_path, good_run, list(DAMAGE))
    assert main(["runs", "--runs", str(root)]) == 0
    out = capsys.readouterr().out
    assert good in out and "Traceback" not in out
    for name in DAMAGE:
        assert f"resnet-8-{name}" in out, name
    for name, (_, words) in CONFIG_DAMAGE.items():
        line = next(line for line in out.splitlines() if f"resnet-8-{name}" in line)
        assert "damaged" in line and words in line, line


@pytest.mark.parametrize("page", ["pages/runs.py", "pages/inside.py", "pages/attributions.py", "pages/tta.py"])
def test_pages_that_offer_runs_survive_damaged_ones(tmp_path, good_run, monkeypatch, page):
    root, good = _folder(tmp_path, good_run, list(DAMAGE))
    monkeypatch.setenv("RESEXPLORER_RUNS", str(root))
    monkeypatch.setattr(reference, "REFERENCE_RUNS_DIR", tmp_path / "no-shipped-runs")
    at = app(page)
    assert not at.exception, at.exception
    said = " ".join(drawn(w) for w in [*at.warning, *at.caption, *at.info])
    if page == "pages/runs.py":
        assert good in at.dataframe[0].value["run"].tolist()
        for name, (_, words) in CONFIG_DAMAGE.items():
            assert f"resnet-8-{name}" in said and words in said, name
    else:
        assert f"{len(CONFIG_DAMAGE)} damaged" in said, said


def test_the_runs_page_deletes_the_damaged_runs_and_keeps_the_good(tmp_path, good_run, monkeypatch):
    root, good = _folder(tmp_path, good_run, list(CONFIG_DAMAGE))
    monkeypatch.setenv("RESEXPLORER_RUNS", str(root))
    monkeypatch.setattr(reference, "REFERENCE_RUNS_DIR", tmp_path / "no-shipped-runs")
    at = app("pages/runs.py")
    assert at.button(key="delete_damaged").disabled
    at.checkbox(key="confirm_delete_damaged").check().run()
    at.button(key="delete_damaged").click().run()
    assert not at.exception and not at.error
    assert sorted(p.name for p in root.iterdir()) == [good]
    runs, damaged, _ = RunStore(root).scan()
    assert [run.run_id for run in runs] == [good] and not damaged

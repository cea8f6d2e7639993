"""AppTest: every page renders with the shared sidebar; the Train page's model rows
and shortcut controls; a real job drawn live."""

import json
import shutil
import time
import urllib.request

import pytest
from app_server import serve
from helpers import ROOT, app, curves, drawn, figures, make_image_folder, tick_runs, ticked_runs, wait_for_job

from resexplorer.runs.store import RunStore
from resexplorer.services import reference
from resexplorer.services.claims import FIG6_MODELS
from resexplorer.services.reference import recipe_note, reference_runs
from resexplorer.services.run_table import curve_label
from resexplorer.training.jobs import JobManager

PAGES = [
    "pages/train.py",
    "pages/inside.py",
    "pages/attributions.py",
    "pages/tta.py",
    "pages/runs.py",
    "pages/playground.py",
]
NAVIGATION = [
    "Home",
    "Train & compare",
    "Inside the nets",
    "Attributions",
    "Test-time augmentation",
    "Runs",
    "Playground",
]


def _navigation(at) -> list[str]:
    """The app's own navigation in the sidebar: its page links' labels."""
    return [link.proto.label for link in at.sidebar.get("page_link")]


@pytest.fixture()
def empty_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("RESEXPLORER_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("RESEXPLORER_DATA", raising=False)
    return tmp_path / "runs"


@pytest.mark.parametrize("page", [None, *PAGES])
def test_every_page_renders_with_the_shared_sidebar_on_the_shipped_assets(empty_runs, page):
    at = app(page)
    assert not at.exception
    assert at.title and not at.error
    assert _navigation(at) == NAVIGATION
    assert any("Device" in m.value for m in at.sidebar.markdown)
    assert [r.label for r in at.sidebar.radio] == ["Data source"]
    assert at.sidebar.text_input(key="runs_dir_input").value == str(empty_runs)


def test_the_pages_folder_holds_pages_only_and_every_page_is_linked():
    """Helpers the pages share live in ui/, so Streamlit lists no helper as a
    page; every page file has its entry in the navigation, and its URL is its
    file name."""
    from ui.sidebar import PAGES as LINKED

    files = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))
    assert files == sorted(PAGES) and [p.script for p in LINKED] == ["app.py", *PAGES]
    assert [p.title for p in LINKED] == NAVIGATION


def test_the_sidebar_choices_hold_across_pages(empty_runs, tmp_path):
    at = app()
    at.sidebar.text_input(key="runs_dir_input").set_value(str(tmp_path / "elsewhere")).run()
    at.sidebar.radio(key="source_choice").set_value("Synthetic (generated, no download)").run()
    at.switch_page("pages/runs.py").run()
    assert not at.exception
    assert at.sidebar.text_input(key="runs_dir_input").value == str(tmp_path / "elsewhere")
    assert at.sidebar.radio(key="source_choice").value == "Synthetic (generated, no download)"


@pytest.fixture()
def folder_app(tmp_path, monkeypatch):
    folder = make_image_folder(tmp_path / "images")
    monkeypatch.setenv("RESEXPLORER_DATA", str(folder))
    monkeypatch.setenv("RESEXPLORER_RUNS", str(tmp_path / "runs"))
    yield tmp_path / "runs"
    job = JobManager(tmp_path / "runs").active()
    if job:
        job.cancel()
        wait_for_job(tmp_path / "runs", timeout=60)  # its worker frees the machine for the next test's job


def _start_custom_job(at, models, epochs=2):
    at.selectbox(key="preset").select("Custom").run()
    at.multiselect(key="models_by_name").set_value(models).run()
    at.number_input(key="epochs:Custom").set_value(epochs).run()
    at.number_input(key="train_subset:Custom").set_value(0).run()
    at.number_input(key="test_subset:Custom").set_value(0).run()
    at.number_input(key="batch_size:Custom").set_value(16).run()
    at.button(key="start").click().run()
    return at


@pytest.mark.slow
def test_starting_a_tiny_job_draws_its_runs_metrics(folder_app):
    at = app("pages/train.py")
    assert any("Expected duration" in m.value for m in at.markdown)
    _start_custom_job(at, ["plain-8", "resnet-8"])
    status = wait_for_job(folder_app)
    assert status["state"] == "done", status
    at.run()
    assert not at.exception
    drawn = curves(figures(at))
    for model in ("plain-8", "resnet-8"):
        assert len(drawn[f"{model} training error"]) >= 1
        run = next(r for r in RunStore(folder_app).list() if r.config()["model_name"] == model)
        claimed = [100 * r["test_error"] for r in run.metrics("epoch")]
        assert drawn[f"{model} test error"] == pytest.approx(claimed, abs=1e-3)  # drawn rounded to 0.001 point
    assert any("Job done" in s.value for s in at.success)
    # no shipped run of plain-8 or resnet-8: the Fig. 6 reference runs lie underneath
    faded = {name.rsplit(" ", 2)[0] for name in curves(figures(at), reference=True)}
    assert faded == set(FIG6_MODELS)
    live = next(f for f in figures(at) if curves([f]))
    assert live["layout"]["uirevision"]  # zoom, pan and hidden entries survive the refreshes
    groups = {t["meta"]["run"]: t["legendgroup"] for t in live["data"] if not t["meta"]["reference"]}
    assert sorted(groups) == ["plain-8", "resnet-8"] and len(set(groups.values())) == 2  # a legend group per model
    assert all(t["legendgroup"] == groups[t["meta"]["run"]] for t in live["data"] if not t["meta"]["reference"])
    at.toggle(key="log_y").set_value(True).run()
    live = next(f for f in figures(at) if curves([f]))
    assert live["layout"]["yaxis"]["type"] == "log"
    drawn = [v for values in curves([live]).values() for v in values if v > 0]
    low, high = live["layout"]["yaxis"]["range"]
    assert 10**low <= min(drawn) and max(drawn) <= 10**high  # fitted to the data
    assert [b.label for b in at.get("download_button")] == ["Chart (HTML)", "Metrics (CSV)"]


@pytest.mark.slow
def test_a_second_start_while_a_job_runs_is_queued_and_the_page_says_its_place(folder_app):
    at = app("pages/train.py")
    _start_custom_job(at, ["resnet-14"], epochs=50)
    (first,) = JobManager(folder_app).jobs()
    deadline = time.time() + 60
    while first.status().get("step", 0) < 1 and time.time() < deadline:
        time.sleep(0.2)
    at.button(key="start").click().run()  # a second Start: queued behind the first
    _, second = JobManager(folder_app).jobs()
    assert second.status()["state"] == "queued"
    assert at.query_params["job"] == second.job_id  # the link to this page follows the visitor's own job
    said = " ".join(i.value for i in at.info)
    assert "Your job is queued: **next in line** (1 training ahead of it)" in said, said
    assert "should start in **about" in said  # the first job's time left
    assert at.button(key="stop").label == "Leave the queue"
    at.button(key="stop").click().run()
    assert second.status()["state"] == "cancelled" and first.status()["state"] == "running"
    assert at.button(key="stop").label == "Stop"  # now the job that trains
    at.button(key="stop").click().run()
    deadline = time.time() + 60
    while first.active and time.time() < deadline:
        time.sleep(0.5)
    status = first.status()
    assert status["state"] == "cancelled" and status["step"] < status["total_steps"]
    assert {r.status()["status"] for r in RunStore(folder_app).list()} == {"cancelled"}


def test_stop_while_the_job_is_still_starting_cancels_it(folder_app):
    at = app("pages/train.py")
    _start_custom_job(at, ["resnet-14"], epochs=50)
    at.button(key="stop").click().run()  # at once: the worker may not even run Python yet
    assert wait_for_job(folder_app, timeout=60)["state"] == "cancelled"
    assert all(r.status()["status"] == "cancelled" for r in RunStore(folder_app).list())


def test_a_bad_folder_becomes_a_message_that_says_what_to_do(folder_app, monkeypatch, tmp_path):
    monkeypatch.setenv("RESEXPLORER_DATA", str(tmp_path / "nowhere"))
    at = app("pages/train.py")
    assert any("not usable" in w.value for w in at.warning)
    assert at.button(key="start").disabled


@pytest.mark.slow
def test_runs_page_plots_deletes_and_resumes(folder_app):
    at = app("pages/train.py")
    _start_custom_job(at, ["resnet-8"], epochs=40)
    deadline = time.time() + 60
    while not any(r.metrics("epoch") for r in RunStore(folder_app).list()) and time.time() < deadline:
        time.sleep(0.2)
    at.button(key="stop").click().run()
    assert wait_for_job(folder_app, timeout=60)["state"] == "cancelled"

    at = app("pages/runs.py")
    at.toggle(key="include_reference").set_value(False).run()
    run = RunStore(folder_app).list()[0]
    assert at.dataframe[0].value["status"].tolist() == ["cancelled"]
    tick_runs(at, [run.run_id])
    assert any(name.startswith("resnet-8") for name in curves(figures(at)))
    at.button(key="resume").click().run()
    assert any("Resuming" in s.value for s in at.success)
    assert wait_for_job(folder_app)["state"] == "done"
    assert run.status()["status"] == "done" and run.metrics("epoch")[-1]["epoch"] == 40

    at = app("pages/runs.py")
    at.toggle(key="include_reference").set_value(False).run()
    tick_runs(at, [run.run_id])
    at.checkbox(key="confirm_delete").check().run()
    at.button(key="delete").click().run()
    assert RunStore(folder_app).list() == []


def test_streamlit_run_app_starts_and_serves(empty_runs):
    proc, url = serve()  # raises unless the health check answers "ok"
    try:
        assert urllib.request.urlopen(f"{url}/_stcore/health", timeout=5).read() == b"ok"
    finally:
        proc.terminate()
        proc.wait(20)


def test_home_draws_the_latest_runs_when_no_reference_runs_ship(two_runs):
    at = app()
    assert not at.exception and any("your latest runs" in c.value for c in at.caption)
    assert {"plain-8 training error", "plain-8 test error", "resnet-8 training error", "resnet-8 test error"} <= set(
        curves(figures(at))
    )


def test_home_states_the_papers_findings_as_the_shipped_runs_show_them(empty_runs):
    from resexplorer.services.claims import fig6_claims
    from resexplorer.services.reference import reference_runs

    at = app()
    claims = fig6_claims({r.config()["model_name"]: r.metrics("epoch") for r in reference_runs("fig6")})
    text = next(m.value for m in at.markdown if "What these runs show" in m.value)
    for claim in claims:
        assert f"{'✅' if claim.holds else '❌'} {claim.text} ({claim.detail})" in text


def test_home_draws_the_shipped_shortcut_options_and_checks_them(empty_runs):
    from resexplorer.services.claims import SHORTCUT_MODELS, shortcut_claims
    from resexplorer.services.reference import reference_runs

    runs = reference_runs("shortcuts")
    at = app()
    assert not at.exception
    options_chart = curves(figures(at)[1:])  # the first chart is Fig. 6's
    for run in runs:
        model = run.config()["model_name"]
        claimed = [100 * r["test_error"] for r in run.metrics("epoch")]
        assert options_chart[f"{model} test error"] == pytest.approx(claimed, abs=1e-3)
    assert {r.config()["model_name"] for r in runs} == set(SHORTCUT_MODELS)
    claims = shortcut_claims({r.config()["model_name"]: r.metrics("epoch") for r in runs})
    text = next(m.value for m in at.markdown if "What these runs show" in m.value and "shortcut options" in m.value)
    for claim in claims:
        assert f"{'✅' if claim.holds else '❌'} {claim.text} ({claim.detail})" in text


@pytest.mark.parametrize(
    "preset, shown",
    [
        ("Shortcut options", ("plain-32", "resnet-32", "resnet-32-B", "resnet-32-C")),
        ("Quick demo", ("plain-20", "resnet-20")),
        ("Custom", ("plain-20", "resnet-20")),
    ],
)
def test_before_any_job_the_train_page_shows_the_presets_shipped_runs(empty_runs, preset, shown):
    at = app("pages/train.py")
    at.selectbox(key="preset").select(preset).run()
    assert not at.exception
    faded = {name.rsplit(" ", 2)[0] for name in curves(figures(at), reference=True)}
    assert faded == set(shown)
    assert any(f"shipped reference runs of {', '.join(shown)}" in i.value for i in at.info)


@pytest.mark.parametrize(
    "shortcuts, shown",
    [
        ("off", {"plain-20", "plain-56"}),
        ("on", {"resnet-20", "resnet-56"}),
        ("both", {"plain-20", "plain-56", "resnet-20", "resnet-56"}),
    ],
)
def test_home_toggles_the_shortcuts_of_the_degradation_chart(empty_runs, shortcuts, shown):
    at = app()
    at.segmented_control(key="home_shortcuts").set_value(shortcuts).run()
    assert not at.exception
    assert {name.rsplit(" ", 2)[0] for name in curves(figures(at)[:1])} == shown


def _rows(at) -> list[tuple]:
    """The Train page's model rows as drawn: (depth, shortcut, zero-init)."""
    depths = [s.value for s in at.selectbox if s.key and s.key.startswith("row:")]
    shortcuts = [s.value for s in at.segmented_control if s.key and s.key.startswith("row:")]
    zeros = [c.value for c in at.checkbox if c.key and c.key.startswith("row:")]
    return list(zip(depths, shortcuts, zeros))


def _row_widgets(widgets, suffix: str = "") -> list:
    return [w for w in widgets if w.key and w.key.startswith("row:") and w.key.endswith(suffix)]


def test_train_models_are_rows_with_a_shortcut_to_toggle_and_twins(empty_runs):
    at = app("pages/train.py")
    at.selectbox(key="preset").select("Degradation (Fig. 6)").run()
    assert _rows(at) == [(20, "off", False), (56, "off", False), (20, "A", False), (56, "A", False)]
    assert at.multiselect(key="models_by_name").value == ["plain-20", "plain-56", "resnet-20", "resnet-56"]

    at.selectbox(key="preset").select("Custom").run()  # Custom keeps the rows
    while len(_row_widgets(at.button, ":remove")) > 1:
        _row_widgets(at.button, ":remove")[-1].click().run()
    assert _rows(at) == [(20, "off", False)]
    _row_widgets(at.segmented_control)[0].set_value("B").run()  # the shortcut switched on, option B
    assert at.multiselect(key="models_by_name").value == ["resnet-20-B"]
    _row_widgets(at.segmented_control)[0].set_value("off").run()  # and off again
    _row_widgets(at.selectbox)[0].set_value(56).run()
    assert at.multiselect(key="models_by_name").value == ["plain-56"]
    assert _row_widgets(at.checkbox)[0].disabled  # zero-init: residual nets only

    at.button(key="add_twins").click().run()  # plain-56 gets resnet-56
    assert at.multiselect(key="models_by_name").value == ["plain-56", "resnet-56"]
    _row_widgets(at.checkbox)[1].check().run()
    assert at.multiselect(key="models_by_name").value == ["plain-56", "resnet-56-zero"]
    at.button(key="add_model").click().run()
    assert _rows(at)[-1] == (56, "A", False)

    at.multiselect(key="models_by_name").set_value(["resnet-110-C", "plain-8"]).run()  # the advanced entry
    assert _rows(at) == [(110, "C", False), (8, "off", False)]
    assert not at.exception


@pytest.mark.parametrize(
    "failure, advice",
    [
        ({"kind": "data", "message": "Could not get CIFAR-10", "what_to_do": "choose another"}, "Offline?"),
        ({"kind": "memory", "message": "out of memory", "what_to_do": "use a smaller batch size"}, "Use a smaller"),
    ],
)
def test_a_failed_job_shows_its_message_and_what_to_do(empty_runs, failure, advice):
    """The Train page reads the job's failure record: the page's own advice
    for a data source, the record's for the rest."""
    job_dir = empty_runs / ".jobs" / "20260101-000000-abcdef"
    job_dir.mkdir(parents=True)
    (job_dir / "job.json").write_text('{"pid": 0}')
    progress = {"state": "failed", "message": failure["message"], "failure": failure, "step": 0, "total_steps": 0}
    (job_dir / "progress.json").write_text(json.dumps(progress))
    at = app("pages/train.py")
    assert [drawn(e) for e in at.error] == [f"The job failed: {failure['message']}"]
    assert any(i.value.startswith(advice) for i in at.info), [i.value for i in at.info]


def test_wherever_the_reference_runs_are_drawn_their_recipe_is_said(empty_runs):
    """Their errors are not comparable with the paper's (short schedule, one
    seed, JPEG copy): Home, the Train page's faded curves and the Runs page
    say so under the chart."""
    note = recipe_note(reference_runs("fig6"))
    home = app()
    assert sum(note in c.value for c in home.caption) == 1
    assert not any("the same curves" in c.value for c in home.caption)
    assert any(recipe_note(reference_runs("shortcuts")) in c.value for c in home.caption)
    train = app("pages/train.py")  # the Quick demo: plain-20 and resnet-20, theirs faded underneath
    pair = [r for r in reference_runs("fig6") if r.config()["model_name"] in ("plain-20", "resnet-20")]
    assert any(recipe_note(pair) in c.value for c in train.caption)
    runs = app("pages/runs.py")
    tick_runs(runs, [r.run_id for r in reference_runs("fig6")])
    assert any(note in c.value for c in runs.caption)


def test_shipped_runs_are_never_deletable_even_from_their_own_folder(tmp_path, monkeypatch):
    """With the runs folder set to the shipped runs' folder and "include the
    shipped runs" off, the shipped runs still read as shipped: no delete."""
    shipped_dir = tmp_path / "shipped"
    shutil.copytree(reference_runs("fig6")[0].path, shipped_dir / reference_runs("fig6")[0].run_id)
    monkeypatch.setattr(reference, "REFERENCE_RUNS_DIR", shipped_dir)
    monkeypatch.setenv("RESEXPLORER_RUNS", str(shipped_dir))
    at = app("pages/runs.py")
    at.toggle(key="include_reference").set_value(False).run()
    (run,) = RunStore(shipped_dir).list()
    assert at.dataframe[0].value["where"].tolist() == ["shipped"]
    tick_runs(at, [run.run_id])
    assert at.checkbox(key="confirm_delete").disabled and at.button(key="delete").disabled
    assert any("cannot be deleted" in c.value for c in at.caption)
    assert RunStore(shipped_dir).list() != []


def test_a_refused_delete_says_why_after_the_rerun_and_the_others_go(two_runs, tmp_path):
    """A linked run folder is not deleted; the message stays on the page
    after the rerun that follows a delete, and the other ticked runs go. The
    ticks stay on the runs left, not on the rows' places: the run that moved
    up into a deleted run's place is not ticked, so a second Delete cannot
    take it."""
    runs_dir = tmp_path / "runs"
    outside = tmp_path / "elsewhere"
    shutil.copytree(two_runs["resnet-8"].path, outside / "copied")
    (runs_dir / "linked-run").symlink_to(outside / "copied", target_is_directory=True)
    at = app("pages/runs.py")
    plain, residual = two_runs["plain-8"], two_runs["resnet-8"]
    assert at.dataframe[0].value["run"].tolist() == [plain.run_id, residual.run_id, "linked-run"]
    tick_runs(at, [plain.run_id, "linked-run"])
    at.checkbox(key="confirm_delete").check().run()
    at.button(key="delete").click().run()
    assert not at.exception
    assert any("linked-run is a link" in drawn(e) for e in at.error), [drawn(e) for e in at.error]
    assert not plain.path.exists() and (outside / "copied" / "config.json").is_file()
    assert at.dataframe[0].value["run"].tolist() == [residual.run_id, "linked-run"]
    assert ticked_runs(at) == ["linked-run"]
    assert sorted(curves(figures(at))) == ["resnet-8 (ed-run) test error", "resnet-8 (ed-run) training error"]
    assert not at.checkbox(key="confirm_delete").value  # the next delete asks anew


def test_ticking_rows_of_the_runs_table_plots_those_runs(empty_runs):
    """The table is the picker: nothing ticked, the page says how to pick and
    draws nothing; the runs of the ticked rows are drawn, and only they, and
    offered to download."""
    at = app("pages/runs.py")
    assert at.dataframe[0].value.columns.tolist()[-1] == "run"
    assert not figures(at) and not at.get("download_button")
    assert any("tick rows in the table" in i.value for i in at.info)
    assert any("Tick the box at the start of a row" in c.value for c in at.caption)
    chosen = [r for r in reference_runs("fig6") if r.config()["model_name"] in ("plain-56", "resnet-110")]
    tick_runs(at, [r.run_id for r in chosen])
    assert not at.exception and not at.info
    drawn = {name.rsplit(" ", 2)[0] for name in curves(figures(at))}
    assert drawn == {f"{r.config()['model_name']} ({r.run_id[-6:]})" for r in chosen}
    assert at.get("download_button")[0].proto.label == "Metrics of these runs (CSV)"


def test_ticks_follow_their_runs_when_the_table_gains_a_row_above_them(empty_runs):
    """A run that lands in the runs folder (a job's, an import) comes before
    the shipped runs in the table: the ticked shipped run stays the one drawn,
    not whichever run took its place."""
    at = app("pages/runs.py")
    shipped = reference_runs("fig6")[0]
    tick_runs(at, [shipped.run_id])
    assert at.dataframe[0].value["run"].tolist().index(shipped.run_id) == 0
    other = reference_runs("fig6")[-1]
    shutil.copytree(other.path, empty_runs / "20260101-000000-mine")
    at.radio(key="runs_x_axis").set_value("iteration").run()  # any rerun draws the table anew
    assert not at.exception
    assert at.dataframe[0].value["run"].tolist()[0] == "20260101-000000-mine"
    assert ticked_runs(at) == [shipped.run_id]
    assert {name.rsplit(" ", 2)[0] for name in curves(figures(at))} == {curve_label(shipped)}


def test_a_race_over_several_gpus_says_which_model_ran_where(empty_runs):
    job_dir = empty_runs / ".jobs" / "20260101-000000-abcdef"
    job_dir.mkdir(parents=True)
    (job_dir / "job.json").write_text('{"pid": 0}')
    devices = {"plain-56": "cuda:0", "resnet-56": "cuda:1"}
    progress = {"state": "done", "step": 10, "total_steps": 10, "devices": devices}
    (job_dir / "progress.json").write_text(json.dumps(progress))
    at = app("pages/train.py")
    assert "Where each model trains: plain-56 on cuda:0 · resnet-56 on cuda:1" in [c.value for c in at.caption]

"""AppTest of the Inside-the-nets page on runs trained here."""

import re

from helpers import app, figures, points, x_title
from streamlit.runtime.scriptrunner_utils.exceptions import StopException

from resexplorer.services import analysis, countdown, reference


def test_page_draws_every_probe_and_computes_lesions_and_landscapes_on_request(two_runs):
    at = app("pages/inside.py")
    assert not at.exception and not at.error
    assert sorted(at.multiselect(key="inside_runs").value) == sorted(r.run_id for r in two_runs.values())
    names = set(points(figures(at)))
    for model in ("plain-8", "resnet-8"):
        assert f"{model} @ end (epoch 2)" in names  # Fig. 7, ratios, gradients
        assert f"{model} stage 1" in names  # evolution from the training probes
    assert any("closest honest analogue" in c.value for c in at.caption)

    at.button(key="lesion_go").click().run()
    at.button(key="landscape_go").click().run()
    assert not at.exception and not at.error
    specs = figures(at)
    titles = {x_title(fig) for fig in specs}
    assert {
        "deleted block",
        "blocks deleted at random",
        "step along a filter-normalised random direction",
        "α: initial (0) to these weights (1)",
    } <= titles
    assert "lesion_go" not in [b.key for b in at.button]  # computed: the button is gone

    # a fresh session finds everything in the cache and computes nothing
    for run in two_runs.values():
        assert (run.path / "analysis" / "epoch-0002").is_dir()
    at = app("pages/inside.py")
    assert len(figures(at)) == len(specs)


def test_a_checkpoint_moment_picks_other_weights(two_runs):
    at = app("pages/inside.py")
    (name, end), *_ = points(figures(at)[:1]).items()
    assert name.endswith("@ end (epoch 2)")
    at.select_slider(key="inside_moment").set_value("initialisation").run()
    assert not at.exception
    (name, start), *_ = points(figures(at)[:1]).items()
    assert name.endswith("@ initialisation") and start != end


def test_page_says_what_to_do_without_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("RESEXPLORER_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(reference, "REFERENCE_RUNS_DIR", tmp_path / "none")
    at = app("pages/inside.py")
    assert not at.exception and any("Train & compare" in i.value for i in at.info)


def test_the_shortcut_toggle_swaps_the_runs_of_every_chart(two_runs):
    at = app("pages/inside.py")
    at.segmented_control(key="inside_runs:shortcuts").set_value("on").run()
    assert not at.exception
    assert at.multiselect(key="inside_runs").value == [two_runs["resnet-8"].run_id]
    assert _models(at) == {"resnet-8"}  # Fig. 7, ratios, evolution, gradients: the plain net is gone from all
    at.segmented_control(key="inside_runs:shortcuts").set_value("off").run()
    assert _models(at) == {"plain-8"}
    at.segmented_control(key="inside_runs:shortcuts").set_value("both").run()
    assert _models(at) == {"plain-8", "resnet-8"}


def _models(at) -> set[str]:
    """The models of every line drawn on the page."""
    return {re.match(r"(plain|resnet)-\d+", name).group(0) for name in points(figures(at))}


def test_the_shipped_runs_recorded_the_older_ratio_and_the_page_says_so(tmp_path, monkeypatch):
    """The shipped runs' per-epoch records predate the branch ratio: the
    evolution chart shows only the blocks where the two measures agree, and
    says why."""
    monkeypatch.setenv("RESEXPLORER_RUNS", str(tmp_path / "runs"))
    at = app("pages/inside.py")
    assert not at.exception
    (said,) = [c.value for c in at.caption if "recorded ‖F(x)‖ / ‖x‖ during training" in c.value]
    assert "plain-56" in said and "resnet-56" in said


def test_a_cancelled_analysis_says_how_long_was_left_and_waits_for_the_users_word(two_runs, monkeypatch):
    """A click on Cancel makes Streamlit stop the run at the progress bar's
    next update and rerun the page: here the first layer-response analysis
    stops half way, as such a run does, then Cancel is clicked. The page
    starts none of the analyses it computes by itself again (the gradients
    neither), says they were cancelled, and computes them when asked."""
    real, started = analysis.compute, []

    def stopped_half_way(run, epoch, kind, pool, progress=None, **kw):
        started.append(kind)
        if len(started) == 1:
            progress(0.5, "half way")
            raise StopException()  # where Streamlit ends a run that a click interrupts
        return real(run, epoch, kind, pool, progress=progress, **kw)

    monkeypatch.setattr(analysis, "compute", stopped_half_way)
    monkeypatch.setattr(countdown, "SURE_AFTER_SECONDS", 0.0)  # an estimate at once, without a wait
    at = app("pages/inside.py")
    (bar,) = at.get("progress")  # the page's own analyses are one action: two runs' responses and gradients
    assert re.fullmatch(r"1 of 4 · plain-8: half way · about \d+ s left", bar.proto.text), bar.proto.text
    assert bar.proto.value == 12  # half of the first of four
    (cancel,) = [b for b in at.button if b.label == "Cancel"]
    assert cancel.key == f"cancel:analysis:unasked:inside:{two_runs['plain-8'].run_id}@2"
    cancel.click().run()
    assert not at.exception and [t.value for t in at.toast] == [
        "Cancelled: layer responses of plain-8. What had finished is kept."
    ]
    assert started == ["inside"] and not at.get("progress")  # nothing started again, the gradients neither
    again = at.button(key="again:analysis:unasked")
    assert "Cancelled" in again.label
    again.click().run()
    assert not at.exception and started.count("inside") == 3 and started.count("gradients") == 2  # on their word
    assert {"plain-8 @ end (epoch 2)", "resnet-8 @ end (epoch 2)"} <= set(points(figures(at)))
    assert "again:analysis:unasked" not in [b.key for b in at.button]  # gone once they ran
    at.run()  # cached now: neither the offer nor the analyses again
    assert "again:analysis:unasked" not in [b.key for b in at.button] and len(started) == 5


def test_at_initialisation_the_landscape_button_goes_once_the_slices_are_computed(two_runs):
    """There is no path from initialisation to the weights at initialisation,
    so that moment lacks none once its slices are there."""
    at = app("pages/inside.py")
    at.select_slider(key="inside_moment").set_value("initialisation").run()
    assert "(2 missing;" in at.button(key="landscape_go").label  # the two slices only
    at.button(key="landscape_go").click().run()
    assert not at.exception and not at.error
    assert "landscape_go" not in [b.key for b in at.button]

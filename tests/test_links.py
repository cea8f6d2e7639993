"""Links that reproduce a view (ui/choices.py read_link/write_link): a
page's choices travel in its URL, so a link, a bookmark or a refresh opens
the same view; a value that is not on offer is said in one line and the
page shows the nearest view it has, never a traceback."""

import pytest
from helpers import ROOT, curves, figures, tick_runs, ticked_runs
from streamlit.testing.v1 import AppTest

from resexplorer.services.catalog import catalog
from resexplorer.services.reference import reference_runs
from resexplorer.services.run_table import curve_label


@pytest.fixture()
def empty_runs(tmp_path, monkeypatch):
    """The shipped runs alone: what a newcomer's link points at."""
    monkeypatch.setenv("RESEXPLORER_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("RESEXPLORER_DATA", raising=False)
    return catalog(str(tmp_path / "runs"))


def _opened(page: str, **params) -> AppTest:
    """The page opened from a link with these parameters (a fresh session)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    for name, value in params.items():
        at.query_params[name] = value
    return at.switch_page(page).run()


def _warned(at: AppTest) -> str:
    return " ".join(w.value for w in at.warning)


def test_a_link_opens_inside_on_its_runs_toggle_and_moment_and_the_url_follows_the_page(empty_runs):
    (plain_20,), _ = empty_runs.pair(20, "off")
    at = _opened("pages/inside.py", depth="20", shortcuts="off", moment="middle")
    assert not at.exception and not _warned(at).startswith("This link")
    assert at.multiselect(key="inside_runs").value == [plain_20]  # the runs the toggle stands for
    assert at.selectbox(key="inside_runs:depth").value == 20
    assert at.get("select_slider")[0].value == "middle"
    assert at.query_params["runs"] == plain_20 and at.query_params["moment"] == "middle"
    at.selectbox(key="inside_runs:depth").select(56).run()  # a new choice: the URL follows it
    assert at.query_params["depth"] == "56" and "plain-56" in at.query_params["runs"]


def test_a_link_naming_what_is_not_here_says_so_and_shows_the_nearest_view(empty_runs):
    at = _opened("pages/inside.py", runs="20250101-000000-resnet-110-abcdef", depth="110", shortcuts="maybe")
    assert not at.exception
    said = _warned(at)
    assert "runs=20250101-000000-resnet-110-abcdef" in said and "depth=110" in said and "shortcuts=maybe" in said
    default, _ = empty_runs.pair(56, "both")
    assert at.multiselect(key="inside_runs").value == default  # the page's own view


def test_a_link_opens_tta_on_its_merge_strategy_and_samples(empty_runs):
    at = _opened("pages/tta.py", merge="majority vote", strategy="flip", samples="nope.png")
    assert not at.exception
    assert at.selectbox(key="tta_merge").value == "majority vote"
    assert at.selectbox(key="tta_gallery").value == "flip"
    assert "samples=nope.png" in _warned(at)
    assert at.multiselect(key="tta_samples").value  # the page's default samples instead


def test_a_link_opens_attributions_on_its_methods(empty_runs):
    at = _opened("pages/attributions.py", methods="saliency,integrated_gradients", image="Sample images")
    assert not at.exception
    assert at.radio(key="attr_source").value == "Sample images"
    assert at.multiselect(key="attr_methods").value == ["saliency", "integrated_gradients"]
    assert at.query_params["methods"] == "saliency,integrated_gradients"


def test_a_link_opens_train_on_its_preset_and_models(empty_runs):
    at = _opened("pages/train.py", preset="Custom", models="plain-56,resnet-56,resnet-1001")
    assert not at.exception
    assert at.selectbox(key="preset").value == "Custom"
    assert "resnet-1001" in _warned(at)
    assert at.query_params["models"] == "plain-56,resnet-56"


def test_a_link_opens_runs_with_its_runs_ticked_and_the_url_follows_the_ticks(empty_runs):
    first, second, third = reference_runs("fig6")[:3]
    at = _opened("pages/runs.py", runs=f"{first.run_id},20250101-000000-gone,{second.run_id}")
    assert not at.exception
    assert "runs=20250101-000000-gone" in _warned(at)  # said, and the others ticked all the same
    assert sorted(ticked_runs(at)) == sorted([first.run_id, second.run_id])
    assert {name.rsplit(" ", 2)[0] for name in curves(figures(at))} == {curve_label(first), curve_label(second)}
    tick_runs(at, [third.run_id])  # the user's own ticks win from then on, and the URL follows them
    assert ticked_runs(at) == [third.run_id] and at.query_params["runs"] == third.run_id
    at.radio(key="runs_x_axis").set_value("iteration").run()  # any later rerun keeps them
    assert ticked_runs(at) == [third.run_id]


def test_a_link_opens_attributions_on_its_test_image_and_class(empty_runs):
    plain = (
        AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run().switch_page("pages/attributions.py").run()
    )
    classes = plain.selectbox(key="attr_class").options
    at = _opened("pages/attributions.py", **{"class": classes[1]})
    offered = at.selectbox(key="attr_index").options  # the test images of that class, as "#9 airplane | ..."
    chosen = int(offered[-1].split()[0].removeprefix("#"))
    assert at.selectbox(key="attr_index").value != chosen  # not the page's own first choice
    at = _opened("pages/attributions.py", **{"class": classes[1], "test_image": str(chosen)})
    assert not at.exception
    assert at.selectbox(key="attr_class").value == classes[1]
    assert at.selectbox(key="attr_index").value == chosen
    assert at.query_params["test_image"] == str(chosen) and at.query_params["class"] == classes[1]
    at = _opened("pages/attributions.py", **{"class": "unicorn", "test_image": "99999"})
    assert not at.exception
    assert "class=unicorn" in _warned(at) and "test_image=99999" in _warned(at)

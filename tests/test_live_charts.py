"""The charts redrawn in place (ui/live_charts.py): the folder their frame
is served from, and the page's fallback when it cannot be made."""

from helpers import app, figures, read_only

from ui import live_charts
from ui.live_charts import PAGE, PLOTLY_JS, served_folder


def _whole(folder):
    return (folder / "index.html").read_bytes() == PAGE.read_bytes() and (
        folder / "plotly.min.js"
    ).read_bytes() == PLOTLY_JS.read_bytes()


def test_the_frame_is_served_from_a_folder_with_its_page_and_the_installed_plotly_js(tmp_path):
    folder = served_folder(tmp_path)
    assert _whole(folder)
    assert served_folder(tmp_path) == folder  # made once, then found
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no staging copy left behind


def test_a_damaged_folder_in_the_way_is_never_served(tmp_path):
    folder = served_folder(tmp_path)
    (folder / "plotly.min.js").write_bytes(b"half a file")  # a copy cut short: a full disk, a killed server
    served = served_folder(tmp_path)
    assert served != folder and _whole(served)


def test_no_writable_folder_means_no_frame(tmp_path):
    with read_only(tmp_path):
        assert served_folder(tmp_path) is None


def test_without_the_frame_the_playground_draws_its_charts_with_plotly_chart(monkeypatch):
    monkeypatch.setattr(live_charts, "_frame", None)
    at = app("pages/playground.py")
    try:
        assert not at.exception, at.exception
        assert len(at.get("plotly_chart")) == 3 and not at.get("component_instance")
        assert [t["type"] for t in figures(at)[0]["data"]].count("heatmap") == 2
    finally:
        runner = at.session_state["playground_runner"]
        runner.stop()
        runner.join(5)

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from helpers import ON_CPU_EVERY_STEP

from resexplorer.nets.config import ModelConfig
from resexplorer.progress import format_duration
from resexplorer.runs.recipe import TrainConfig
from resexplorer.services.countdown import Countdown, Pieces
from resexplorer.services.curves import (
    Curve,
    curve_from_run,
    curves_csv,
    references_for,
)
from resexplorer.services.figures import (
    MAX_POINTS,
    Series,
    chart_config,
    error_curves,
    figure_html,
    heatmap,
    heatmap_panels,
    lines_chart,
    model_colour,
    probability_bars,
    with_view,
)
from resexplorer.services.planning import (
    PRESETS,
    QUICK_DEMO,
    all_model_names,
    default_settings,
    estimate_seconds,
)
from resexplorer.training.launch import new_race


def _curve(model="resnet-20", arch="resnet", depth=20):
    """Training error 80% and 60% at epochs 0.5 and 1; test error 55% at epoch 1; 100 steps an epoch."""
    return Curve(model, model, arch, depth, 100.0, [0.5, 1.0], [0.8, 0.6], [1], [0.55])


def _trace(fig: go.Figure, run: str, curve: str):
    """The trace of one run's curve, found by the meta the figure gives it."""
    found = [t for t in fig.data if t.meta and t.meta["run"] == run and t.meta["curve"] == curve]
    assert len(found) == 1, [t.name for t in fig.data]
    return found[0]


def _every_figure() -> list[go.Figure]:
    """One of each kind of chart, with the options that change their traces."""
    return [
        error_curves(
            [_curve(), _curve("plain-20", "plain")],
            x_axis="iteration",
            log_y=True,
            paper_markers=True,
            faded=[_curve("plain-56", "plain", 56)],
            title="Fig. 6",
            uirevision="live",
        ),
        error_curves([], faded=[_curve()]),
        error_curves([]),
        lines_chart(
            [
                Series("a", "plain-20", [1, 2, 3], [1.0, None, 3.0], dash="dot", hover=["x", "y", "z"]),
                Series("b", "resnet-20", [1, 2], [2.0, 1.0], dash="longdashdot"),
            ],
            "layer",
            "std",
            log_y=True,
            markers=False,
        ),
        lines_chart([Series("a", "resnet-8", ["conv1", "conv2"], [1.0, 2.0])], "layer", "std"),
        heatmap_panels(
            [
                ("m1", [-1.0, 0.0, 1.0], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]),
                ("m2", [-1.0, 0.0, 1.0], [[3, 2, 1], [6, 5, 4], [9, 8, 7]]),
            ],
            "log10 loss",
        ),
        heatmap([[1.0, None], [-3.0, 4.0]], ["a", "b"], ["r1", "r2"], "points", diverging=True, text_format="+.1f"),
        probability_bars(["cat", "dog"], {"none": [0.2, 0.8], "flip": [0.3, 0.7]}),
    ]


def test_every_chart_is_a_valid_svg_plotly_figure():
    """plotly's validators pass (the module builds figures without them, for
    speed), the figure serialises, and no trace is WebGL: a browser allows a
    page only a few WebGL contexts, and the app draws many charts."""
    for fig in _every_figure():
        spec = fig.to_plotly_json()
        go.Figure(spec)  # raises on any invalid property or value
        fig.to_json()
        assert all(trace["type"] in ("scatter", "heatmap", "bar") for trace in spec["data"]), spec["data"]
        assert not any(isinstance(trace, go.Scattergl) for trace in fig.data)


def test_fig6_styles_training_thin_dashed_and_test_bold():
    fig = error_curves([_curve(), _curve("plain-20", "plain")])
    train, test = _trace(fig, "resnet-20", "training error"), _trace(fig, "resnet-20", "test error")
    assert train.line.dash == "dash" and test.line.dash == "solid"
    assert train.line.width < test.line.width and "markers" in test.mode
    assert list(test.y) == pytest.approx([55.0]) and list(train.y) == pytest.approx([80.0, 60.0])  # percent
    assert list(train.x) == pytest.approx([0.5, 1.0]) and fig.layout.xaxis.title.text == "epochs"
    assert fig.layout.yaxis.title.text == "error (%)"
    # one colour and one legend group per model: a legend click hides both of its curves
    plain = _trace(fig, "plain-20", "test error")
    assert train.line.color == test.line.color == model_colour("resnet-20") != plain.line.color
    assert train.legendgroup == test.legendgroup == "resnet-20" != plain.legendgroup
    assert fig.layout.legend.groupclick == "togglegroup"
    assert train.name == "resnet-20 training error" and test.name == "resnet-20 test error"
    assert fig.layout.height == 460 and fig.layout.uirevision  # zoom and hidden lines survive a redraw by default


def test_x_axis_in_iterations_log_scale_markers_and_faded_reference():
    fig = error_curves(
        [_curve()],
        x_axis="iteration",
        log_y=True,
        paper_markers=True,
        faded=[_curve("plain-56", "plain", 56)],
        uirevision="live",
    )
    assert list(_trace(fig, "resnet-20", "training error").x) == [50, 100]  # round(epoch * steps_per_epoch)
    assert fig.layout.xaxis.title.text == "iterations" and fig.layout.uirevision == "live"
    assert fig.layout.yaxis.type == "log"
    low, high = fig.layout.yaxis.range  # log10, fitted to the data rather than whole decades
    values = [v for trace in fig.data for v in trace.y] + [8.75]
    assert all(low <= math.log10(v) <= high for v in values) and high <= 2 and low > 0
    for curve in ("training error", "test error"):
        faded = _trace(fig, "plain-56", curve)
        assert faded.opacity == 0.3 and faded.meta["reference"] and faded.legendgroup != "plain-56"
        assert faded.legendgroup == _trace(fig, "plain-56", "training error").legendgroup
    titles = [t.legendgrouptitle.text for t in fig.data if t.legendgrouptitle.text]
    assert titles == ["reference runs (faded)"]  # as long as the job: nothing clipped, nothing said
    assert not _trace(fig, "resnet-20", "test error").opacity  # the user's runs stay opaque
    # Table 6, resnet-20: a dotted line in its colour and a label
    (note,) = fig.layout.annotations
    assert "8.75" in note.text and "resnet-20" in note.text and note.font.color == model_colour("resnet-20")
    assert note.y == pytest.approx(math.log10(8.75))  # annotations on a log axis take log10
    (line,) = fig.layout.shapes
    assert line.y0 == line.y1 == 8.75 and line.line.dash == "dot" and line.line.color == model_colour("resnet-20")


def test_paper_markers_only_for_models_the_paper_reports():
    curves = [_curve("resnet-20-B"), _curve("resnet-8", depth=8), _curve("plain-20", "plain")]
    fig = error_curves(curves, paper_markers=True)
    assert [a.text for a in fig.layout.annotations] == ["paper plain-20: 9.5% (Fig. 6, read off)"]
    assert not error_curves([_curve()]).layout.annotations


def test_one_hover_shows_both_errors_with_epoch_and_iteration():
    fig = error_curves([_curve()])
    test, train = _trace(fig, "resnet-20", "test error"), _trace(fig, "resnet-20", "training error")
    # a test point carries the training error then (its last window at or before), epoch and iteration
    assert [list(row) for row in test.customdata] == [[1.0, 100, "60.00%"]]
    # a training point carries the latest test error at or before it: none yet at epoch 0.5
    assert [list(row) for row in train.customdata] == [[0.5, 50, "not yet"], [1.0, 100, "55.00%"]]
    for trace in (test, train):
        template = trace.hovertemplate
        assert "resnet-20" in template and "%{y" in template
        assert all(f"%{{customdata[{i}]" in template for i in range(3))


def test_only_reference_runs_still_draw_and_no_runs_at_all_draw_empty_axes():
    fig = error_curves([], faded=[_curve()])
    assert [t.meta["curve"] for t in fig.data] == ["training error", "test error"]
    assert all(t.opacity == 0.3 for t in fig.data)
    empty = error_curves([], log_y=True)
    assert not empty.data and empty.layout.xaxis.title.text == "epochs" and empty.layout.yaxis.title.text == "error (%)"


def test_lines_keep_gaps_and_each_series_its_dash_and_colour():
    fig = lines_chart(
        [
            Series(
                "plain-8 ratios", "plain-8", [1, 2, 3], [1.0, None, float("nan")], dash="dot", hover=["a", "b", "c"]
            ),
            Series("resnet-8 ratios", "resnet-8", np.array([1, 2]), [0.2, float("inf")], dash="longdash"),
        ],
        "block",
        "ratio",
        log_y=True,
    )
    plain, resnet = fig.data
    assert list(plain.y) == [1.0, None, None] and list(resnet.y) == [0.2, None]  # gaps, not zeros
    assert plain.connectgaps is False
    assert list(resnet.x) == [1.0, 2.0] and all(type(v) is float for v in resnet.x)  # numpy numbers stay numeric
    assert (plain.line.dash, resnet.line.dash) == ("dot", "longdash")
    assert (plain.line.color, resnet.line.color) == (model_colour("plain-8"), model_colour("resnet-8"))
    assert list(plain.text) == ["a", "b", "c"]
    assert "%{text}" in plain.hovertemplate and "%{y:.4g}" in plain.hovertemplate
    assert "plain-8 ratios" in plain.hovertemplate and plain.mode == "lines+markers"
    assert fig.layout.yaxis.type == "log" and fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0
    named = lines_chart(
        [Series("a", "resnet-8", ["conv2", "conv1", 3], [1.0, 2.0, 3.0])], "layer", "std", markers=False
    )
    assert list(named.data[0].x) == ["conv2", "conv1", "3"] and named.layout.xaxis.type == "category"  # in order
    assert named.data[0].mode == "lines" and named.layout.height == 360


def test_heatmap_writes_every_number_on_a_readable_scale():
    fig = heatmap([[12.345, 50.0], [None, 99.0]], ["mean", "vote"], ["none", "flip"], "accuracy %", zmin=0, zmax=100)
    (cells,) = fig.data
    assert [list(row) for row in cells.text] == [["12.3", "50.0"], ["", "99.0"]] and cells.texttemplate == "%{text}"
    assert cells.z[1][0] is None  # a gap, not a zero
    assert (cells.zmin, cells.zmax) == (0, 100)
    assert list(cells.y) == ["none", "flip"] and fig.layout.yaxis.autorange == "reversed"  # rows top to bottom as given
    assert fig.layout.xaxis.side == "top" and cells.colorbar.title.text == "accuracy %"
    assert format(100.0, cells.colorbar.tickformat) == "100.0"  # not "100.000000"
    assert cells.hovertemplate == "%{y} · %{x}: %{text}<extra></extra>"  # the hover says what the cell says
    change = heatmap([[1.0, -3.0]], ["a", "b"], ["r"], "points", diverging=True, text_format="+.1f")
    (cells,) = change.data
    assert [list(row) for row in cells.text] == [["+1.0", "-3.0"]] and cells.zmid == 0
    # a range that follows the data: plotly's own tick labels, never one label written twice over a narrow range
    assert cells.colorbar.tickformat is None
    fixed = heatmap([[1.0, -3.0]], ["a", "b"], ["r"], "points", diverging=True, text_format="+.1f", zmin=-5, zmax=5)
    assert format(3.0, fixed.data[0].colorbar.tickformat) == "3.0"  # no "+" on the scale
    low, high = cells.colorscale[0][1], cells.colorscale[-1][1]  # red below zero, blue above
    red = [int(c) for c in low[4:-1].split(",")]
    blue = [int(c) for c in high[4:-1].split(",")]
    assert red[0] > red[2] and blue[2] > blue[0]
    assert change.data[0].zmin is None  # the range follows the data unless fixed


def test_an_accuracy_map_of_one_value_keeps_its_0_to_100_scale_in_whole_percents():
    """Every cell 100 (a few images, all right): the colour bar still runs
    0-100 in whole numbers, no "100.000000", and nothing a person reads has
    more decimals than the cells'."""
    fig = heatmap([[100.0] * 4] * 7, list("abcd"), list("1234567"), "accuracy %", text_format=".0f", zmin=0, zmax=100)
    trace = fig.to_dict()["data"][0]
    assert (trace["zmin"], trace["zmax"]) == (0, 100) and trace["colorbar"]["tickformat"] == ".0f"
    assert [format(tick, trace["colorbar"]["tickformat"]) for tick in (0, 20, 100)] == ["0", "20", "100"]
    assert {text for row in trace["text"] for text in row} == {"100"}
    assert "%{text}" in trace["hovertemplate"] and "%{z" not in trace["hovertemplate"]
    assert not re.search(r"\d\.\d{2,}", json.dumps({k: trace[k] for k in ("text", "colorbar", "hovertemplate")}))


def test_loss_slices_share_one_colour_scale():
    fig = heatmap_panels(
        [
            ("plain-20", [-1.0, 0.0, 1.0], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]),
            ("resnet-20", [-1.0, 0.0, 1.0], [[10, 1e-9, 1], [1, 1, 1], [1, 1, 100]]),
        ],
        "log10 loss",
    )
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    assert {t.coloraxis for t in fig.data} == {"coloraxis"} and fig.layout.coloraxis.colorbar.title.text == "log10 loss"
    assert [a.text for a in fig.layout.annotations] == ["plain-20", "resnet-20"]  # subplot titles
    first, second = fig.data
    assert first.z[0][1] == pytest.approx(math.log10(2), abs=1e-4)  # z[j][i]: alpha = axis[i], beta = axis[j]
    assert second.z[0][1] == pytest.approx(-6) and second.z[2][2] == pytest.approx(2)  # log10(max(loss, 1e-6))
    assert fig.layout.xaxis.title.text == fig.layout.xaxis2.title.text == "α" and fig.layout.yaxis.title.text == "β"
    assert fig.layout.yaxis2.matches == "y"  # one β axis: zooming one panel zooms both
    assert fig.layout.width and fig.layout.height  # sized by cell_px: drawn at its own width


def test_probability_bars_one_trace_per_strategy():
    fig = probability_bars(["cat", "dog"], {"none": [0.2, 0.8], "flip": [0.30001, 0.69999]})
    assert [(t.type, t.name) for t in fig.data] == [("bar", "none"), ("bar", "flip")]
    assert list(fig.data[0].x) == ["cat", "dog"] and list(fig.data[1].y) == pytest.approx([30.001, 69.999])
    assert fig.layout.barmode == "group" and fig.layout.yaxis.title.text == "probability (%)"


def test_the_slanted_class_names_of_the_probability_bars_are_not_under_the_legend():
    """A legend below the plot lay over the lower ends of the slanted names:
    the TTA page showed "automobile" as "tomobile". The legend goes above,
    and the axis takes the margin its names need."""
    fig = probability_bars(["airplane", "automobile"], {"none": [0.5, 0.5]})
    assert fig.layout.xaxis.tickangle and fig.layout.xaxis.automargin
    assert fig.layout.legend.yanchor == "bottom" and fig.layout.legend.y >= 1


def test_the_chart_downloads_as_a_png_from_the_mode_bar_and_as_a_page():
    assert chart_config("error-curves") == {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "filename": "error-curves", "scale": 2},
    }
    fig = error_curves([_curve()])
    fig.update_layout(template="plotly_dark")  # e.g. Streamlit's theme template, whose colours are placeholders
    page = figure_html(fig, "Error curves")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<title>Error curves</title>" in page and "resnet-20 test error" in page
    assert "Plotly.newPlot" in page and "https://" not in page.split("<body>")[0]  # plotly.js inlined: opens offline
    assert len(page) > 1_000_000 and '"plot_bgcolor":"white"' in page
    assert fig.layout.template.layout.plot_bgcolor != "white"  # the figure on the page is left as it was


def test_figures_load_without_torch():
    """The figures (and so a chart-only page) import without torch, the
    curves and the run store they read included."""
    code = "import resexplorer.services.figures, sys; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "False"


def test_reference_curves_under_a_job_are_the_same_models_else_the_default_figure():
    names = ("plain-20", "resnet-20", "resnet-56", "resnet-32", "plain-32")
    references = [_curve(m, m.split("-")[0], int(m.split("-")[1])) for m in names]
    fig6 = ["plain-20", "resnet-20", "resnet-56"]
    assert [c.model for c in references_for(["resnet-32", "resnet-110"], references, fig6)] == ["resnet-32"]
    assert [c.model for c in references_for(["resnet-8"], references, fig6)] == fig6
    assert [c.model for c in references_for([], references, fig6)] == fig6
    assert references_for(["resnet-20"], [], fig6) == []


def test_colours_tell_plain_from_residual_and_depths_apart():
    assert model_colour("plain-20") != model_colour("plain-56") != model_colour("resnet-56")
    assert len({model_colour(n) for n in ("resnet-32", "resnet-32-B", "resnet-32-C", "resnet-32-zero")}) == 4


def test_curves_come_from_a_run_and_export_as_csv(tiny_data, tmp_path):
    config = TrainConfig(epochs=2, batch_size=32)
    race, runs = new_race(
        [ModelConfig("resnet", 8, num_classes=4)], tiny_data, config, tmp_path, options=ON_CPU_EVERY_STEP
    )
    race.run()
    curve = curve_from_run(runs["resnet-8"])
    records = runs["resnet-8"].metrics("epoch")
    assert curve.test_error == [r["test_error"] for r in records] and curve.test_epoch == [1, 2]
    assert len(curve.train_error) == 2 * 4 and curve.steps_per_epoch == 4 and curve.planned_epochs == 2
    lines = curves_csv(list(runs.values())).splitlines()
    assert lines[0].startswith("run_id,model,kind") and len(lines) == 1 + len(runs["resnet-8"].metrics())


def test_presets_name_real_models_and_the_custom_picker_offers_them_all():
    names = set(all_model_names())
    for preset in PRESETS.values():
        assert set(preset.models) <= names
    assert {"plain-56", "resnet-32-B", "resnet-110-C", "resnet-56-zero"} <= names
    for name in names:
        ModelConfig.from_name(name)


def test_estimates_grow_with_work_and_defaults_depend_on_the_device():
    base = estimate_seconds(["resnet-20"], 5, 10_000, 2_000, layer_rate=19_500)
    assert estimate_seconds(["resnet-20", "resnet-56"], 5, 10_000, 2_000, 19_500) > base
    assert estimate_seconds(["resnet-20"], 10, 10_000, 2_000, 19_500) > base
    assert default_settings("cuda")["epochs"] > default_settings("cpu")["epochs"]
    assert default_settings("cuda")["schedule"] == "paper"
    assert format_duration(42) == "42 s" and format_duration(600) == "10 min" and format_duration(7200) == "2.0 h"


def test_the_quick_demos_estimate_matches_its_measured_duration_on_a_2_core_cpu():
    """The estimate against a measurement, not a timing here: the engine
    trained resnet-20 at 565 images/s on the 2-core CPU (docs/benchmarks.md,
    bench/train_throughput.py), so 11,300 image-layers/s, and the Quick demo
    took 7 min 46 s there (466 s). Its preset promises 4.5 to 8 minutes."""
    settings = dict(QUICK_DEMO.overrides)
    seconds = estimate_seconds(
        list(QUICK_DEMO.models), settings["epochs"], settings["train_subset"], settings["test_subset"], 20 * 565
    )
    assert 0.8 * 466 <= seconds <= 1.2 * 466
    assert 4.5 * 60 <= seconds <= 8 * 60


def test_long_curves_are_thinned_but_keep_their_ends():
    n = 5000
    epochs, errors = [i / 100 for i in range(n)], [1 - i / n for i in range(n)]
    long = Curve("resnet-20", "resnet-20", "resnet", 20, 391.0, epochs, errors, [1], [0.5])
    train = _trace(error_curves([long]), "resnet-20", "training error")
    assert len(train.x) <= MAX_POINTS + 1 and train.x[0] == 0 and train.x[-1] == pytest.approx((n - 1) / 100)
    assert train.y[-1] == pytest.approx(100 * (1 - (n - 1) / n), abs=1e-3)
    faded = _trace(error_curves([], faded=[long]), "resnet-20", "training error")
    assert len(faded.x) <= MAX_POINTS // 3 + 1 and faded.x[-1] == pytest.approx((n - 1) / 100)  # faded: less detail


def test_a_kept_view_fixes_the_axes_and_hides_the_traces_the_user_hid():
    fig = with_view(
        error_curves([_curve(), _curve("plain-20", "plain")]),
        {"x": [0.5, 0.75], "y": [1.2, 1.8], "hidden": ["plain-20 test error"]},
    )
    layout = fig.to_plotly_json()["layout"]
    assert layout["xaxis"]["range"] == [0.5, 0.75] and layout["xaxis"]["autorange"] is False
    assert layout["yaxis"]["range"] == [1.2, 1.8]
    assert {t.name: t.visible for t in fig.data}["plain-20 test error"] == "legendonly"
    assert {t.name: t.visible for t in fig.data}["resnet-20 test error"] is None
    untouched = with_view(error_curves([_curve()]), {"x": None, "y": None, "hidden": []}).to_plotly_json()["layout"]
    assert "range" not in untouched["xaxis"]  # the data's own view, after a double-click reset


def test_paper_markers_only_for_the_models_table_6_reports():
    marked = error_curves(
        [_curve("resnet-20-B"), _curve("resnet-20-zero"), _curve("plain-20", "plain")], paper_markers=True
    )
    texts = [a.text for a in marked.layout.annotations]
    assert len(texts) == 1 and texts[0].startswith("paper plain-20")


def test_colours_follow_the_model_name_grammar():
    assert model_colour("resnet-56-B") == model_colour("resnet-56-B") != model_colour("resnet-56")
    assert model_colour("not-a-model") == model_colour("resnet-20")  # names from elsewhere still get a colour


def _scheduled(model: str, epochs: int, planned: float) -> Curve:
    """A run of `planned` epochs that reached `epochs`, 100 steps an epoch."""
    reached = [float(e) for e in range(1, epochs + 1)]
    return Curve(model, model, "resnet", 20, 100.0, reached, [0.5] * epochs, reached, [0.5] * epochs, "", planned)


def test_the_x_axis_fits_the_jobs_schedule_and_clips_longer_reference_runs_as_the_legend_says():
    job, reference = _scheduled("resnet-20", 2, 4), _scheduled("plain-20", 30, 30)
    fig = error_curves([job], faded=[reference])
    assert fig.layout.xaxis.range == (0, pytest.approx(4 * 1.02))  # the plan, not the 2 epochs reached yet
    title = next(t.legendgrouptitle.text for t in fig.data if t.meta["reference"] and t.legendgrouptitle.text)
    assert "clipped to this job's 4 epochs" in title and "double-click" in title
    assert max(_trace(fig, "plain-20", "test error").x) == 30  # clipped by the view only: zooming out shows all
    by_iteration = error_curves([job], faded=[reference], x_axis="iteration")
    assert by_iteration.layout.xaxis.range == (0, pytest.approx(400 * 1.02))
    assert "400 iterations" in next(t.legendgrouptitle.text for t in by_iteration.data if t.legendgrouptitle.text)
    longer = error_curves([_scheduled("resnet-20", 2, 160)], faded=[reference])  # nothing cut: nothing said
    assert longer.layout.xaxis.range == (0, pytest.approx(160 * 1.02))
    assert [t.legendgrouptitle.text for t in longer.data if t.legendgrouptitle.text] == ["reference runs (faded)"]
    # without reference runs, or without a job, the axis is the data's own
    assert error_curves([job]).layout.xaxis.range is None
    assert error_curves([], faded=[reference]).layout.xaxis.range is None


def test_a_double_click_for_all_the_data_wins_over_the_range_the_figure_sets():
    def fitted():
        return error_curves([_scheduled("resnet-20", 2, 4)], faded=[_scheduled("plain-20", 30, 30)])

    zoomed_out = with_view(fitted(), {"x": "auto", "y": None, "hidden": []}).to_plotly_json()["layout"]
    assert zoomed_out["xaxis"]["autorange"] is True and "range" not in zoomed_out["xaxis"]
    kept = with_view(fitted(), {"x": None, "y": None, "hidden": []})
    assert kept.layout.xaxis.range == (0, pytest.approx(4 * 1.02))  # no word from the user: the fit stays


def test_the_pieces_of_one_action_are_counted_and_timed_together():
    """Four analyses started by one click: the second one's bar counts it
    among the four and says the time left for all four, not for itself."""
    now = [0.0]
    pieces = Pieces(4, countdown=Countdown(clock=lambda: now[0]))
    now[0], pieces.done = 30.0, 1  # one piece took 30 s
    whole, text = pieces.progress(0.5, "plain-8: point 3 of 121")
    assert whole == pytest.approx(0.375)
    assert text == "2 of 4 · plain-8: point 3 of 121 · about 50 s left"  # 30 s for 3/8: 50 s for the other 5/8
    assert pieces.progress(2.0, "")[0] == pytest.approx(0.5)  # a piece is never more than done


def test_a_countdown_says_the_time_left_at_the_rate_so_far_once_it_can_tell():
    now = [100.0]
    clock = Countdown(clock=lambda: now[0])
    assert clock.left(0.5) == "estimating the time left…"  # no time has passed: no rate yet
    now[0] += 30
    assert clock.left(0.01) == "estimating the time left…"  # too little done to tell
    assert clock.seconds_left(0.5) == pytest.approx(30) and clock.left(0.5) == "about 30 s left"
    assert clock.left(0.1) == "about 4 min left"  # 270 s
    assert clock.left(1.0) == "about 0 s left" and clock.seconds_left(1.5) == 0


import io
import json

import jsonschema
import pytest
from altair.vegalite.schema import load_schema  # the Vega-Lite schema of the installed Altair
from PIL import Image

from resexplorer.curves import Curve, curve_from_run, curves_csv, references_for
from resexplorer.figures import DASHES, Series, error_curves, error_curves_png, heatmap, heatmap_panels, lines_chart, model_colour, probability_bars, spec_html
from resexplorer.launch import start_race
from resexplorer.models import ModelConfig
from resexplorer.planning import PRESETS, QUICK_DEMO, all_model_names, default_settings, estimate_seconds, format_duration
from resexplorer.train import TrainConfig


def _curve(model="resnet-20", arch="resnet", depth=20):
    return Curve(model, model, arch, depth, 100.0, [0.5, 1.0], [0.8, 0.6], [1], [0.55])


def _layer(spec: dict, mark: str, with_field: str | None = None) -> dict:
    for layer in spec["layer"]:
        kind = layer["mark"] if isinstance(layer["mark"], str) else layer["mark"]["type"]
        if kind == mark and (with_field is None or with_field in layer["encoding"]):
            return layer
    raise AssertionError(f"no {mark} layer")


def _styles(channel: dict) -> dict:
    return dict(zip(channel["scale"]["domain"], channel["scale"]["range"]))


def test_fig6_styles_training_thin_dashed_and_test_bold():
    spec = error_curves([_curve(), _curve("plain-20", "plain")])
    lines = _layer(spec, "line", "strokeWidth")["encoding"]
    dash, width = _styles(lines["strokeDash"]), _styles(lines["strokeWidth"])
    assert dash["training error"] == DASHES["dash"] and dash["test error"] == DASHES["solid"]
    assert width["training error"] < width["test error"]
    assert [r["error"] for r in spec["data"]["values"] if r["run"] == "resnet-20" and r["curve"] == "test error"] == pytest.approx([55.0])  # percent
    colours = _styles(lines["color"])  # one colour per model, for both of its curves
    assert colours["resnet-20"] == model_colour("resnet-20") != colours["plain-20"]


def test_x_axis_in_iterations_log_scale_markers_and_faded_reference():
    spec = error_curves([_curve()], x_axis="iteration", log_y=True, paper_markers=True, faded=[_curve("plain-56", "plain", 56)])
    train = [r["x"] for r in spec["data"]["values"] if r["curve"] == "training error"]
    assert train == [50, 100]
    lines = _layer(spec, "line", "strokeWidth")["encoding"]
    assert lines["y"]["scale"]["type"] == "log" and lines["x"]["title"] == "iterations"
    assert lines["y"]["scale"]["domain"][0] <= 55.0 <= lines["y"]["scale"]["domain"][1]  # every value inside
    faded = next(layer for layer in spec["layer"] if layer.get("data") and layer["data"]["values"][0].get("run") == "plain-56")
    assert faded["mark"]["opacity"] == 0.3
    assert any("8.75" in m["text"] for m in _layer(spec, "text")["data"]["values"])  # Table 6, resnet-20


def test_reference_curves_under_a_job_are_the_same_models_else_the_default_figure():
    references = [_curve(m, m.split("-")[0], int(m.split("-")[1])) for m in ("plain-20", "resnet-20", "resnet-56", "resnet-32", "plain-32")]
    fig6 = ["plain-20", "resnet-20", "resnet-56"]
    assert [c.model for c in references_for(["resnet-32", "resnet-110"], references, fig6)] == ["resnet-32"]
    assert [c.model for c in references_for(["resnet-8"], references, fig6)] == fig6
    assert [c.model for c in references_for([], references, fig6)] == fig6
    assert references_for(["resnet-20"], [], fig6) == []


def test_every_chart_is_a_valid_vega_lite_spec():
    """Checked against the Vega-Lite schema that Altair (a Streamlit
    dependency) ships: a spec that fails it draws an error box, not a chart."""
    schema = jsonschema.Draft7Validator(load_schema())
    specs = [
        error_curves([_curve(), _curve("plain-20", "plain")], log_y=True, paper_markers=True, faded=[_curve("plain-56", "plain", 56)], title="Fig. 6"),
        error_curves([], faded=[_curve()]),
        lines_chart([Series("a", "plain-20", [1, 2, 3], [1.0, None, 3.0], dash="dot", hover=["x", "y", "z"]), Series("b", "resnet-20", [1, 2], [2.0, 1.0])], "layer", "std", log_y=True, markers=False),
        lines_chart([Series("a", "resnet-8", ["conv1", "conv2"], [1.0, 2.0])], "layer", "std"),
        heatmap_panels([("m1", [-1.0, 0.0, 1.0], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]), ("m2", [-1.0, 0.0, 1.0], [[3, 2, 1], [6, 5, 4], [9, 8, 7]])], "log10 loss"),
        heatmap([[1.0, None], [-3.0, 4.0]], ["a", "b"], ["r1", "r2"], "points", diverging=True, text_format="+.1f"),
        probability_bars(["cat", "dog"], {"none": [0.2, 0.8], "flip": [0.3, 0.7]}),
    ]
    for spec in specs:
        errors = [e.message[:200] for e in schema.iter_errors(json.loads(json.dumps(spec)))]
        assert not errors, errors


def test_lines_keep_gaps_and_each_series_its_dash_and_colour():
    spec = lines_chart([Series("plain-8 ratios", "plain-8", [1, 2, 3], [1.0, None, float("nan")], dash="dot"), Series("resnet-8 ratios", "resnet-8", [1, 2], [0.2, 0.1])], "block", "ratio")
    assert [r["y"] for r in spec["data"]["values"]][:3] == [1.0, None, None]  # a gap, not a zero
    line = spec["layer"][0]["encoding"]
    assert _styles(line["strokeDash"])["plain-8 ratios"] == DASHES["dot"]
    assert _styles(line["color"]) == {"plain-8 ratios": model_colour("plain-8"), "resnet-8 ratios": model_colour("resnet-8")}


def test_heatmap_writes_every_number_and_the_chart_downloads_as_a_page():
    spec = heatmap([[12.345, 50.0], [None, 99.0]], ["mean", "vote"], ["none", "flip"], "accuracy %", text_format=".1f")
    assert [r["label"] for r in spec["data"]["values"]] == ["12.3", "50.0", "", "99.0"]
    page = spec_html(error_curves([_curve()]), "Error curves")
    assert page.startswith("<!doctype html>") and "vegaEmbed" in page and '"resnet-20"' in page


def test_colours_tell_plain_from_residual_and_depths_apart():
    assert model_colour("plain-20") != model_colour("plain-56") != model_colour("resnet-56")
    assert len({model_colour(n) for n in ("resnet-32", "resnet-32-B", "resnet-32-C", "resnet-32-zero")}) == 4


def test_curves_come_from_a_run_and_export_as_csv(tiny_data, tmp_path):
    race, runs = start_race([ModelConfig("resnet", 8, num_classes=4)], tiny_data, TrainConfig(epochs=2, batch_size=32, device="cpu", log_every=1), tmp_path)
    race.run()
    curve = curve_from_run(runs["resnet-8"])
    records = runs["resnet-8"].metrics("epoch")
    assert curve.test_error == [r["test_error"] for r in records] and curve.test_epoch == [1, 2]
    assert len(curve.train_error) == 2 * 4 and curve.steps_per_epoch == 4
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


def test_quick_demo_is_sized_for_five_minutes_on_this_kind_of_cpu():
    # 19,500 image-layers/s: ResNet-20 training at about 975 images/s, as
    # bench/train_throughput.py measured on a 2-core CPU
    settings = dict(QUICK_DEMO.overrides)
    seconds = estimate_seconds(list(QUICK_DEMO.models), settings["epochs"], settings["train_subset"], settings["test_subset"], 19_500)
    assert seconds <= 300


def test_long_curves_are_thinned_but_keep_their_ends():
    n = 5000
    long = Curve("resnet-20", "resnet-20", "resnet", 20, 391.0, [i / 100 for i in range(n)], [1 - i / n for i in range(n)], [1], [0.5])
    train = [r for r in error_curves([long])["data"]["values"] if r["curve"] == "training error"]
    assert len(train) <= 241 and train[0]["x"] == 0 and train[-1]["x"] == pytest.approx((n - 1) / 100)
    assert train[-1]["error"] == pytest.approx(100 * (1 - (n - 1) / n), abs=1e-3)


def test_the_error_curves_download_as_a_png():
    png = error_curves_png([_curve(), _curve("plain-20", "plain")])
    assert Image.open(io.BytesIO(png)).size == (1100, 420)

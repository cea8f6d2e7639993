
import pytest

from resexplorer.curves import Curve, curve_from_run, curves_csv
from resexplorer.figures import error_curves, model_colour
from resexplorer.launch import start_race
from resexplorer.models import ModelConfig
from resexplorer.planning import PRESETS, QUICK_DEMO, all_model_names, default_settings, estimate_seconds, format_duration
from resexplorer.train import TrainConfig


def _curve(model="resnet-20", arch="resnet", depth=20):
    return Curve(model, model, arch, depth, 100.0, [0.5, 1.0], [0.8, 0.6], [1], [0.55])


def test_fig6_styles_training_thin_dashed_and_test_bold():
    fig = error_curves([_curve(), _curve("plain-20", "plain")])
    traces = {t.name: t for t in fig.data}
    assert traces["resnet-20 train"].line.dash == "dash" and traces["resnet-20 test"].line.dash in (None, "solid")
    assert traces["resnet-20 train"].line.width < traces["resnet-20 test"].line.width
    assert list(traces["resnet-20 test"].y) == pytest.approx([55.0])  # percent
    assert traces["resnet-20 train"].line.color == traces["resnet-20 test"].line.color != traces["plain-20 test"].line.color


def test_x_axis_in_iterations_log_scale_markers_and_faded_reference():
    fig = error_curves([_curve()], x_axis="iteration", log_y=True, paper_markers=True, faded=[_curve("plain-56", "plain", 56)])
    named = {t.name: t for t in fig.data}
    assert list(named["resnet-20 train"].x) == [50, 100]
    assert fig.layout.yaxis.type == "log" and fig.layout.xaxis.title.text == "iterations"
    assert any(t.opacity == 0.3 for t in fig.data if t.name == "reference runs (faded)")
    assert any("8.75" in (a.text or "") for a in fig.layout.annotations)  # Table 6, resnet-20


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
    trace = next(t for t in error_curves([long]).data if t.name == "resnet-20 train")
    assert len(trace.x) <= 241 and trace.x[0] == 0 and trace.x[-1] == pytest.approx((n - 1) / 100)
    assert trace.y[-1] == pytest.approx(100 * (1 - (n - 1) / n), abs=1e-3)

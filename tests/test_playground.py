"""The Playground: 2-D point sets, plain and residual MLPs, their race on
identical batches, the background runner and its server slots, the URL
that holds the experiment, and the page."""

import threading
import time

import pytest
import torch
from helpers import app, drawn, figures

from resexplorer.data.points import GENERATORS, N_TEST, N_TRAIN, SPAN, make_points
from resexplorer.errors import ConfigError
from resexplorer.nets.mlp import MLPConfig, PointNet, twin_of
from resexplorer.training import playground
from resexplorer.training.playground import PlaygroundConfig, PlaygroundRunner, PointRace, Slots


@pytest.mark.parametrize("kind", list(GENERATORS))
def test_every_point_set_is_two_balanced_classes_in_the_plane_drawn_from_its_seed(kind):
    points = make_points(kind, noise=0.1, seed=3)
    assert points.train_x.shape == (N_TRAIN, 2) and points.test_x.shape == (N_TEST, 2)
    assert points.train_x.dtype == torch.float32 and points.train_y.dtype == torch.int64
    assert set(points.train_y.tolist()) == {0, 1} and abs(float(points.train_y.float().mean()) - 0.5) < 0.05
    assert float(points.train_x.abs().max()) <= SPAN + 1e-6  # float32
    again, other = make_points(kind, noise=0.1, seed=3), make_points(kind, noise=0.1, seed=4)
    assert torch.equal(points.train_x, again.train_x) and torch.equal(points.test_y, again.test_y)
    assert not torch.equal(points.train_x, other.train_x)
    assert not torch.equal(points.train_x, points.test_x)  # two draws, not one set twice


def test_noise_moves_the_points_and_nothing_else():
    clean, noisy = make_points("circles", 0.0, 1), make_points("circles", 0.3, 1)
    assert torch.equal(clean.train_y, noisy.train_y) and not torch.allclose(clean.train_x, noisy.train_x)


def test_a_net_has_its_depth_in_linear_layers_and_a_block_with_a_zero_branch_is_the_identity():
    net = PointNet(MLPConfig(depth=20, width=8, shortcut=True, batch_norm=True, zero_init=True))
    assert len(net.linear_layers()) == 20 and len(net.blocks()) == 9
    net.eval()
    x = torch.rand(32, 8) + 0.1  # a block's input comes after a ReLU: non-negative
    for block in net.blocks():
        assert torch.allclose(block(x), x)
    assert all(ratio == 0 for ratio in net.branch_ratios(torch.randn(64, 2)))
    plain = PointNet(MLPConfig(depth=20, width=8, shortcut=False))
    assert not torch.allclose(plain.blocks()[0].eval()(x), x)
    with pytest.raises(ConfigError, match="even"):
        MLPConfig(depth=21)


def test_the_twins_start_from_the_same_weights_and_see_the_same_batches(monkeypatch):
    race = PointRace(PlaygroundConfig(depth=10, width=8, shortcut="both"))
    plain, residual = race.models["plain"], race.models["residual"]
    assert not plain.config.shortcut and residual.config.shortcut
    for (name, a), (_, b) in zip(plain.state_dict().items(), residual.state_dict().items()):
        assert torch.equal(a, b), name
    seen = {"plain": [], "residual": []}
    for name, model in race.models.items():
        monkeypatch.setattr(
            model, "forward", lambda x, name=name, f=model.forward: seen[name].append(x.clone()) or f(x)
        )
    for _ in range(5):
        race.train_step()
    assert len(seen["plain"]) == 5 and all(torch.equal(a, b) for a, b in zip(seen["plain"], seen["residual"]))


def test_a_zero_init_twin_zeroes_only_the_residual_branches():
    plain = PointNet(MLPConfig(depth=10, width=8, shortcut=False, zero_init=True))
    twin = twin_of(plain, shortcut=True)
    assert all(float(block.bn2.weight.detach().abs().sum()) > 0 for block in plain.blocks())
    assert all(float(block.bn2.weight.detach().abs().sum()) == 0 for block in twin.blocks())
    assert torch.equal(plain.blocks()[0].fc1.weight, twin.blocks()[0].fc1.weight)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_defaults_show_the_finding_deep_plain_stuck_deep_residual_and_shallow_plain_fitting(seed):
    """On fixed seeds, after the steps the page shows in its first seconds:
    the deep plain net near chance, well above the same net with shortcuts
    and above a shallow plain net."""
    deep = PointRace(PlaygroundConfig(seed=seed))
    shallow = PointRace(PlaygroundConfig(seed=seed, depth=6, shortcut="off"))
    for _ in range(playground.FINDING_STEPS):
        deep.train_step()
        shallow.train_step()
    errors = {name: deep.snapshot()["history"][name]["train_error"][-1] for name in deep.models}
    shallow_plain = shallow.snapshot()["history"]["plain"]["train_error"][-1]
    assert errors["plain"] > 0.35, errors
    assert errors["plain"] - errors["residual"] >= 0.20, errors
    assert errors["plain"] - shallow_plain >= 0.20, (errors, shallow_plain)


def test_a_url_holds_the_whole_experiment_and_a_bad_value_costs_only_itself():
    config = PlaygroundConfig(
        data="moons",
        noise=0.25,
        seed=7,
        depth=100,
        width=32,
        shortcut="on",
        batch_norm=False,
        zero_init=True,
        optimizer="adam",
        lr=0.003,
        batch_size=32,
    )
    again, problems = PlaygroundConfig.from_query(config.to_query())
    assert again == config and not problems
    odd, problems = PlaygroundConfig.from_query({"depth": "7", "lr": "nan", "data": "mnist", "width": "8"})
    assert odd == PlaygroundConfig(width=8) and len(problems) == 3
    assert any(p.startswith("depth=7") and "even" in p for p in problems)


def _until(predicate, timeout=30.0):
    deadline = time.time() + timeout
    while not predicate() and time.time() < deadline:
        time.sleep(0.05)
    return predicate()


def test_a_runner_plays_pauses_steps_and_stops_at_its_cap():
    runner = PlaygroundRunner(PlaygroundConfig(depth=6, width=8), slots=Slots(1), step_cap=60)
    try:
        assert runner.state == "paused" and runner.snapshot["step"] == 0
        runner.step_once()
        assert runner.snapshot["step"] == 1
        runner.play()
        assert _until(lambda: runner.snapshot["step"] > 5)
        runner.pause()
        assert _until(lambda: runner.slots.used == 0)
        paused_at = runner.race.step
        time.sleep(0.3)
        assert runner.race.step == paused_at
        runner.play()
        assert _until(lambda: runner.state == "done") and runner.snapshot["step"] == 60
        assert _until(lambda: runner.slots.used == 0)
    finally:
        runner.stop()
        runner.join(5)


def test_the_server_trains_as_many_as_it_has_slots_and_the_others_wait():
    slots = Slots(1)
    first = PlaygroundRunner(PlaygroundConfig(depth=6, width=8), slots=slots)
    second = PlaygroundRunner(PlaygroundConfig(depth=6, width=8, seed=1), slots=slots)
    try:
        first.play()
        assert _until(lambda: first.state == "playing")
        second.play()
        assert _until(lambda: second.state == "waiting")
        time.sleep(0.3)
        assert second.race.step == 0
        first.stop()
        assert _until(lambda: second.state == "playing") and _until(lambda: second.race.step > 0)
    finally:
        first.stop()
        second.stop()
        first.join(5)
        second.join(5)


def test_a_session_that_went_away_stops_training_frees_its_slot_and_plays_on_when_back(monkeypatch):
    monkeypatch.setattr(playground, "AWAY_AFTER_S", 0.3)
    slots = Slots(1)
    runner = PlaygroundRunner(PlaygroundConfig(depth=6, width=8), slots=slots)
    try:
        runner.play()
        assert _until(lambda: runner.state == "away", timeout=10)  # nobody called seen()
        assert _until(lambda: slots.used == 0)
        away_at = runner.race.step
        time.sleep(0.3)
        assert runner.race.step == away_at
        runner.seen()  # the page draws again
        assert _until(lambda: runner.race.step > away_at) and runner.state in ("playing", "away")
    finally:
        runner.stop()
        runner.join(5)


def test_a_diverging_model_stops_alone_and_its_twin_trains_on():
    race = PointRace(PlaygroundConfig(depth=6, width=8, shortcut="both"))
    race.train_step()
    with torch.no_grad():
        race.models["plain"].head.weight.fill_(float("inf"))  # its loss is no longer finite
    residual = race.models["residual"].head.weight.clone()
    for _ in range(3):
        race.train_step()
    assert race.diverged == {"plain": 2}
    assert not torch.equal(race.models["residual"].head.weight, residual)
    snapshot = race.snapshot()
    assert snapshot["models"]["plain"]["diverged_at"] == 2 and snapshot["models"]["residual"]["diverged_at"] is None


# --- the page ------------------------------------------------------------------


def _stop(at):
    runner = at.session_state["playground_runner"]
    runner.stop()
    runner.join(5)
    return runner


def test_the_page_opens_playing_the_defaults_and_draws_every_chart():
    at = app("pages/playground.py")
    assert not at.exception, at.exception
    runner = at.session_state["playground_runner"]
    try:
        assert runner.config == PlaygroundConfig() and runner.state in ("playing", "waiting")
        surfaces, curves, inside = figures(at)
        assert [t["type"] for t in surfaces["data"]].count("heatmap") == 2  # plain beside residual
        drawn = {(t["meta"]["model"], t["meta"]["split"], t["meta"]["measure"]) for t in curves["data"]}
        assert drawn == {
            (m, split, measure)
            for m in ("plain", "residual")
            for split in ("train", "test")
            for measure in ("error", "loss")
        }  # loss and error of every model, on one chart
        measures = {(t["meta"]["model"], t["meta"]["measure"]) for t in inside["data"]}
        assert measures == {(m, k) for m in ("plain", "residual") for k in ("grad_norms", "branch_ratios")}
        assert dict(at.query_params) == PlaygroundConfig().to_query()
    finally:
        _stop(at)


def test_the_page_takes_its_experiment_from_the_url_and_says_what_it_could_not_use():
    at = app()
    at.query_params.update({"data": "xor", "depth": "12", "shortcut": "on", "width": "5"})
    at.switch_page("pages/playground.py").run()
    assert not at.exception, at.exception
    runner = at.session_state["playground_runner"]
    try:
        assert (runner.config.data, runner.config.depth, runner.config.shortcut) == ("xor", 12, "on")
        assert list(runner.race.models) == ["residual"]
        assert any("width=5" in drawn(w) for w in at.warning), [w.value for w in at.warning]
    finally:
        _stop(at)


def test_a_changed_setting_starts_a_new_experiment_and_the_url_follows():
    at = app("pages/playground.py")
    first = at.session_state["playground_runner"]
    at.segmented_control(key="pg_shortcut").set_value("off").run()
    at.slider(key="pg_depth").set_value(8).run()
    second = at.session_state["playground_runner"]
    try:
        assert first.state == "stopped" and second is not first
        assert second.config.shortcut == "off" and second.config.depth == 8
        assert at.query_params["shortcut"] == "off" and at.query_params["depth"] == "8"
        assert [t["type"] for t in figures(at)[0]["data"]].count("heatmap") == 1  # the plain net alone
    finally:
        first.join(5)
        _stop(at)


def test_pause_step_and_reset_on_the_page():
    at = app("pages/playground.py")
    runner = at.session_state["playground_runner"]
    try:
        at.button(key="pg_play").click().run()  # Pause
        assert runner.state == "paused"
        step = runner.snapshot["step"]
        at.button(key="pg_step").click().run()
        assert runner.snapshot["step"] == step + 1
        at.button(key="pg_reset").click().run()
        fresh = at.session_state["playground_runner"]
        assert fresh is not runner and fresh.config == runner.config and fresh.state in ("playing", "waiting")
    finally:
        runner.stop()
        _stop(at)


def test_coming_back_from_another_page_finds_the_experiment_with_its_settings():
    at = app()
    at.query_params.update({"data": "circles", "depth": "12", "width": "8", "lr": "0.03"})
    at.switch_page("pages/playground.py").run()
    runner = at.session_state["playground_runner"]
    at.switch_page("app.py").run()
    at.switch_page("pages/playground.py").run()
    try:
        assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
        assert at.session_state["playground_runner"] is runner  # the same experiment, not a new one
        assert (runner.config.data, runner.config.depth, runner.config.width) == ("circles", 12, 8)
        assert at.query_params["depth"] == "12" and at.segmented_control(key="pg_shortcut").value == "both"
    finally:
        _stop(at)


def _threads_of_a_new_thread() -> int:
    """torch's thread count as a thread started now sees it (Streamlit runs
    each page's script on a new thread)."""
    seen = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return seen[0]


def test_torch_trains_on_one_thread_while_an_experiment_trains_and_gets_its_threads_back():
    before = _threads_of_a_new_thread()
    runner = PlaygroundRunner(PlaygroundConfig(depth=6, width=8), slots=Slots(1))
    try:
        runner.play()
        assert _until(lambda: runner.state == "playing")
        assert _until(lambda: _threads_of_a_new_thread() == 1)
        runner.pause()
        assert _until(lambda: runner.slots.used == 0) and _until(lambda: _threads_of_a_new_thread() == before)
    finally:
        runner.stop()
        runner.join(5)
    assert _threads_of_a_new_thread() == before


def test_a_pause_or_stop_is_never_undone_by_the_training_thread():
    for _ in range(20):  # the thread's own state changes race the page's
        runner = PlaygroundRunner(PlaygroundConfig(depth=6, width=8), slots=Slots(1))
        runner.play()
        runner.stop()
        runner.join(5)
        assert runner.state == "stopped" and runner.slots.used == 0
        runner = PlaygroundRunner(PlaygroundConfig(depth=6, width=8), slots=Slots(1))
        runner.play()
        runner.pause()
        time.sleep(0.05)
        assert runner.state == "paused"
        runner.stop()
        runner.join(5)


def test_the_initial_weights_come_from_the_seed_alone_whatever_else_draws_meanwhile():
    first = PointRace(PlaygroundConfig(depth=10, width=8))
    torch.manual_seed(12345)  # another session's work moves the process-wide generator
    torch.randn(1000)
    second = PointRace(PlaygroundConfig(depth=10, width=8))
    for a, b in zip(first.models["plain"].state_dict().values(), second.models["plain"].state_dict().values()):
        assert torch.equal(a, b)

"""How fast the Playground shows its finding, measured as a user sees it.

1. Steps per second of the app's own training (PlaygroundRunner: the
   background thread, its slot, its snapshots for the charts) against a
   bare torch loop of the same models, batches and optimiser, side by side
   in one process, alternating rounds. Goal: the app at least 0.8x bare.
2. In headless Chromium: from opening /playground with the defaults to
   the chart showing the plain net's training error 20 points or more above
   the residual net's. Goal: 5 s or less on the 2-core CPU.
3. While it trains: how often the curves chart is redrawn (goal: 2 a second
   or more), and how long a click on Pause takes to show (the page stays
   responsive).

Run:  python bench/playground_speed.py  [--chromium PATH] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from app_speed import FLAGS, _serve  # noqa: E402

from resexplorer.training.playground import AWAY_AFTER_S, PlaygroundConfig, PlaygroundRunner, PointRace, Slots  # noqa: E402

GAP = 0.20  # the training-error gap that counts as the finding shown


def bare_steps_per_s(config: PlaygroundConfig, seconds: float) -> float:
    """The same models and batches, stepped in a plain loop: no thread, no
    snapshots, no curves."""
    race = PointRace(config)
    models, optimizers = race.models, race.optimizers
    x_all, y_all = race.points.train_x, race.points.train_y
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = race.next_batch()
        x, y = x_all[batch], y_all[batch]
        for name, model in models.items():
            optimizers[name].zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizers[name].step()
        steps += 1
    return steps / (time.perf_counter() - start)


def app_steps_per_s(config: PlaygroundConfig, seconds: float) -> float:
    runner = PlaygroundRunner(config, slots=Slots(1), step_cap=10**9)
    runner.play()
    time.sleep(0.3)  # past its first snapshot
    first, start = runner.race.step, time.perf_counter()
    end = start + seconds
    while time.perf_counter() < end:
        runner.seen()
        time.sleep(0.1)
    steps = runner.race.step - first
    elapsed = time.perf_counter() - start
    runner.stop()
    runner.join(5)
    return steps / elapsed


# The curves chart's traces: playground_figures.curves marks each with its model
# and split. The Playground draws its charts in a frame (ui/live_charts.py).
_ERRORS = """() => {
  const frames = [...document.querySelectorAll('iframe')].map(f => f.contentDocument).filter(Boolean);
  for (const gd of frames.flatMap(d => [...d.querySelectorAll('.js-plotly-plot')])) {
    const traces = (gd.data || []).filter(t => t.meta && t.meta.measure === 'error' && t.meta.split === 'train');
    if (traces.length === 2) {
      const last = t => { const y = t.y || []; return y.length ? y[y.length - 1] : null; };
      const by = Object.fromEntries(traces.map(t => [t.meta.model, last(t)]));
      const steps = traces[0].x || [];
      return {plain: by.plain, residual: by.residual, step: steps.length ? steps[steps.length - 1] : 0};
    }
  }
  return null;
}"""


def time_to_gap(browser, url: str, timeout_s: float = 60) -> tuple[float, dict]:
    time.sleep(AWAY_AFTER_S + 1)  # the last measurement's session has stopped training: each starts alone
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    start = time.perf_counter()
    page.goto(f"{url}/playground", wait_until="commit")
    while time.perf_counter() - start < timeout_s:
        seen = page.evaluate(_ERRORS)
        if seen and seen["plain"] is not None and seen["residual"] is not None:
            if seen["plain"] - seen["residual"] >= 100 * GAP:
                elapsed = time.perf_counter() - start
                page.close()
                return elapsed, seen
        time.sleep(0.05)
    page.close()
    return float("nan"), seen or {}


def redraws_and_pause(browser, url: str, seconds: float = 6.0) -> tuple[float, float]:
    """Redraws of the curves chart per second (a new last step drawn), and
    the seconds from a click on Pause to the page saying Paused."""
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(f"{url}/playground")
    page.get_by_role("button", name="Pause").wait_for(timeout=60_000)
    time.sleep(1.0)
    redraws, last, start = 0, None, time.perf_counter()
    while time.perf_counter() - start < seconds:
        seen = page.evaluate(_ERRORS)
        step = seen and seen["step"]
        if step and step != last:
            redraws, last = redraws + (last is not None), step
        time.sleep(0.05)
    rate = redraws / (time.perf_counter() - start)
    clicked = time.perf_counter()
    page.get_by_role("button", name="Pause").click()
    page.get_by_text("Paused: step").wait_for(timeout=30_000)
    pause_s = time.perf_counter() - clicked
    page.close()
    return rate, pause_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="per round of the steps/s comparison")
    parser.add_argument("--browser-only", action="store_true", help="skip the steps/s comparison (1)")
    args = parser.parse_args()
    config = PlaygroundConfig()
    print(f"defaults: {config}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")

    bare, app = [], []
    for _ in range(0 if args.browser_only else args.repeats):
        bare.append(bare_steps_per_s(config, args.seconds))
        app.append(app_steps_per_s(config, args.seconds))
    if bare:
        b, a = statistics.median(bare), statistics.median(app)
        print("1. steps per second (median of rounds; a step trains every model once)")
        print(f"   bare torch loop  {b:7.1f}   ({', '.join(f'{v:.1f}' for v in bare)})")
        print(f"   the app's runner {a:7.1f}   ({', '.join(f'{v:.1f}' for v in app)})")
        print(f"   ratio app / bare {a / b:7.2f}   (goal >= 0.8)\n")

    from playwright.sync_api import sync_playwright

    proc, url = _serve(
        {**os.environ, **dict(v.split("=", 1) for v in os.environ.get("BENCH_SERVER_ENV", "").split() if v)}
    )
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=FLAGS)
            time_to_gap(browser, url)  # warms the server's imports and the browser's cache
            gaps = [time_to_gap(browser, url) for _ in range(args.repeats)]
            print(f"2. opening /playground to a training-error gap of {100 * GAP:.0f} points (goal <= 5 s)")
            for seconds, seen in gaps:
                print(
                    f"   {seconds:5.2f} s  at step {seen.get('step')}: plain {seen.get('plain', float('nan')):.0f}%, "
                    f"residual {seen.get('residual', float('nan')):.0f}%"
                )
            print(f"   median {statistics.median(s for s, _ in gaps):.2f} s\n")
            rate, pause_s = redraws_and_pause(browser, url)
            print("3. while it trains")
            print(f"   curves redrawn {rate:.1f} times a second (goal >= 2)")
            print(f"   Pause clicked to 'Paused' shown: {pause_s:.2f} s")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)


if __name__ == "__main__":
    main()

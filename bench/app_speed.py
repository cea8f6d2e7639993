"""How fast the app feels, measured in a real browser (headless Chromium).

1. First render of each page: a fresh browser tab opens the page's URL and
   the clock stops when the page's content is drawn (its heading and, where
   it has one, its chart). Goal: at most 3 s on the CPU. Measured with a
   cold browser cache (a first visit: the JavaScript bundles download) and
   a warm one (a returning user, or any page after the first).
2. Chart update latency while a job runs: a small job trains on generated
   images; every new training point is time-stamped when the worker writes
   it to metrics.jsonl and again when it appears in the browser's chart.
   Goal: median at most 1 s.
3. Home on a fresh server: the app started anew and Home opened at once
   (a cold browser cache), as the first visitor after a start sees it; the
   clock stops at Home's chart. Whatever Home's script loads (torch, say)
   is paid here, not in 1, whose warm-up round has loaded it already.
4. The baseline, measured in the same run: a bare Streamlit page with one
   small plotly chart (bench/bare_plotly_page.py), opened the same way, so
   the app's figures read as a multiple of what Streamlit + plotly.js cost
   on their own.

Run:  python bench/app_speed.py  [--chromium PATH] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # app_server: how the tests start the app

from app_server import serve  # noqa: E402

from resexplorer.data.synthetic import make_synthetic, write_image_folder  # noqa: E402
from resexplorer.runs.recipe import RunOptions, TrainConfig  # noqa: E402
from resexplorer.runs.store import RunStore  # noqa: E402
from resexplorer.training.jobs import JobManager  # noqa: E402

FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A drawn trace of a plotly chart: lines, heat maps or bars.
CHART = ", ".join(
    f"[data-testid=stPlotlyChart] .main-svg {layer}"
    for layer in (".scatterlayer .trace", ".heatmaplayer image", ".barlayer .trace")
)
BARE_PAGE = {"": ("A bare page", CHART)}
PAGES = {  # url path -> (heading, what else marks the page as drawn)
    "": ("ResNet Explorer", CHART),
    "train": ("Train & compare", CHART),
    "inside": ("Inside the nets", CHART),
    "attributions": ("Attributions", CHART),
    "tta": ("Test-time augmentation", CHART),
    "runs": ("Runs", None),
}


_serve = serve  # bench/playground_speed.py starts the app the same way


def first_renders(browser, url: str, repeats: int, warm_browser: bool, pages: dict = PAGES) -> dict[str, list[float]]:
    """Each page opened in a fresh tab. Cold: every tab in a new browser
    context, so the app's JavaScript (Streamlit's and plotly.js's bundles)
    downloads each time, as on a first visit. Warm: tabs share one context,
    whose HTTP cache holds those bundles after round 0, as for a returning
    user or a second page."""
    times: dict[str, list[float]] = {path: [] for path in pages}
    context = browser.new_context(viewport={"width": 1400, "height": 1200}) if warm_browser else None
    for round_ in range(repeats + 1):  # round 0 warms the server's caches (and the shared context's)
        for path, (heading, drawn) in pages.items():
            page = context.new_page() if context else browser.new_page(viewport={"width": 1400, "height": 1200})
            start = time.perf_counter()
            # Not goto's default wait for the load event: that also waits for
            # things nobody sees (the favicon, fonts), and can end after the content shows.
            page.goto(f"{url}/{path}", wait_until="commit")
            page.get_by_role("heading", name=heading).wait_for(timeout=60_000)
            if drawn:
                page.locator(drawn).first.wait_for(timeout=60_000)
            if round_:
                times[path].append(time.perf_counter() - start)
            page.close()
    if context:
        context.close()
    return times


def fresh_server_home(browser, env: dict, repeats: int) -> list[float]:
    """Seconds from opening Home on a server that has served nothing yet
    to its chart drawn; a new server each repeat."""
    heading, drawn = PAGES[""]
    times = []
    for _ in range(repeats):
        proc, url = _serve(env)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            start = time.perf_counter()
            page.goto(url, wait_until="commit")
            page.get_by_role("heading", name=heading).wait_for(timeout=60_000)
            page.locator(drawn).first.wait_for(timeout=60_000)
            times.append(time.perf_counter() - start)
            page.close()
        finally:
            proc.terminate()
            proc.wait(20)
    return times


def chart_latency(browser, url: str, runs_dir: Path, data: str) -> list[float]:
    """Seconds from a training point written to disk to it being drawn."""
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{url}/train")
    page.get_by_role("heading", name="Train & compare").wait_for(timeout=60_000)
    JobManager(runs_dir).start_training(
        ["resnet-8"], data, TrainConfig(epochs=30, batch_size=32, test_subset=50), options=RunOptions(log_every=1)
    )
    seen: dict[float, float] = {}  # last training point drawn (its epoch) -> when first seen
    deadline = time.time() + 90
    while time.time() < deadline and len(seen) < 30:
        last = page.evaluate(  # the traces plotly drew; figures.error_curves names each in its meta
            """() => { const xs = [...document.querySelectorAll('.js-plotly-plot')].flatMap(gd => gd.data || [])
                         .filter(t => t.meta && t.meta.run === 'resnet-8' && !t.meta.reference
                                      && t.meta.curve === 'training error')
                         .flatMap(t => Array.from(t.x));
                       return xs.length ? Math.max(...xs) : null; }"""
        )
        if last is not None and last not in seen:
            seen[last] = time.time()
        time.sleep(0.05)
    JobManager(runs_dir).latest().cancel()
    written: dict[float, float] = {}
    for record in RunStore(runs_dir).list()[0].metrics("train"):
        written.setdefault(round(record["epoch"], 4), record["time"])  # the chart rounds x to 4 decimals
    page.close()
    return [drawn - written[x] for x, drawn in seen.items() if x in written]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM_PATH") or shutil.which("chromium"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_image_folder(make_synthetic(n_train=2000, n_test=200, num_classes=10), Path(tmp) / "images")
        runs_dir = Path(tmp) / "runs"
        env = {**os.environ, "RESEXPLORER_DATA": str(folder), "RESEXPLORER_RUNS": str(runs_dir)}
        bare, bare_url = _serve(env, "bench/bare_plotly_page.py")
        proc, url = _serve(env)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=FLAGS)
                baseline = {
                    kind: first_renders(browser, bare_url, args.repeats, kind == "warm", BARE_PAGE)[""]
                    for kind in ("cold", "warm")
                }
                bare.terminate()
                fresh_home = fresh_server_home(browser, env, args.repeats)
                all_renders = {
                    kind: first_renders(browser, url, args.repeats, kind == "warm") for kind in ("cold", "warm")
                }
                for kind, renders in all_renders.items():
                    base = statistics.median(baseline[kind])
                    print(
                        f"first render, {kind} browser cache, seconds (median of {args.repeats}, "
                        "after one warm-up round; goal <= 3 s):"
                    )
                    print(
                        f"  {'bare page':<14} {base:5.2f}   (a bare Streamlit page with one plotly chart; "
                        f"all: {', '.join(f'{v:.2f}' for v in baseline[kind])})"
                    )
                    for path, values in renders.items():
                        median = statistics.median(values)
                        print(
                            f"  /{path or '':<13} {median:5.2f}   x{median / base:.2f} the bare page   "
                            f"(all: {', '.join(f'{v:.2f}' for v in values)})"
                        )
                print(
                    f"Home on a fresh server (first visitor after a start, cold browser cache), seconds: "
                    f"median {statistics.median(fresh_home):.2f}   (all: {', '.join(f'{v:.2f}' for v in fresh_home)})"
                )
                latencies = chart_latency(browser, url, runs_dir, str(folder))
                browser.close()
        finally:
            for server in (bare, proc):
                server.terminate()
                server.wait(20)
    if latencies:
        print(f"chart update latency while training, seconds over {len(latencies)} points (refresh every 2 s):")
        print(
            f"  median {statistics.median(latencies):.2f}, "
            f"90th percentile {sorted(latencies)[int(0.9 * (len(latencies) - 1))]:.2f}, max {max(latencies):.2f}"
        )
    else:
        print("no chart updates were seen")
    summary = {
        f"first_render_{kind}_s": {k or "home": round(statistics.median(v), 2) for k, v in renders.items()}
        for kind, renders in all_renders.items()
    }
    summary["home_fresh_server_s"] = round(statistics.median(fresh_home), 2)
    summary["bare_page_s"] = {kind: round(statistics.median(v), 2) for kind, v in baseline.items()}
    print(json.dumps({**summary, "chart_latency_median_s": statistics.median(latencies) if latencies else None}))


if __name__ == "__main__":
    main()

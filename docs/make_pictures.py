"""README's pictures, made from the real app over the shipped runs.

Usage:  python docs/make_pictures.py [--data FOLDER]  [--chromium PATH] [--only NAME,...]

Starts `streamlit run app.py` as the tests do (tests/app_server.py), with a
temporary, empty runs folder and user cache, so every page shows the shipped
reference runs and no one's own. Each page is opened in headless Chromium,
in a session of its own; once what its picture shows is drawn (plotly's
charts, images, tables), the useful part of the page's main area is
screenshotted and written to docs/pictures/ small: downscaled and reduced
to a palette of colours (tests/test_docs.py holds them to a budget).

The Train page's picture is a real job: plain-20 and resnet-20 train for a
few minutes, on generated images, or with --data on an image folder of
CIFAR-10 (train/ and test/, one folder per class). It is stopped once the
picture is taken; the server and the temporary folders go at the end.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # app_server: how the tests start the app
sys.path.insert(0, str(ROOT / "bench"))  # the browser flags and the Playground's reading of its curves

from app_server import serve  # noqa: E402
from app_speed import FLAGS  # noqa: E402
from playground_speed import _ERRORS as PLAYGROUND_ERRORS  # noqa: E402

from resexplorer.services.reference import reference_runs  # noqa: E402
from resexplorer.training.jobs import FINAL_STATES, JobManager  # noqa: E402
from resexplorer.training.queue import TrainingQueue  # noqa: E402

PICTURES = ROOT / "docs" / "pictures"
HERO_WIDTH = 1000  # px: README shows the hero at full width
SMALL_WIDTH = 640  # px: the others sit in a two-column table, about 400 px wide
COLOURS = 256  # a palette: charts and text keep their edges, the files shrink several times
# Viewports: at 1100 px the main area is about 640 px wide, the small pictures' own width, so they need no
# downscaling; a page whose columns squeeze at that width is taken at 1280 and downscaled.
NARROW = {"width": 1100, "height": 1300}
WIDE = {"width": 1280, "height": 1300}
HERO_VIEWPORT = {"width": 1280, "height": 900}
HERO_SCALE = 1.25  # device pixels per CSS pixel for the hero: ~1000 px wide, drawn sharp
TIMEOUT_MS = 180_000  # a page's first draw (torch loading, attributions computed on a 2-core CPU)
JOB_TIMEOUT_S = 900  # the Train job to the test point its picture waits for
# The Train job: plain-20 and resnet-20 (resnet-20 trains at about 565 images/s on a 2-core CPU) on 5,000
# images for 4 epochs, 312 steps: enough for their curves to fall visibly (a few dozen steps of a deeper net
# left both at chance). The picture is taken at the third test point, 2 to 4 minutes in.
JOB = {"Epochs": 4, "Batch size": 64, "Train images (0 = all)": 5000, "Test images (0 = all)": 1000}
JOB_MODELS = ("plain-20", "resnet-20")
JOB_TEST_POINTS = 3
SAMPLE = "cat_03.jpg"  # a shipped CIFAR-10 test image: resnet-56 says dog, its flip and 10-crop say cat
PLAYGROUND_SEEN = (40, 8)  # training errors (%) when the picture is taken: plain at least, residual at most
# Streamlit's own chrome over the main area (toolbar, "Running..." man, deploy button): not the app's.
HIDE_CHROME = (
    "[data-testid=stHeader], [data-testid=stToolbar], [data-testid=stDecoration] { display: none !important; }"
)

# A plotly chart counts as drawn once it has laid out and drawn a trace.
_CHARTS_DRAWN = """([scope, n]) => {
  const root = document.querySelector(scope);
  if (!root) return false;
  const frames = [...root.querySelectorAll('iframe')].map(f => f.contentDocument).filter(Boolean);
  const charts = [root, ...frames].flatMap(doc => [...doc.querySelectorAll('.js-plotly-plot')]);
  const drawn = charts.filter(gd => gd._fullLayout && gd.offsetParent
    && gd.querySelector('.main-svg .scatterlayer .trace, .main-svg .heatmaplayer image, .main-svg .barlayer .trace'));
  return drawn.length >= n;
}"""
# The page is drawn: no spinner, no faded (stale) element, every picture loaded; and, `idle`, no script running
# (a page that refreshes itself every few seconds, the Train page, is never idle for long).
_SETTLED = """(idle) => !document.querySelector('[data-testid=stSpinner], [data-testid=stSkeleton], [data-stale=true]')
  && !(idle && document.querySelector('[data-testid=stStatusWidget]'))
  && [...document.querySelectorAll('[data-testid=stMain] img')].every(img => img.complete && img.naturalWidth > 0)"""
# The Train page's live chart: whether both models of the job have this many test points drawn.
_TEST_POINTS = """([models, n]) => {
  const gd = [...document.querySelectorAll('.st-key-live_chart .js-plotly-plot')].pop();
  if (!gd || !gd.data || !gd.querySelector('.main-svg .scatterlayer .trace')) return false;
  const points = m => (gd.data.find(t => t.meta && t.meta.run === m && !t.meta.reference
                                       && t.meta.curve === 'test error') || {x: []}).x.length;
  return models.every(m => points(m) >= n);
}"""


def open_page(browser, url: str, path: str, heading: str, viewport: dict = NARROW, scale: float = 1.0):
    """A fresh session's tab on the page, its heading shown."""
    context = browser.new_context(viewport=viewport, device_scale_factor=scale)
    page = context.new_page()
    page.goto(f"{url}/{path}", wait_until="commit")
    page.get_by_role("heading", name=heading, exact=True).first.wait_for(timeout=TIMEOUT_MS)
    page.add_style_tag(content=HIDE_CHROME)
    return page


def charts_drawn(page, n: int = 1, scope: str = "[data-testid=stMain]", timeout: float = TIMEOUT_MS) -> None:
    page.wait_for_function(_CHARTS_DRAWN, arg=[scope, n], timeout=timeout)


def settled(page, idle: bool = True, timeout: float = TIMEOUT_MS) -> None:
    page.wait_for_function(_SETTLED, arg=idle, timeout=timeout)
    page.evaluate("() => document.fonts.ready")


def clip(page, top, bottom, across=None, pad: int = 12) -> Image.Image:
    """The part of the main area from the top of `top` to the bottom of
    `bottom` (locators; the lowest of its matches), as wide as the main
    area's content or as the matches of `across`; scrolled into view, so
    the viewport must be tall enough to hold it."""
    top.first.evaluate("el => el.scrollIntoView({block: 'start'})")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    if across is None:
        left, right = page.locator("[data-testid=stMainBlockContainer]").evaluate(
            "el => { const s = getComputedStyle(el), b = el.getBoundingClientRect();"
            " return [b.left + parseFloat(s.paddingLeft), b.right - parseFloat(s.paddingRight)]; }"
        )
    else:
        boxes = [box for box in (m.bounding_box() for m in across.all()) if box]
        left, right = min(b["x"] for b in boxes), max(b["x"] + b["width"] for b in boxes)
    y0 = top.first.bounding_box()["y"]
    y1 = max(b["y"] + b["height"] for b in (m.bounding_box() for m in bottom.all()) if b)
    height = page.viewport_size["height"]
    if y1 + pad > height:
        raise RuntimeError(f"the picture ends at {y1:.0f} px, below the viewport's {height} px: make it taller")
    region = {"x": left - pad, "y": max(0, y0 - pad), "width": right - left + 2 * pad}
    region["height"] = y1 + pad - region["y"]
    return Image.open(io.BytesIO(page.screenshot(clip=region)))


def heading(page, name: str):
    return page.get_by_role("heading", name=name, exact=True)


def element(page, testid: str):
    return page.locator(f"[data-testid=stMain] [data-testid={testid}]")


# --- the pictures ------------------------------------------------------------------------------


def home(browser, url: str, _job: dict) -> Image.Image:
    """Home: Fig. 6 from the shipped runs."""
    page = open_page(browser, url, "", "ResNet Explorer")
    charts_drawn(page, 2)
    settled(page)
    title = heading(page, "The deeper plain net trains worse: the degradation problem")
    shot = clip(page, title, page.locator(".st-key-home_chart"))
    page.context.close()
    return shot


def train_setup(browser, url: str, job: dict) -> Image.Image:
    """Train & compare before a job: the Degradation preset's rows, and its models' shipped runs."""
    query = urlencode({"preset": "Degradation (Fig. 6)"})
    page = open_page(browser, url, f"train?{query}", "Train & compare", {"width": 1400, "height": 1800})
    choose_data(page, job["data"])
    page.get_by_text("Expected duration").wait_for(timeout=TIMEOUT_MS)
    charts_drawn(page, 1, ".st-key-live_chart")
    settled(page, idle=False)
    shot = clip(page, page.locator(".st-key-preset"), page.locator(".st-key-live_chart"))
    page.context.close()
    return shot


def inside(browser, url: str, _job: dict) -> Image.Image:
    """Inside the nets at depth 56, plain beside residual: Fig. 7's layer responses."""
    query = urlencode({"depth": 56, "shortcuts": "both", "moment": "end"})
    page = open_page(browser, url, f"inside?{query}", "Inside the nets", WIDE)
    charts_drawn(page, 3)
    settled(page)
    charts = page.locator(".st-key-fig7_order, .st-key-fig7_sorted")
    shot = clip(page, heading(page, "Layer responses (Fig. 7)"), charts, across=charts)
    page.context.close()
    return shot


def attributions(browser, url: str, _job: dict) -> Image.Image:
    """Attributions of a sample image: the grid of maps, a model per row, a method per column."""
    query = urlencode({"image": "Sample images", "sample": SAMPLE})
    page = open_page(browser, url, f"attributions?{query}", "Attributions")
    heading(page, "Attribution maps").wait_for(timeout=TIMEOUT_MS)
    charts_drawn(page, 1)  # the deletion curves, drawn after the maps
    settled(page)
    shot = clip(page, heading(page, "Attribution maps"), element(page, "stImage"))
    page.context.close()
    return shot


def tta(browser, url: str, _job: dict) -> Image.Image:
    """Test-time augmentation of a sample image: every strategy's answer, and their probabilities."""
    query = urlencode({"images": "Sample images", "samples": SAMPLE})
    page = open_page(browser, url, f"tta?{query}", "Test-time augmentation", WIDE)
    heading(page, SAMPLE).wait_for(timeout=TIMEOUT_MS)
    element(page, "stDataFrame").first.wait_for(timeout=TIMEOUT_MS)
    charts_drawn(page, 2)  # the probabilities, and the test-set scores further down
    settled(page)
    bars = page.locator("[data-testid=stMain] .js-plotly-plot").first
    shot = clip(page, heading(page, SAMPLE), bars)
    page.context.close()
    return shot


def runs(browser, url: str, _job: dict) -> Image.Image:
    """Runs: the table, the shipped runs in it, two of them ticked and plotted."""
    ticked = [r.run_id for r in reference_runs("fig6") if r.config()["model_name"] in JOB_MODELS]
    page = open_page(browser, url, f"runs?{urlencode({'runs': ','.join(ticked)})}", "Runs")
    element(page, "stDataFrame").first.wait_for(timeout=TIMEOUT_MS)
    charts_drawn(page, 1)
    settled(page)
    shot = clip(page, page.locator(".st-key-include_reference"), page.locator(".st-key-runs_chart"))
    page.context.close()
    return shot


def playground(browser, url: str, _job: dict) -> Image.Image:
    """The Playground with its defaults, seconds in: the deep plain net near chance, the residual one fitting."""
    page = open_page(browser, url, "playground", "Playground", WIDE)
    charts_drawn(page, 3)
    plain, residual = PLAYGROUND_SEEN
    deadline = time.time() + TIMEOUT_MS / 1000
    seen = None
    while time.time() < deadline:
        seen = page.evaluate(PLAYGROUND_ERRORS)  # the curves drawn: the last step, each net's training error
        errors = (seen["plain"], seen["residual"]) if seen else (None, None)
        if None not in errors and errors[0] >= plain and errors[1] <= residual:
            break
        page.wait_for_timeout(100)
    else:
        raise RuntimeError(f"the Playground's nets did not reach {PLAYGROUND_SEEN}% training error: {seen}")
    # The charts are drawn in a frame of their own (ui/live_charts.py): the surfaces, the curves, inside the nets.
    curves = page.frame_locator("[data-testid=stMain] iframe").locator(".js-plotly-plot").nth(1)
    shot = clip(page, page.locator(".st-key-pg_play"), curves)
    print(
        f"  reached at step {seen['step']}: training error plain {seen['plain']:.0f}%, residual {seen['residual']:.0f}%"
    )
    page.context.close()
    return shot


def choose_data(page, data: str | None) -> None:
    """The sidebar's data source: the image folder, else the generated images."""
    sidebar = page.locator("[data-testid=stSidebar]")
    if data is None:
        sidebar.get_by_text("Synthetic (generated, no download)").click()
        return
    sidebar.locator(".st-key-source_choice").get_by_text("Image folder", exact=True).click()
    folder = sidebar.locator(".st-key-data_folder input")
    folder.fill(data)
    folder.press("Enter")


def train_live(browser, url: str, job: dict) -> Image.Image:
    """The hero: plain-20 and resnet-20 training, the shipped runs of both faded underneath."""
    query = urlencode({"preset": "Custom", "models": ",".join(JOB_MODELS)}, safe=",")
    page = open_page(browser, url, f"train?{query}", "Train & compare", HERO_VIEWPORT, HERO_SCALE)
    choose_data(page, job["data"])
    for label, value in JOB.items():
        field = page.get_by_label(label, exact=True)
        field.fill(str(value))
        field.press("Enter")
    epochs, n_train, n_test = JOB["Epochs"], JOB["Train images (0 = all)"], JOB["Test images (0 = all)"]
    said = f"{len(JOB_MODELS)} models × {epochs} epochs × {n_train:,} images, testing on {n_test:,}"
    page.get_by_text(said).wait_for(timeout=TIMEOUT_MS)
    print(f"  {page.get_by_text('Expected duration').inner_text()}")
    start = time.time()
    page.get_by_role("button", name="Start").click()
    page.wait_for_function(
        _TEST_POINTS, arg=[list(JOB_MODELS), JOB_TEST_POINTS], timeout=JOB_TIMEOUT_S * 1000, polling=500
    )
    settled(page, idle=False)
    print(f"  {JOB_TEST_POINTS} test points of each model drawn {time.time() - start:.0f} s after Start")
    shot = clip(page, element(page, "stProgress"), page.locator(".st-key-live_chart"), pad=16)
    stop = page.get_by_role("button", name="Stop")
    if stop.is_enabled():  # not if the job has ended already (a fast machine)
        stop.click()
    page.get_by_text(re.compile(r"^Job (cancelled after|done)")).wait_for(timeout=120_000)
    page.context.close()
    return shot


PICTURE_MAKERS: dict[str, tuple[Callable, int]] = {  # file name -> (maker, width)
    "home": (home, SMALL_WIDTH),
    "train-setup": (train_setup, SMALL_WIDTH),
    "inside": (inside, SMALL_WIDTH),
    "attributions": (attributions, SMALL_WIDTH),
    "tta": (tta, SMALL_WIDTH),
    "runs": (runs, SMALL_WIDTH),
    "playground": (playground, SMALL_WIDTH),
    "train-live": (train_live, HERO_WIDTH),  # last: its job would slow the others down
}


def small_png(image: Image.Image, path: Path, width: int) -> int:
    """Downscaled to `width` (never up), a palette of COLOURS without
    dithering (flat areas stay flat, lines crisp), optimised; returns bytes."""
    image = image.convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    image.quantize(COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    return path.stat().st_size


def stop_jobs(runs_dir: Path, cache: Path) -> None:
    """No worker and no queue runner of ours left: every unfinished job is
    cancelled, and the runner, idle then, ends itself within a minute."""
    manager = JobManager(runs_dir)
    jobs = [job for job in manager.jobs() if job.status()["state"] not in FINAL_STATES]
    for job in jobs:
        job.cancel()
    deadline = time.time() + 120
    while time.time() < deadline and any(job.status()["state"] not in FINAL_STATES for job in jobs):
        time.sleep(1)
    if not (cache / "training-queue.sqlite3").exists():
        return
    queue = TrainingQueue(cache)
    while time.time() < deadline and queue.runner_alive():
        time.sleep(1)
    if queue.runner_alive():
        print("warning: the training queue's runner is still alive; it ends itself once its queue is empty")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data",
        metavar="FOLDER",
        help="an image folder of CIFAR-10 (train/ and test/ class folders) for the Train job; "
        "default: the app's generated images",
    )
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM_PATH") or shutil.which("chromium"))
    parser.add_argument("--only", help=f"some of the pictures, comma-separated: {','.join(PICTURE_MAKERS)}")
    args = parser.parse_args()
    wanted = args.only.split(",") if args.only else list(PICTURE_MAKERS)
    unknown = [name for name in wanted if name not in PICTURE_MAKERS]
    if unknown:
        parser.error(f"no such picture: {', '.join(unknown)}")
    if args.data and not (Path(args.data) / "train").is_dir():
        parser.error(f"{args.data} has no train/ folder")
    job = {"data": str(Path(args.data).resolve()) if args.data else None}
    PICTURES.mkdir(parents=True, exist_ok=True)
    began = time.time()
    with tempfile.TemporaryDirectory(prefix="make-pictures-", ignore_cleanup_errors=True) as tmp:
        runs_dir, cache = Path(tmp) / "runs", Path(tmp) / "cache"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESEXPLORER_")}  # no one's own settings
        env.update(RESEXPLORER_RUNS=str(runs_dir), RESEXPLORER_CACHE=str(cache))
        proc, url = serve(env)
        sizes = {}
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=FLAGS)
                for name in wanted:
                    maker, width = PICTURE_MAKERS[name]
                    print(f"{name}: {maker.__doc__.splitlines()[0]}")
                    path = PICTURES / f"{name}.png"
                    sizes[path.name] = small_png(maker(browser, url, job), path, width)
                browser.close()
        finally:
            stop_jobs(runs_dir, cache)
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    for name, size in sizes.items():
        print(f"{name:<20} {size / 1024:6.1f} KB")
    total = sum(p.stat().st_size for p in PICTURES.glob("*.png"))
    print(f"{'all of docs/pictures':<20} {total / 1024:6.1f} KB   ({time.time() - began:.0f} s)")


if __name__ == "__main__":
    main()

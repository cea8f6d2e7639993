"""A real browser: `streamlit run app.py` headless, driven by Chromium.

Needs Chromium (Debian's `chromium` package; set CHROMIUM_PATH to use
another build). Screenshots land in tests/artifacts/ for a person to look at.
"""

import contextlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from app_server import serve
from helpers import ROOT, make_image_folder, wait_for_job
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect, sync_playwright

from resexplorer.runs.recipe import RunOptions, TrainConfig
from resexplorer.services.planning import QUICK_DEMO
from resexplorer.services.reference import reference_runs
from resexplorer.training.jobs import JobManager
from ui.sidebar import PAGES, tab_title

pytestmark = pytest.mark.slow  # browsers, subprocesses, builds: see pytest.ini

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    for candidate in (
        os.environ.get("CHROMIUM_PATH"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    raise AssertionError("no Chromium found: install Debian's 'chromium' package (README) or set CHROMIUM_PATH")


def _serve(env: dict) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py`, freshly started; returns it and its address."""
    return serve(env)


@contextlib.contextmanager
def _fresh_app_in_chromium(tmp_path):
    """A freshly started `streamlit run app.py` (its runs folder in
    tmp_path) and a headless Chromium: (browser, the app's address)."""
    proc, url = _serve({**os.environ, "RESEXPLORER_RUNS": str(tmp_path / "runs")})
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_FLAGS)
            yield browser, url
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.fixture()
def served_app(tmp_path):
    folder = make_image_folder(tmp_path / "images", n_train=60, n_test=30)
    runs = tmp_path / "runs"
    proc, url = _serve({**os.environ, "RESEXPLORER_DATA": str(folder), "RESEXPLORER_RUNS": str(runs)})
    try:
        yield url, runs, folder
    finally:
        job = JobManager(runs).active()
        if job:
            job.cancel()
            wait_for_job(runs, timeout=60)  # its worker frees the machine for the next test's job
        proc.terminate()
        proc.wait(20)


def _nav(page, label: str) -> None:
    """Click the sidebar's link to a page, and click once more if the page
    has not opened in 15 s: Streamlit folds a page switch into a rerun asked
    for at the same moment (the live chart's refresh, say), and the newer
    request's page wins; a person would click again."""
    link = page.locator("[data-testid=stSidebar]").get_by_role("link", name=label).first
    opened = f"() => document.title === {tab_title(label)!r}"
    for _ in range(2):
        link.click()
        try:
            page.wait_for_function(opened, timeout=15_000)
            return
        except PlaywrightTimeout:
            pass


# The traces plotly drew on the page: figures.py names each error curve's
# model and kind in its meta.
_DRAWN_MODELS = """() => [...document.querySelectorAll('.js-plotly-plot')].flatMap(gd => gd.data || [])
    .filter(t => t.meta && t.meta.run && !t.meta.reference).map(t => t.meta.run + ' ' + t.meta.curve)"""
_CHART = "[data-testid=stPlotlyChart] .main-svg"


def _drawn(page, model: str, curve: str = "test error", timeout: float = 120_000) -> None:
    page.wait_for_function(f"() => ({_DRAWN_MODELS})().includes('{model} {curve}')", timeout=timeout)


# The charts redrawn in place (ui/live_charts.py) are drawn in a frame of their own.
_LIVE_CHART = ".main-svg"


def _chart(page):
    return page.locator(_CHART)


def _live_chart(page):
    return page.frame_locator("iframe").locator(_LIVE_CHART)


# Every page by its URL path, its heading and what marks it as drawn.
FIRST_VISITS = {
    "": ("ResNet Explorer", _chart),
    "train": ("Train & compare", _chart),
    "inside": ("Inside the nets", _chart),
    "attributions": ("Attributions", lambda page: page.locator("text=Attribution maps")),
    "tta": ("Test-time augmentation", _chart),
    "runs": ("Runs", lambda page: page.locator("[data-testid=stDataFrame]")),
    "playground": ("Playground", _live_chart),
}
NAVIGATION = [page.title for page in PAGES]  # test_app.py holds them to the list a user reads


@pytest.mark.parametrize("path", list(FIRST_VISITS))
def test_every_page_opened_first_by_its_url_on_a_fresh_server_shows_the_whole_app(tmp_path, path):
    """A bookmark or a tab refreshed after a restart: the page's URL is the
    first thing the fresh server sees, and the app's navigation (titles,
    icons, the current page marked) and sidebar are there."""
    heading, drawn = FIRST_VISITS[path]
    with _fresh_app_in_chromium(tmp_path) as (browser, url):
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(f"{url}/{path}")
        expect(page.get_by_role("heading", name=heading).first).to_be_visible(timeout=120_000)
        sidebar = page.locator("[data-testid=stSidebar]")
        links = sidebar.locator("[data-testid=stPageLink-NavLink]")
        expect(links).to_have_count(len(NAVIGATION), timeout=30_000)
        assert [t.strip() for t in links.locator("[data-testid=stMarkdownContainer]").all_inner_texts()] == NAVIGATION
        icons = [p.icon.removeprefix(":material/").removesuffix(":") for p in PAGES]
        assert links.locator("[data-testid=stIconMaterial]").all_inner_texts() == icons
        expect(sidebar.get_by_text("Device:")).to_be_visible()
        expect(sidebar.get_by_text("Data source")).to_be_visible()
        expect(sidebar.get_by_text("Runs folder")).to_be_visible()
        # Streamlit's own file-name navigation is hidden
        expect(page.locator("[data-testid=stSidebarNav]")).to_have_count(0)
        # the current page's entry is marked (a background the others lack)
        backgrounds = links.evaluate_all("links => links.map(a => getComputedStyle(a).backgroundColor)")
        current = NAVIGATION.index(heading) if heading in NAVIGATION else 0
        assert len(set(backgrounds) - {backgrounds[current]}) == 1 and backgrounds.count(backgrounds[current]) == 1
        expect(drawn(page).first).to_be_visible(timeout=180_000)
        page.wait_for_timeout(500)  # the last pictures decode
        page.screenshot(path=str(ARTIFACTS / f"0-first-visit-{path or 'home'}.png"), full_page=True)


def test_a_user_runs_the_quick_demo_and_finds_the_job_after_switching_pages(served_app):
    url, runs, _ = served_app
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        page.goto(url)
        expect(page.get_by_role("heading", name="ResNet Explorer")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Device:")).to_be_visible()
        assert reference_runs("fig6")  # the runs ship with the app: Home draws them at once
        _drawn(page, "resnet-56", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "1-home.png"), full_page=True)

        _nav(page, "Train & compare")
        expect(page.get_by_role("heading", name="Train & compare")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Expected duration")).to_be_visible(timeout=60_000)
        page.get_by_role("button", name="Start").click()
        # the live chart shows at least one point of each model
        for model in ("plain-20", "resnet-20"):
            _drawn(page, model, "training error")
        page.screenshot(path=str(ARTIFACTS / "2-training.png"), full_page=True)

        _nav(page, "Runs")
        expect(page.get_by_role("heading", name="Runs")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Tick the box at the start of a row")).to_be_visible(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "3-runs.png"), full_page=True)

        _nav(page, "Train & compare")
        expect(page.get_by_role("heading", name="Train & compare")).to_be_visible(timeout=60_000)
        # the same job is still there, with its curves
        _drawn(page, "resnet-20", "test error")
        expect(page.get_by_text("Job done")).to_be_visible(timeout=120_000)
        page.screenshot(path=str(ARTIFACTS / "4-back-to-training.png"), full_page=True)

        _nav(page, "Inside the nets")
        expect(page.get_by_role("heading", name="Layer responses (Fig. 7)")).to_be_visible(timeout=60_000)
        # the shipped pair, then one click on the shortcut toggle swaps the plain net out of every chart
        expect(page.locator(f"{_CHART} .legendtext", has_text="resnet-56 @").first).to_be_visible(timeout=120_000)
        page.get_by_role("radio", name="on (residual)").click()
        legend = page.locator(f"{_CHART} .legendtext")
        expect(legend.filter(has_text="plain-56 @")).to_have_count(0, timeout=120_000)
        expect(legend.filter(has_text="resnet-56 @").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "5-inside-residual-only.png"), full_page=True)
        page.get_by_role("radio", name="both").click()
        expect(legend.filter(has_text="plain-56 @").first).to_be_visible(timeout=120_000)
        lesion_button = page.get_by_role("button", name="Compute the lesion sweeps")
        lesion_chart = page.locator(f"{_CHART} .xtitle", has_text="deleted block")
        try:
            expect(lesion_button.or_(lesion_chart).first).to_be_visible(timeout=180_000)
            if lesion_button.count():  # shipped runs come with their sweeps computed
                lesion_button.click()
            expect(lesion_chart.first).to_be_visible(timeout=180_000)
        finally:
            page.screenshot(path=str(ARTIFACTS / "5-inside.png"), full_page=True)

        _nav(page, "Attributions")
        expect(page.get_by_role("heading", name="Attributions")).to_be_visible(timeout=60_000)
        page.get_by_role("radiogroup", name="Image", exact=True).get_by_text("Upload", exact=True).click()
        page.locator("input[type=file]").set_input_files(
            str(ROOT / "assets" / "samples" / "photos" / "cat-chelsea.png")
        )
        expect(page.get_by_text("Attribution maps")).to_be_visible(timeout=120_000)
        expect(page.get_by_text("resnet-56 · Grad-CAM").first).to_be_visible(timeout=60_000)  # an image caption
        expect(page.locator(f"{_CHART} .xtitle", has_text="pixels removed (%)").first).to_be_visible(
            timeout=120_000
        )  # the deletion curves
        # every picture (the input, the original, 2 models x 4 maps) has arrived and decoded
        page.wait_for_function(
            "() => { const imgs = [...document.querySelectorAll('[data-testid=stImage] img')];"
            " return imgs.length >= 10 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
            timeout=60_000,
        )
        page.screenshot(path=str(ARTIFACTS / "6-attributions.png"), full_page=True)

        _nav(page, "Test-time augmentation")
        expect(page.get_by_role("heading", name="Test-time augmentation")).to_be_visible(timeout=60_000)
        page.get_by_role("radiogroup", name="Images", exact=True).get_by_text("Upload", exact=True).click()
        page.locator("input[type=file]").set_input_files(str(ROOT / "assets" / "samples" / "photos" / "coffee-cup.png"))
        expect(page.get_by_role("heading", name="coffee-cup.png")).to_be_visible(timeout=120_000)
        # the choices drawn after the images show the values the page uses, though the page stopped above
        # them while no image was uploaded
        for label, shown in (("Merge for the charts", "mean probs"), ("Strategy for the view gallery", "10-crop")):
            choice = page.locator("[data-testid=stSelectbox]", has_text=label).locator("input")
            expect(choice).to_have_value(shown, timeout=30_000)
        expect(page.locator(f"{_CHART} .legendtext", has_text="10-crop").first).to_be_visible(
            timeout=60_000
        )  # probability bars
        expect(page.get_by_role("heading", name="What is it really? An ImageNet ResNet-50")).to_be_visible(
            timeout=120_000
        )
        page.wait_for_function(  # the 32x32 input and its 10 views have arrived and decoded
            "() => { const imgs = [...document.querySelectorAll('[data-testid=stImage] img')];"
            " return imgs.length >= 11 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
            timeout=60_000,
        )
        page.screenshot(path=str(ARTIFACTS / "7-tta-upload.png"), full_page=True)
        browser.close()
    assert len(JobManager(runs).jobs()) == 1


# The live chart's plotly element. While it remounts there is, for a moment,
# none, or the old and the new one both (the last is the new one).
_LIVE = "[...document.querySelectorAll('.st-key-live_chart .js-plotly-plot')].pop()"


def _box(locator) -> dict:
    """The element's box, once it is drawn (the chart remounts now and then)."""
    deadline = time.time() + 30
    while time.time() < deadline:
        box = locator.bounding_box()
        if box:
            return box
        time.sleep(0.1)
    raise AssertionError(f"{locator} was never drawn")


def _live(page, expression: str, timeout: float = 30_000):
    """`expression` of the live chart's element `gd`, once there is one."""
    handle = page.wait_for_function(
        f"() => {{ const gd = {_LIVE}; return gd && gd._fullLayout && gd.data ? {{value: {expression}}} : null; }}",
        timeout=timeout,
    )
    return handle.json_value()["value"]


def _live_points(page, trace: str, at_least: int, timeout: float = 120_000) -> int:
    """How many points the live chart's `trace` has, once it has `at_least`.
    A refresh can swap the chart's element for one still being drawn, so the
    trace may be missing for a moment: that counts as no points yet."""
    handle = page.wait_for_function(
        f"""() => {{ const gd = {_LIVE};
            const n = (gd && gd.data && gd.data.find(t => t.name === '{trace}')?.x.length) || 0;
            return n >= {at_least} ? n : null; }}""",
        timeout=timeout,
    )
    return handle.json_value()


# Counts, frame by frame, whether the live chart's place shows a drawn chart
# (a visible plot with curves, or the still that stands in for it) and how
# often Streamlit mounted a new chart element there.
_FRAMES = """() => { const f = window.__frames = {shown: 0, blank: 0, mounts: 0}; const known = new WeakSet();
    const tick = () => { const place = document.querySelector('.st-key-live_chart');
        if (place) {
            const plots = [...place.querySelectorAll('.js-plotly-plot')];
            plots.filter(g => !known.has(g)).forEach(g => { known.add(g); f.mounts++; });
            const shown = [...plots, ...place.querySelectorAll('.chart-still')].some(g =>
                getComputedStyle(g).visibility === 'visible' && g.querySelector('.scatterlayer .trace'));
            shown ? f.shown++ : f.blank++;
        }
        requestAnimationFrame(tick); };
    requestAnimationFrame(tick); }"""


def test_the_live_chart_keeps_the_users_view_and_never_blinks_while_it_refreshes(served_app):
    """A job adds points every step; the chart redraws every 2 s, keeps the
    user's zoom box and the model they hid in the legend, and never shows
    an empty frame, though Streamlit mounts every redraw afresh."""
    url, runs, folder = served_app
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(f"{url}/train")
        expect(page.get_by_role("heading", name="Train & compare")).to_be_visible(timeout=60_000)
        JobManager(runs).start_training(
            ["plain-8", "resnet-8"],
            str(folder),
            TrainConfig(epochs=300, batch_size=16),
            options=RunOptions(log_every=1),
        )
        _drawn(page, "resnet-8", "training error")
        _live_points(page, "resnet-8 training error", at_least=4)
        page.evaluate(_FRAMES)

        hidden_two = "gd.data.filter(t => t.visible === 'legendonly').length === 2"
        hidden = f"() => {{ const gd = {_LIVE}; return gd && {hidden_two}; }}"
        for _ in range(5):  # a click that a refresh cuts short does nothing: try again
            box = _box(page.locator(".st-key-live_chart .legendtext", has_text="plain-8 test error").last)
            page.mouse.click(box["x"] + 3, box["y"] + box["height"] / 2)  # hides plain-8's two curves
            page.wait_for_timeout(600)
            if page.evaluate(hidden):
                break
        page.wait_for_function(hidden)
        before = _live(page, "gd._fullLayout.xaxis.range")
        span = before[1] - before[0]
        for _ in range(5):  # a drag that a refresh cuts short does nothing: try again
            area = _box(page.locator(".st-key-live_chart .nsewdrag").last)
            y = area["y"] + area["height"] / 2
            page.mouse.move(area["x"] + 0.6 * area["width"], y)
            page.mouse.down()
            page.mouse.move(area["x"] + 0.8 * area["width"], y + 40, steps=4)  # zoom into a box
            page.mouse.up()
            page.wait_for_timeout(300)
            zoomed = _live(page, "gd._fullLayout.xaxis.range")
            if zoomed[1] - zoomed[0] < 0.5 * span:  # a view the data alone would never give
                break
        page.wait_for_timeout(2500)  # the zoom has reached Python and come back in a redrawn chart
        zoomed = _live(page, "gd._fullLayout.xaxis.range")
        assert zoomed[1] - zoomed[0] < 0.5 * span
        seen = _live_points(page, "resnet-8 training error", at_least=1)  # now (a long curve is thinned)
        _live_points(page, "resnet-8 training error", at_least=seen + 3)  # refreshed with new points
        page.wait_for_timeout(2500)  # and once more
        live = _live(
            page, "[gd._fullLayout.xaxis.range, gd.data.filter(t => t.visible === 'legendonly').map(t => t.name)]"
        )
        frames = page.evaluate("() => window.__frames")
        page.screenshot(path=str(ARTIFACTS / "8-live-chart-kept-view.png"), full_page=True)
        browser.close()
    assert live[0] == pytest.approx(zoomed)
    assert sorted(live[1]) == ["plain-8 test error", "plain-8 training error"]
    assert frames["mounts"] >= 4, frames  # redrawn afresh several times while watched
    assert frames["blank"] == 0, frames


def test_what_a_newcomer_tripped_over_is_fixed_on_every_page(served_app):
    """The walk of issue 21, page by page, each with a screenshot to look at:
    the Train chart fits the job; TTA's tables fit, its heat maps read
    as percentages and the test-set scores are there on opening; the Runs
    table is the picker; a long action says how long is left and cancels."""
    url, runs, _ = served_app
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})

        # 1. Train & compare: the axis fits the job; the 30-epoch reference runs are clipped, and a
        # double-click shows them whole, kept across the live chart's refreshes
        page.goto(f"{url}/train")
        expect(page.get_by_text("Expected duration")).to_be_visible(timeout=60_000)
        page.get_by_role("button", name="Start").click()
        _drawn(page, "resnet-20", "training error")
        _live_points(page, "resnet-20 test error", at_least=3)
        fitted = dict(QUICK_DEMO.overrides)["epochs"] * 1.02
        # Read once the job's own drawing is on screen: for a moment a redraw's
        # element can still hold the drawing from before the job (the shipped
        # runs alone, autoranged to their 30 epochs).
        settled = f"Math.abs(gd._fullLayout.xaxis.range[1] - {fitted}) < 1e-3 ? gd._fullLayout.xaxis.range : null"
        for _ in range(40):
            if _live(page, settled):
                break
            page.wait_for_timeout(250)
        assert _live(page, "gd._fullLayout.xaxis.range")[1] == pytest.approx(fitted)
        references_end = "Math.max(...gd.data.filter(t => t.meta && t.meta.reference).flatMap(t => [...t.x]))"
        assert _live(page, references_end) == 30
        page.screenshot(path=str(ARTIFACTS / "21-1-train-axis-fits-the-job.png"), full_page=True)
        whole = f"() => {{ const gd = {_LIVE}; return gd && gd._fullLayout && gd._fullLayout.xaxis.range[1] >= 30; }}"
        for _ in range(5):
            area = _box(page.locator(".st-key-live_chart .nsewdrag").last)
            page.mouse.dblclick(area["x"] + area["width"] / 2, area["y"] + area["height"] / 2)
            page.wait_for_timeout(600)
            if page.evaluate(whole):
                break
        page.wait_for_timeout(4500)  # two refreshes later, the chart still shows everything
        page.wait_for_function(whole, timeout=10_000)
        page.screenshot(path=str(ARTIFACTS / "21-1-train-double-click-shows-all.png"), full_page=True)

        # 2-4. Test-time augmentation: the shipped resnet-56 on the sample images
        _nav(page, "Test-time augmentation")
        expect(page.get_by_role("heading", name="airplane_00.jpg")).to_be_visible(timeout=180_000)
        tables = page.locator("[data-testid=stDataFrame]")
        expect(tables.first).to_be_visible(timeout=60_000)
        page.wait_for_timeout(1000)  # the grids lay out their columns
        widths = tables.evaluate_all(
            "grids => grids.filter(g => g.offsetParent).map(g => { const s = g.querySelector('.dvn-scroller');"
            " return s ? [s.scrollWidth, s.clientWidth] : null; }).filter(Boolean)"
        )
        assert widths and all(scroll <= client + 1 for scroll, client in widths), widths  # every column shows
        heat = page.locator(".js-plotly-plot", has=page.locator(".colorbar")).first  # the samples' accuracy map
        expect(heat).to_be_visible(timeout=60_000)
        ticks = heat.evaluate("gd => [...gd.querySelectorAll('.colorbar .cbaxis text')].map(t => t.textContent)")
        assert ticks and ticks[0] == "0" and ticks[-1] == "100" and not any("." in t for t in ticks), ticks
        page.screenshot(path=str(ARTIFACTS / "21-2-tta-per-image-table.png"), full_page=True)
        heat.scroll_into_view_if_needed()  # the page scrolls inside its main pane: screenshots show what is in view
        page.screenshot(path=str(ARTIFACTS / "21-3-tta-accuracy-map.png"), full_page=True)
        shipped = page.get_by_text("Shipped with this reference run").first
        expect(shipped).to_be_visible(timeout=120_000)
        assert not page.get_by_role("button", name="Score every strategy").count()  # no wait, no button
        page.get_by_role("heading", name="Which strategies really help? The test set").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "21-4-tta-test-set-on-opening.png"), full_page=True)

        # 5. Runs: ticking a row of the table plots that run
        _nav(page, "Runs")
        grid = page.locator("[data-testid=stDataFrame]").first
        expect(grid).to_be_visible(timeout=60_000)
        expect(page.get_by_text("No run ticked yet")).to_be_visible()
        for _ in range(3):
            grid.click(position={"x": 15, "y": 35 + 17})  # the first data row's tick box
            try:
                page.wait_for_function(f"() => ({_DRAWN_MODELS})().length > 0", timeout=20_000)
                break
            except PlaywrightTimeout:
                continue
        drawn = page.evaluate(_DRAWN_MODELS)
        assert len({name.rsplit(" ", 2)[0] for name in drawn}) == 1, drawn  # one run, its two curves
        expect(page.get_by_role("button", name="Metrics of these runs (CSV)")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "21-5-runs-ticked-row.png"), full_page=True)

        # 6. Inside: the 2-D slices of the two nets shown are one action, which says which of them is under
        # way and how long is left for both, and Cancel stops it
        _nav(page, "Inside the nets")
        expect(page.get_by_role("heading", name="Layer responses (Fig. 7)")).to_be_visible(timeout=60_000)
        page.get_by_text("2-D slice (slower").click()
        page.get_by_role("button", name="Compute the 2-D slices").click()
        progress = page.locator("[data-testid=stProgress]")
        under_way = re.compile(r"1 of 2 · .+ · about \d+ (s|min) left")
        expect(progress.filter(has_text=under_way)).to_be_visible(timeout=120_000)
        progress.first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "21-6-inside-progress-and-cancel.png"), full_page=True)
        page.get_by_role("button", name="Cancel").click()
        expect(page.get_by_text("Cancelled: 2-D loss slice")).to_be_visible(timeout=30_000)
        expect(progress).to_have_count(0, timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "21-6-inside-cancelled.png"), full_page=True)
        browser.close()


# The Playground's curves chart, in the frame of the charts redrawn in place:
# the last step drawn and each model's last training error
# (playground_figures.curves marks its traces).
_PLAYGROUND_CURVES = """() => {
  const frames = [...document.querySelectorAll('iframe')].map(f => f.contentDocument).filter(Boolean);
  for (const gd of frames.flatMap(d => [...d.querySelectorAll('.js-plotly-plot')])) {
    const traces = (gd.data || []).filter(t => t.meta && t.meta.measure === 'error' && t.meta.split === 'train');
    if (traces.length) {
      const steps = traces[0].x || [];
      const marked = gd.__marked === true;
      gd.__marked = true;  // a chart redrawn in place keeps this; one mounted afresh has not got it
      return {step: steps.length ? steps[steps.length - 1] : 0, models: traces.map(t => t.meta.model), marked};
    }
  }
  return null;
}"""


def _playground_step(page) -> int:
    seen = page.evaluate(_PLAYGROUND_CURVES)
    return seen["step"] if seen else -1


def test_a_playground_link_reproduces_its_experiment_and_the_charts_follow_play_and_pause(tmp_path):
    """A shared link: its settings are applied, the charts update while it
    trains, and they stop on Pause."""
    with _fresh_app_in_chromium(tmp_path) as (browser, url):
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(f"{url}/playground?data=moons&depth=20&width=8&shortcut=both&noise=0.1&seed=3")
        expect(page.get_by_role("heading", name="Playground")).to_be_visible(timeout=120_000)
        expect(page.get_by_role("combobox", name="Data", exact=True)).to_have_value("Moons", timeout=30_000)
        depth = page.locator("[data-testid=stSlider]").filter(has_text="Depth")
        expect(depth.get_by_role("slider")).to_have_value("20", timeout=30_000)
        page.wait_for_function(f"() => ({_PLAYGROUND_CURVES})() !== null", timeout=60_000)
        assert sorted(page.evaluate(_PLAYGROUND_CURVES)["models"]) == ["plain", "residual"]
        first = _playground_step(page)
        page.wait_for_function(f"() => ({_PLAYGROUND_CURVES})().step > {first}", timeout=30_000)
        assert page.evaluate(_PLAYGROUND_CURVES)["marked"]  # the new steps were drawn into the same chart
        page.screenshot(path=str(ARTIFACTS / "8-playground.png"), full_page=True)
        page.get_by_role("button", name="Pause").click()
        expect(page.get_by_text("Paused: step")).to_be_visible(timeout=30_000)
        paused = _playground_step(page)
        for _ in range(10):  # the redraw under way as Pause was clicked may land a moment later
            page.wait_for_timeout(1_000)
            paused, before = _playground_step(page), paused
            if paused == before:
                break
        page.wait_for_timeout(2_000)
        assert _playground_step(page) == paused  # paused: no step since
        assert f"step {paused} of" in page.get_by_text("Paused: step").inner_text()
        assert "depth=20" in page.url and "data=moons" in page.url  # the link still says the experiment

"""A real browser: `streamlit run app.py` headless, driven by Chromium.

Needs Chromium (Debian's `chromium` package; set CHROMIUM_PATH to use
another build). Screenshots land in tests/artifacts/ for a person to look at.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from helpers import ROOT, make_image_folder
from resexplorer.jobs import JobManager
from resexplorer.reference import reference_runs

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
    for candidate in (os.environ.get("CHROMIUM_PATH"), shutil.which("chromium"), shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).exists():
            return candidate
    raise AssertionError("no Chromium found: install Debian's 'chromium' package (README) or set CHROMIUM_PATH")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def served_app(tmp_path):
    folder = make_image_folder(tmp_path / "images", n_train=60, n_test=30)
    runs = tmp_path / "runs"
    port = _free_port()
    env = {**os.environ, "RESEXPLORER_DATA": str(folder), "RESEXPLORER_RUNS": str(runs)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    try:
        yield url, runs
    finally:
        job = JobManager(runs).active()
        if job:
            job.cancel()
        proc.terminate()
        proc.wait(20)


def _nav(page, label: str) -> None:
    page.get_by_role("link", name=label).first.click()


def _point(model: str, curve: str = "") -> str:
    """A drawn point of a model's error curve: Vega labels every mark with
    its values (the tooltip's fields) for screen readers."""
    return f'.vega-embed [aria-label*="model: {model}; curve: {curve}"]'


def test_a_user_runs_the_quick_demo_and_finds_the_job_after_switching_pages(served_app):
    url, runs = served_app
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        page.goto(url)
        expect(page.get_by_role("heading", name="ResNet Explorer")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Device:")).to_be_visible()
        if reference_runs("fig6"):  # the shipped Fig. 6 runs are drawn at once
            expect(page.locator(_point("resnet-56")).first).to_be_attached(timeout=60_000)
        else:
            expect(page.get_by_text("No runs to draw yet")).to_be_visible(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "1-home.png"), full_page=True)

        _nav(page, "Train & compare")
        expect(page.get_by_role("heading", name="Train & compare")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Expected duration")).to_be_visible(timeout=60_000)
        page.get_by_role("button", name="Start").click()
        # the live chart shows at least one point of each model
        for model in ("plain-20", "resnet-20"):
            expect(page.locator(_point(model)).first).to_be_attached(timeout=120_000)
        page.screenshot(path=str(ARTIFACTS / "2-training.png"), full_page=True)

        _nav(page, "Runs")
        expect(page.get_by_role("heading", name="Runs")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Runs to plot together")).to_be_visible(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "3-runs.png"), full_page=True)

        _nav(page, "Train & compare")
        expect(page.get_by_role("heading", name="Train & compare")).to_be_visible(timeout=60_000)
        # the same job is still there, with its curves
        expect(page.locator(_point("resnet-20", "test error")).first).to_be_attached(timeout=120_000)
        expect(page.get_by_text("Job done")).to_be_visible(timeout=120_000)
        page.screenshot(path=str(ARTIFACTS / "4-back-to-training.png"), full_page=True)

        _nav(page, "Inside the nets")
        expect(page.get_by_role("heading", name="Layer responses (Fig. 7)")).to_be_visible(timeout=60_000)
        shown = "resnet-56" if reference_runs("fig6") else "resnet-20"  # the shipped pair, else the runs just made
        expect(page.locator(".vega-embed text", has_text=f"{shown} @").first).to_be_visible(timeout=120_000)
        lesion_button = page.get_by_role("button", name="Compute the lesion sweeps")
        lesion_chart = page.locator(".vega-embed text", has_text="deleted block")
        try:
            expect(lesion_button.or_(lesion_chart).first).to_be_visible(timeout=180_000)
            if lesion_button.count():  # shipped runs come with their sweeps computed
                lesion_button.click()
            expect(lesion_chart.first).to_be_visible(timeout=180_000)
        finally:
            page.screenshot(path=str(ARTIFACTS / "5-inside.png"), full_page=True)

        _nav(page, "Attributions")
        page.get_by_text("Upload", exact=True).click()
        page.locator("input[type=file]").set_input_files(str(ROOT / "assets" / "samples" / "photos" / "cat-chelsea.png"))
        expect(page.get_by_text("Attribution maps")).to_be_visible(timeout=120_000)
        expect(page.get_by_text("resnet-56 · Grad-CAM" if reference_runs("fig6") else "resnet-20 · Grad-CAM").first).to_be_visible(timeout=60_000)  # an image caption
        expect(page.locator(".vega-embed text", has_text="pixels removed (%)").first).to_be_visible(timeout=120_000)  # the deletion curves
        # every picture (the input, the original, 2 models x 4 maps) has arrived and decoded
        page.wait_for_function(
            "() => { const imgs = [...document.querySelectorAll('[data-testid=stImage] img')];"
            " return imgs.length >= 10 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
            timeout=60_000,
        )
        page.screenshot(path=str(ARTIFACTS / "6-attributions.png"), full_page=True)
        browser.close()
    assert len(JobManager(runs).jobs()) == 1

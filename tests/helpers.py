"""Shared helpers for the app tests."""

import json
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from resexplorer.jobs import JobManager
from resexplorer.synthetic import make_synthetic, write_image_folder

ROOT = Path(__file__).resolve().parents[1]


def make_image_folder(path: Path, n_train: int = 60, n_test: int = 30, classes: int = 3) -> Path:
    return write_image_folder(make_synthetic(n_train=n_train, n_test=n_test, num_classes=classes, seed=3), path)


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    if page:
        at.switch_page(page).run()
    return at


def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(element.proto.spec) for element in at.get("plotly_chart")]


def wait_for_job(runs_dir: Path, timeout: float = 600) -> dict:
    job = JobManager(runs_dir).latest()
    deadline = time.time() + timeout
    while job.active and time.time() < deadline:
        time.sleep(0.5)
    return job.status()

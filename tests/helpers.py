"""Shared helpers for the app tests."""

import json
import time
from pathlib import Path

import pyarrow as pa
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
    """Every Vega-Lite chart on the page: its spec, with the rows Streamlit
    moved out of it (as Arrow) back under "rows"."""
    specs = []
    for element in at.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        data = element.proto.data.data
        spec["rows"] = pa.ipc.open_stream(data).read_all().to_pylist() if data else []
        specs.append(spec)
    return specs


def marks(spec: dict) -> set[str]:
    """The mark types a spec draws (its own, its layers', its facet's)."""
    units = spec.get("layer", []) + ([spec["spec"]] if "spec" in spec else []) + ([spec] if "mark" in spec else [])
    return {u["mark"] if isinstance(u["mark"], str) else u["mark"]["type"] for u in units}


def x_title(spec: dict) -> str:
    unit = spec["layer"][0] if "layer" in spec else spec.get("spec", spec)
    return unit["encoding"]["x"]["title"]


def points(specs: list[dict], name: str = "series", value: str = "y") -> dict[str, list]:
    """The values drawn per line: {series name: [value, ...]} in row order."""
    drawn: dict[str, list] = {}
    for spec in specs:
        for row in spec["rows"]:
            if name in row:
                drawn.setdefault(row[name], []).append(row[value])
    return drawn


def images(at: AppTest) -> list:
    """Every image on the page (st.image lists are flattened), with caption and url."""
    return [img for element in at.get("image") for img in element.proto.imgs]


def wait_for_job(runs_dir: Path, timeout: float = 600) -> dict:
    job = JobManager(runs_dir).latest()
    deadline = time.time() + timeout
    while job.active and time.time() < deadline:
        time.sleep(0.5)
    return job.status()

"""Shared helpers for the app tests."""

import base64
import contextlib
import io
import json
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from resexplorer.data.sources import Normalizer
from resexplorer.data.synthetic import make_synthetic, write_image_folder
from resexplorer.nets.models import build_model
from resexplorer.runs.recipe import RunOptions
from resexplorer.science.inference import LoadedModel
from resexplorer.training.engine import Callback
from resexplorer.training.jobs import JobManager

ROOT = Path(__file__).resolve().parents[1]

# How the tests run their races: on the CPU wherever they run (a GPU machine too), and,
# where a test reads the training curve, a point logged at every step.
ON_CPU = RunOptions(device="cpu")
ON_CPU_EVERY_STEP = RunOptions(device="cpu", log_every=1)


class StopAfterEpoch(Callback):
    """Asks a race to stop once any model has finished this epoch."""

    def __init__(self, epoch):
        self.epoch, self.stop = epoch, False

    def on_epoch_end(self, member, event):
        self.stop = self.stop or event.epoch >= self.epoch


def make_image_folder(path: Path, n_train: int = 60, n_test: int = 30, classes: int = 3) -> Path:
    return write_image_folder(make_synthetic(n_train=n_train, n_test=n_test, num_classes=classes, seed=3), path)


def app(page: str | None = None) -> AppTest:
    """The app from its entry script, app.py (Home); `page` ("pages/train.py")
    is then switched to, as a click on its link would."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    if page:
        at.switch_page(page).run()
    return at


def tick_runs(at: AppTest, run_ids: list[str]) -> AppTest:
    """Ticks these runs' rows in the Runs page's table and reruns, as clicks
    on the rows' checkboxes would: AppTest cannot click the grid, so the
    selection is set where the browser's lands, the table's session state,
    as row places in the data the table was given."""
    shown = at.dataframe[0].value["run"].tolist()
    at.session_state["runs_table"] = {"selection": {"rows": [shown.index(run_id) for run_id in run_ids]}}
    return at.run()


def ticked_runs(at: AppTest) -> list[str]:
    """The run ids of the ticked rows of the Runs page's table."""
    shown = at.dataframe[0].value["run"].tolist()
    return [shown[place] for place in at.session_state["runs_table"]["selection"]["rows"]]


def figures(at: AppTest) -> list[dict]:
    """Every plotly chart on the page, as the figure JSON the browser gets:
    st.plotly_chart's, then those of the charts redrawn in place
    (ui/live_charts.py, a component whose arguments hold its figures)."""
    charts = [json.loads(element.proto.spec) for element in at.get("plotly_chart")]
    for element in at.get("component_instance"):
        charts += json.loads(json.loads(element.proto.json_args).get("figures", "[]"))
    return charts


def values(array) -> list:
    """A trace's array as a list: plotly may send numbers as typed arrays
    ({"dtype": "f8", "bdata": base64})."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"])).tolist()
    return list(array or [])


def curves(figs: list[dict], reference: bool = False) -> dict[str, list[float]]:
    """Error values drawn per model and curve of the error-curve charts,
    e.g. {"resnet-8 test error": [...]}: the live runs' or, with
    reference=True, the faded reference runs'."""
    drawn: dict[str, list[float]] = {}
    for fig in figs:
        for trace in fig["data"]:
            meta = trace.get("meta") or {}
            if "curve" in meta and bool(meta.get("reference")) == reference:
                drawn.setdefault(f"{meta['run']} {meta['curve']}", []).extend(values(trace.get("y")))
    return drawn


def points(figs: list[dict]) -> dict[str, list]:
    """The y values drawn per named line: {trace name: [value, ...]}."""
    drawn: dict[str, list] = {}
    for fig in figs:
        for trace in fig["data"]:
            if trace.get("type", "scatter") == "scatter" and trace.get("name"):
                drawn.setdefault(trace["name"], []).extend(values(trace.get("y")))
    return drawn


def trace_types(fig: dict) -> set[str]:
    return {trace.get("type", "scatter") for trace in fig["data"]}


def x_title(fig: dict) -> str:
    title = fig["layout"].get("xaxis", {}).get("title", {})
    return title.get("text", "") if isinstance(title, dict) else title


def images(at: AppTest) -> list:
    """Every image on the page (st.image lists are flattened), with caption and url."""
    return [img for element in at.get("image") for img in element.proto.imgs]


def wait_for_job(runs_dir: Path, timeout: float = 600) -> dict:
    """The newest job's status once it has ended (queued, started or not)."""
    job = JobManager(runs_dir).jobs()[-1]
    deadline = time.time() + timeout
    while job.active and time.time() < deadline:
        time.sleep(0.5)
    return job.status()


def as_drawn(markdown: str) -> str:
    """The text Markdown from ui.text.literal draws: its escapes and word
    joiners undone (pages show the package's messages and file names
    through it)."""
    from ui.text import JOINER

    return re.sub(r"\\(.)", r"\1", markdown).replace(JOINER, "")


def drawn(element) -> str:
    """The text a message element draws (as_drawn of its source)."""
    return as_drawn(element.value)


@contextlib.contextmanager
def read_only(folder: Path):
    """The folder made read-only for this process, as the OS enforces it:
    a read-only bind mount for root (whom permission bits do not stop),
    permission bits for anyone else."""
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    if root:
        subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
    else:
        folder.chmod(0o555)
    try:
        with pytest.raises(OSError):  # the fixture itself is checked: the folder really refuses writes
            (folder / "probe").write_text("x")
        yield folder
    finally:
        if root:
            subprocess.run(["umount", str(folder)], check=True)
        else:
            folder.chmod(0o755)


# A model and images for the pages' work, as the package's functions take them.
NORMALIZE = Normalizer((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))


def tiny_loaded_model(name="resnet-8") -> LoadedModel:
    """A freshly built model (seed 0) as the pages hold a trained one."""
    torch.manual_seed(0)
    model = build_model(name).eval()
    return LoadedModel(name, model, NORMALIZE, [str(i) for i in range(10)], torch.device("cpu"), 3)


def random_pixels(n=2, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)


def png_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()

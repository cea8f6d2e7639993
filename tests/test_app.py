import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from streamlit.testing.v1 import AppTest

from resexplorer.launch import start_race
from resexplorer.models import ModelConfig
from resexplorer.synthetic import make_synthetic
from resexplorer.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def test_home_renders_with_no_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("RESEXPLORER_RUNS", str(tmp_path / "none"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "ResNet Explorer"
    assert any("No runs yet" in m.value for m in at.markdown)


def test_home_lists_runs(tmp_path, monkeypatch):
    data = make_synthetic(n_train=40, n_test=10, num_classes=2)
    race, _ = start_race([ModelConfig("resnet", 8)], data, TrainConfig(epochs=1, batch_size=20, device="cpu"), tmp_path)
    race.run()
    monkeypatch.setenv("RESEXPLORER_RUNS", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["model"]) == ["resnet-8"] and list(table["status"]) == ["done"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_streamlit_run_app_starts_and_serves():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "RESEXPLORER_RUNS": str(ROOT / "runs")},
    )
    try:
        deadline, body = time.time() + 60, ""
        while time.time() < deadline and body != "ok":
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read().decode()
            except OSError:
                time.sleep(0.5)
        assert body == "ok"
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
        assert "<html" in page.lower()
    finally:
        proc.terminate()
        proc.wait(20)

"""The sidebar's device line (ui/device_line.py): found in a background
thread, so the pages that read runs never wait for torch."""

import importlib.machinery
import sys
import time
import types

from streamlit.testing.v1 import AppTest

from resexplorer import system
from resexplorer.system import device_summary


def _line_script():
    import streamlit as st

    from ui.device_line import device_line

    with st.sidebar:
        device_line()


def _probe_done(timeout_s: float = 60) -> None:
    from ui.device_line import _probe

    deadline = time.time() + timeout_s
    while _probe().summary is None and time.time() < deadline:
        time.sleep(0.05)


def test_the_line_says_finding_until_the_probe_answers_then_names_the_device(monkeypatch):
    import ui.device_line
    from ui.device_line import _probe

    _probe.clear()
    monkeypatch.setattr(ui.device_line, "torch_loaded", lambda: False)  # Home and Runs: no torch of their own
    answer = []  # the probe waits for the test's word
    real = device_summary

    def slow():
        while not answer:
            time.sleep(0.01)
        return real()

    monkeypatch.setattr(system, "device_summary", slow)
    at = AppTest.from_function(_line_script).run()
    assert [m.value for m in at.sidebar.markdown] == ["**Device:** finding…"]
    answer.append(True)
    _probe_done()
    at.run()
    kind, description = real()
    assert [m.value for m in at.sidebar.markdown] == [f"**Device:** {kind}  \n<small>{description}</small>"]
    assert not at.exception


def test_a_torch_that_fails_to_load_is_said_in_the_line_not_raised(monkeypatch):
    from ui.device_line import _probe

    _probe.clear()

    def broken():
        raise OSError("libtorch_cpu.so: cannot open shared object file")

    monkeypatch.setattr(system, "device_summary", broken)
    _probe()
    _probe_done()
    at = AppTest.from_function(_line_script).run()
    assert not at.exception
    assert at.sidebar.markdown[0].value.startswith("**Device:** unknown")
    assert "cannot open shared object file" in at.sidebar.markdown[0].value
    _probe.clear()


def test_a_page_that_loaded_torch_gets_the_line_on_its_first_run_without_a_timer(monkeypatch):
    """Train and Playground import torch before their sidebar: they wait the
    moment the answer takes, so no timed fragment reruns the page under
    their live charts."""
    from ui.device_line import _probe, torch_loaded

    _probe.clear()
    assert torch_loaded()  # the tests' process has imported torch
    real = device_summary

    def slow():
        time.sleep(0.5)
        return real()

    monkeypatch.setattr(system, "device_summary", slow)
    at = AppTest.from_function(_line_script).run()
    kind, description = real()
    assert [m.value for m in at.sidebar.markdown] == [f"**Device:** {kind}  \n<small>{description}</small>"]
    assert not at.exception
    _probe.clear()


def test_torch_half_imported_by_the_probe_does_not_count_as_loaded(monkeypatch):
    from ui.device_line import torch_loaded

    fake = types.ModuleType("torch")
    fake.__spec__ = importlib.machinery.ModuleSpec("torch", None)
    fake.__spec__._initializing = True  # what importlib marks while the module's code runs
    monkeypatch.setitem(sys.modules, "torch", fake)
    assert not torch_loaded()
    fake.__spec__._initializing = False
    assert torch_loaded()
    monkeypatch.delitem(sys.modules, "torch")
    assert not torch_loaded()

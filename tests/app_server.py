"""`streamlit run app.py` on a free local port, as the browser tests, the
server test and the benchmarks start it (one copy of how, here), and a
page run over Streamlit's own websocket, as a browser asks for it."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.NewSession_pb2 import NewSession
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def streamlit_run(script: str, port: int) -> list[str]:
    """`streamlit run SCRIPT` on this port, local only, headless."""
    return [sys.executable, "-m", "streamlit", "run", script, *server_flags(port)]


def server_flags(port: int) -> list[str]:
    """Streamlit's flags for a test's server: this port, this machine only,
    no browser opened, no statistics sent."""
    return [
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
    ]


def serve(
    env: dict | None = None,
    script: str = "app.py",
    timeout_s: float = 60,
    command: Callable[[int], list[str]] | None = None,
    cwd: Path = ROOT,
) -> tuple[subprocess.Popen, str]:
    """The app freshly started with this environment; returns the process
    and its address once the server answers its health check. Raises
    RuntimeError (the process stopped) if it does not answer in time.
    `command`: the command line that serves on a given port (default:
    streamlit_run of `script`), started in `cwd`."""
    port = free_port()
    proc = subprocess.Popen(
        (command or functools.partial(streamlit_run, script))(port),
        cwd=cwd,
        env=dict(os.environ) if env is None else env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    proc.wait(20)
    raise RuntimeError(f"the app did not answer at {url} within {timeout_s:.0f} s")


@dataclass
class PageRun:
    """What one run of a page sent a browser: the session's settings (its
    config.toml's client settings among them), the page's elements by kind,
    and any error it showed."""

    session: NewSession
    drawn: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def run_page(url: str, page: str = "", timeout_s: float = 120) -> PageRun:
    """Run a page (its URL path; "" for Home) in a new session over the
    websocket a browser speaks, until the script finishes."""
    message = BackMsg()
    message.rerun_script.query_string = ""
    message.rerun_script.page_name = page
    with connect(url.replace("http", "ws", 1) + "/_stcore/stream", subprotocols=["streamlit"]) as ws:
        ws.send(message.SerializeToString())
        seen = None
        deadline = time.time() + timeout_s
        while True:
            forward = ForwardMsg.FromString(ws.recv(timeout=max(0.1, deadline - time.time())))
            kind = forward.WhichOneof("type")
            if kind == "new_session":
                seen = PageRun(forward.new_session)
            elif kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                element = forward.delta.new_element
                seen.drawn.append(element.WhichOneof("type"))
                if element.WhichOneof("type") == "exception":
                    seen.errors.append(element.exception.message)
                elif element.WhichOneof("type") == "alert" and element.alert.format == Alert.ERROR:
                    seen.errors.append(element.alert.body)
            elif kind == "script_finished" and forward.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                return seen

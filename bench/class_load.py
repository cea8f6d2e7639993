"""A class on one server: the load it holds.

`streamlit run app.py` on a warm server (every page visited once before the
clock runs), the pages showing the shipped reference runs, a temporary
runs folder and a folder of generated images. Students come in two kinds:

- browser: Playwright over headless Chromium, one browser context per
  student, clicking the sidebar from page to page, as a class does. Every
  simulated browser runs on this machine too, so its figures are the
  server's and the browsers' together; the CPU seconds of each are printed
  beside them, and a bare Streamlit page with one plotly chart
  (bench/bare_plotly_page.py), opened by as many browsers at once, is the
  baseline measured in the same run.
- wire: Streamlit's own websocket protocol, as the browser speaks it,
  without rendering anything: what the server alone holds.

Scenarios:

1. browse: N students open Home at the same moment, then every page in
   turn (Playground aside: it trains for its visitor by design;
   bench/playground_speed.py measures it). Per page: median and 95th
   percentile of the time to the first chart (the Runs page: its table)
   and to the end of the script run, error boxes and tracebacks seen,
   visits that never finished, the server's peak memory. Goal: at N = 10
   every page finishes, no error, and each page's 95th percentile to the
   first chart at most 4x its N = 1 median measured in the same run.
2. mixed (browsers): while 10 students browse, 5 others press Start on the
   Train page within one second (each a resnet-8 on the generated images): exactly one trains and four are queued,
   in the order they pressed, each page saying its place; all five finish
   one after another, every run intact. Goal: the browsing students' 95th
   percentile at most 2x the N = 10 figure of scenario 1.
3. sessions (wire): 30 sessions opened (every page) and closed, one after
   another; the server's memory, once Streamlit has dropped the closed
   sessions (server.disconnectedSessionTTL, 120 s by default), against
   where it started. Goal: within 10%.

Run:  python bench/class_load.py  [--clients wire browser] [--students 1 5 10 20]
      [--scenarios browse mixed sessions] [--chromium PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import websockets
from playwright.async_api import async_playwright
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # app_server: how the tests start the app

from app_server import serve  # noqa: E402

from resexplorer.data.synthetic import make_synthetic, write_image_folder  # noqa: E402
from resexplorer.runs.store import RunStore  # noqa: E402
from resexplorer.training.jobs import FINAL_STATES, JobManager  # noqa: E402
from ui.sidebar import PAGES, tab_title  # noqa: E402

FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]
CURRENT = "[data-testid=stElementContainer][data-stale=false]"  # drawn by this page's run, not left from the last
CHART = ", ".join(
    f"{CURRENT} [data-testid=stPlotlyChart] .main-svg {layer}"
    for layer in (".scatterlayer .trace", ".heatmaplayer image", ".barlayer .trace")
)
TABLE = f"{CURRENT} [data-testid=stDataFrame]"
BROWSED = [page for page in PAGES if page.title != "Playground"]
RUNNING = "[data-testid=stStatusWidgetRunningIcon], [data-testid=stStatusWidgetRunningManIcon]"
ERRORS = f"{CURRENT} [data-testid=stException], {CURRENT} [data-testid=stAlertContentError]"
VISIT_TIMEOUT_S = 300.0
QUIET_S = 0.5  # a browser's script run has ended once no run is shown for this long
BARE = "Bare page"  # the baseline's row


@dataclass
class Visit:
    page: str
    chart_s: float | None = None  # None: never drawn within VISIT_TIMEOUT_S
    done_s: float | None = None
    errors: list[str] = field(default_factory=list)


def _drawn_by(title: str) -> str:
    return TABLE if title == "Runs" else CHART


def _url_path(script: str) -> str:
    return "" if script == "app.py" else Path(script).stem


class Machine:
    """The server's resident memory (its process and children), sampled in
    a thread for the peak; and CPU seconds of the server and the browser."""

    def __init__(self, pid: int):
        self.server = psutil.Process(pid)
        self.peak = 0
        self._browsers: dict[int, float] = {}  # pid -> CPU seconds last seen: a closed tab's process is gone
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def memory(self) -> int:
        return sum(_rss(p) for p in [self.server, *self.server.children(recursive=True)])

    def cpu(self) -> tuple[float, float]:
        """(server, browsers) CPU seconds so far; the browsers' counts the
        processes of tabs closed since, as last sampled."""
        self._sample_browsers()
        return _cpu([self.server, *self.server.children(recursive=True)]), sum(self._browsers.values())

    def _sample_browsers(self) -> None:
        for process in psutil.process_iter(["name"]):
            if "chrom" in (process.info["name"] or ""):
                self._browsers[process.pid] = _cpu([process]) or self._browsers.get(process.pid, 0.0)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.memory())
            self._sample_browsers()
            time.sleep(0.25)

    def reset(self) -> None:
        self.peak = self.memory()

    def stop(self) -> None:
        self._stop.set()


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.Error:
        return 0


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


# --- a student in a browser --------------------------------------------------------


async def _open(page, url: str, title: str, first: bool) -> None:
    """Home by its address; every other page by the sidebar, as a student
    clicks (one Streamlit session per student). A page switch asked during
    another rerun can be folded into it, so a click that opens nothing in
    15 s is made again, as a person would."""
    if first:
        await page.goto(url, wait_until="commit")
        return
    link = page.locator("[data-testid=stSidebar]").get_by_role("link", name=title).first
    for attempt in range(3):
        await link.click(timeout=VISIT_TIMEOUT_S * 1000)
        try:
            await page.wait_for_function(f"() => document.title === {tab_title(title)!r}", timeout=15_000)
            return
        except Exception:
            if attempt == 2:
                raise


async def browser_visit(page, url: str, title: str, drawn: str, first: bool, titled: bool = True) -> Visit:
    """Open one page; the seconds to its first chart (or table) and to the
    end of its script run, and what error it showed."""
    seen = Visit(title)
    start = time.perf_counter()
    try:
        await _open(page, url, title, first)
        if titled:
            await page.wait_for_function(
                f"() => document.title === {tab_title(title)!r}", timeout=VISIT_TIMEOUT_S * 1000
            )
        await page.locator(drawn).first.wait_for(timeout=VISIT_TIMEOUT_S * 1000)
        seen.chart_s = time.perf_counter() - start
        quiet_since = None
        while time.perf_counter() - start < VISIT_TIMEOUT_S:
            if await page.locator(RUNNING).count():
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.perf_counter()
            elif time.perf_counter() - quiet_since >= QUIET_S:
                seen.done_s = quiet_since - start
                break
            await asyncio.sleep(0.1)
    except Exception as err:  # a visit that never finished: counted, and the student goes on
        seen.errors.append(f"unfinished: {type(err).__name__}")
    for text in await page.locator(ERRORS).all_inner_texts():
        seen.errors.append(text.strip().splitlines()[0][:200] if text.strip() else "(empty error box)")
    return seen


async def browser_student(browser, url: str, bell: asyncio.Event | None = None) -> list[Visit]:
    context = await browser.new_context(viewport={"width": 1400, "height": 1200})
    page = await context.new_page()
    if bell is not None:
        await bell.wait()
    visits = []
    for i, p in enumerate(BROWSED):
        visits.append(await browser_visit(page, url, p.title, _drawn_by(p.title), first=i == 0))
    await context.close()
    return visits


async def browser_bare(browser, url: str, bell: asyncio.Event) -> list[Visit]:
    """The baseline: a bare Streamlit page with one plotly chart, opened as
    Home is (a new browser context, so its scripts download and compile)."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1200})
    page = await context.new_page()
    await bell.wait()
    visit = await browser_visit(page, url, BARE, CHART.replace(CURRENT + " ", ""), first=True, titled=False)
    await context.close()
    return [visit]


# --- a student on the wire -----------------------------------------------------------


class WireStudent:
    """One session spoken to as the browser speaks to it (BackMsg up,
    ForwardMsg down), with nothing drawn: the server's share alone."""

    def __init__(self, url: str):
        self.ws_url = url.replace("http", "ws", 1) + "/_stcore/stream"
        self.ws = None
        self.pages: dict[str, str] = {}  # url path -> page script hash, from the server's navigation message

    async def __aenter__(self) -> WireStudent:
        self.ws = await websockets.connect(self.ws_url, subprotocols=["streamlit"], max_size=None)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()

    async def visit(self, title: str, script: str, widgets: list | None = None) -> tuple[Visit, list]:
        """Run one page (by its script's hash once known); returns the visit
        and the elements it drew (new_element protos)."""
        message = BackMsg()
        path = _url_path(script)
        message.rerun_script.query_string = ""
        message.rerun_script.page_script_hash = self.pages.get(path, "")
        message.rerun_script.page_name = path
        for widget in widgets or []:
            message.rerun_script.widget_states.widgets.append(widget)
        seen, drawn = Visit(title), []
        start = time.perf_counter()
        await self.ws.send(message.SerializeToString())

        async def until_finished() -> None:
            while True:
                forward = ForwardMsg.FromString(await self.ws.recv())
                kind = forward.WhichOneof("type")
                if kind == "navigation":
                    self.pages = {p.url_pathname: p.page_script_hash for p in forward.navigation.app_pages}
                elif kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                    element = forward.delta.new_element
                    drawn.append(element)
                    which = element.WhichOneof("type")
                    if seen.chart_s is None and which in ("plotly_chart", "dataframe"):
                        seen.chart_s = time.perf_counter() - start
                    if which == "exception":
                        seen.errors.append(f"exception: {element.exception.message[:200]}")
                    elif which == "alert" and element.alert.format == Alert.ERROR:
                        seen.errors.append(element.alert.body[:200])
                elif kind == "script_finished":
                    seen.done_s = time.perf_counter() - start
                    return

        try:
            await asyncio.wait_for(until_finished(), VISIT_TIMEOUT_S)
        except asyncio.TimeoutError:
            seen.errors.append("unfinished: TimeoutError")
        return seen, drawn


async def wire_student(url: str, bell: asyncio.Event | None = None) -> list[Visit]:
    async with WireStudent(url) as me:
        if bell is not None:
            await bell.wait()
        return [(await me.visit(p.title, p.script))[0] for p in BROWSED]


# --- the figures ---------------------------------------------------------------------


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def summarise(visits: list[Visit]) -> dict[str, dict]:
    """Per page: median and 95th percentile to the chart and to the end,
    errors and unfinished visits."""
    table = {}
    for title in dict.fromkeys(v.page for v in visits):
        mine = [v for v in visits if v.page == title]
        charts = [v.chart_s for v in mine if v.chart_s is not None]
        dones = [v.done_s for v in mine if v.done_s is not None]
        table[title] = {
            "visits": len(mine),
            "chart_median_s": round(statistics.median(charts), 2) if charts else None,
            "chart_p95_s": round(_p95(charts), 2) if charts else None,
            "done_median_s": round(statistics.median(dones), 2) if dones else None,
            "done_p95_s": round(_p95(dones), 2) if dones else None,
            "unfinished": sum(v.done_s is None for v in mine),
            "errors": sorted({e for v in mine for e in v.errors}),
        }
    return table


def print_table(label: str, table: dict[str, dict]) -> None:
    print(f"\n{label}")
    print(f"  {'page':<24} {'chart median':>12} {'p95':>7} {'end median':>11} {'p95':>7}  unfinished  errors")
    for title, row in table.items():

        def fmt(value):
            return f"{value:.2f}" if value is not None else "-"

        print(
            f"  {title:<24} {fmt(row['chart_median_s']):>12} {fmt(row['chart_p95_s']):>7} "
            f"{fmt(row['done_median_s']):>11} {fmt(row['done_p95_s']):>7}  {row['unfinished']:>10}  "
            f"{'; '.join(row['errors']) or 'none'}"
        )


def ratios(loaded: dict[str, dict], alone: dict[str, dict], key: str, base_key: str) -> dict[str, float]:
    return {
        title: round(loaded[title][key] / alone[title][base_key], 2)
        for title in loaded
        if title in alone and loaded[title][key] and alone[title][base_key]
    }


# --- scenario 1 ----------------------------------------------------------------------


async def browse(client: str, url: str, n: int, browser=None, bare_url: str | None = None) -> list[Visit]:
    """N students at the same moment (and, for browsers, N more on the bare
    page right after, as the baseline)."""
    bell = asyncio.Event()
    if client == "wire":
        tasks = [asyncio.create_task(wire_student(url, bell)) for _ in range(n)]
    else:
        tasks = [asyncio.create_task(browser_student(browser, url, bell)) for _ in range(n)]
    await asyncio.sleep(2.0)  # every student connected before the bell
    bell.set()
    visits = [v for mine in await asyncio.gather(*tasks) for v in mine]
    if client == "browser" and bare_url:
        bell = asyncio.Event()
        tasks = [asyncio.create_task(browser_bare(browser, bare_url, bell)) for _ in range(n)]
        await asyncio.sleep(2.0)
        bell.set()
        visits += [v for mine in await asyncio.gather(*tasks) for v in mine]
    return visits


async def browse_all(client: str, url: str, machine: Machine, args, browser=None, bare_url=None) -> dict:
    results, tables = {}, {}
    for n in args.students:
        machine.reset()
        cpu_before = machine.cpu()
        visits = []
        for _ in range(args.single_repeats if n == 1 else 1):
            visits += await browse(client, url, n, browser, bare_url)
        server_cpu, browser_cpu = (after - before for after, before in zip(machine.cpu(), cpu_before))
        tables[n] = table = summarise(visits)
        share = f"CPU seconds: server {server_cpu:.1f}" + (
            f", browsers {browser_cpu:.1f}" if client == "browser" else ""
        )
        print_table(
            f"browse, {client}, {n} student(s) at once, seconds  (server peak memory {machine.peak / 2**20:,.0f} MB; "
            f"{share})",
            table,
        )
        results[n] = {
            "pages": table,
            "peak_mb": round(machine.peak / 2**20),
            "cpu_s": {"server": round(server_cpu, 1), "browsers": round(browser_cpu, 1)},
        }
    for n in args.students:
        if n != 1 and 1 in tables:
            r = ratios(tables[n], tables[1], "chart_p95_s", "chart_median_s")
            print(f"\n{client}: {n} students' 95th percentile to the first chart / one student's median: {r}")
            results[f"ratio_{n}_to_1"] = r
    return results


# --- scenario 2 ----------------------------------------------------------------------

# What each starter trains, by the Train page's own link: one small model (5 epochs
# on the CPU over the 300 generated images), so the queue turns over in minutes.
STARTED_JOB = "preset=Custom&models=resnet-8"
PLACE = re.compile(r"(\d+)(?:st|nd|rd|th) in line")


async def starter(browser, url: str, runs_dir: Path, ready: asyncio.Event, bell: asyncio.Event, pressed: list) -> str:
    """A student who opens Train and presses Start at the bell; returns the
    order it pressed in and what its page then says of its job: its place
    in the queue, or (its job, named in the page's URL, training) that it
    trains."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1200})
    page = await context.new_page()
    await browser_visit(page, f"{url}/train?{STARTED_JOB}", "Train & compare", CHART, first=True)
    start = page.get_by_role("button", name="Start", exact=True)
    await start.wait_for(timeout=VISIT_TIMEOUT_S * 1000)
    ready.set()
    await bell.wait()
    await start.click()
    order = len(pressed)
    pressed.append(time.perf_counter())
    said = "nothing said"
    deadline = time.perf_counter() + 180
    while time.perf_counter() < deadline:
        body = await page.locator("[data-testid=stMain]").inner_text()
        place = PLACE.search(body)
        if place:
            said = f"queued, {place.group(0)}"
            break
        if "Your job is next" in body:
            said = "queued, next"
            break
        job_id = re.search(r"[?&]job=([\w-]+)", page.url)
        job = JobManager(runs_dir).job(job_id.group(1)) if job_id else None
        if job is not None and job.info().get("pid"):
            said = "training"
            break
        await asyncio.sleep(0.5)
    await context.close()
    return f"{order + 1}: {said}"


async def mixed(browser, url: str, runs_dir: Path) -> tuple[list[Visit], list[str], dict]:
    ready = [asyncio.Event() for _ in range(5)]
    bell, pressed = asyncio.Event(), []
    starters = [asyncio.create_task(starter(browser, url, runs_dir, r, bell, pressed)) for r in ready]
    for r in ready:
        await r.wait()
    browsing = asyncio.create_task(browse("browser", url, 10, browser))
    await asyncio.sleep(1.0)
    bell.set()
    rang = time.time()
    said = sorted(await asyncio.gather(*starters))
    visits = await browsing
    manager = JobManager(runs_dir)
    deadline = time.time() + 3600
    while time.time() < deadline:
        jobs = manager.jobs()
        if len(jobs) >= 5 and all(job.status()["state"] in FINAL_STATES for job in jobs):
            break
        await asyncio.sleep(2.0)
    jobs = sorted(manager.jobs(), key=lambda job: job.info().get("queued") or 0)  # the order they joined the queue
    started = [job.info().get("started") or float("inf") for job in jobs]
    ended = [job.progress().get("updated") or float("inf") for job in jobs]
    runs = RunStore(runs_dir).list()
    outcome = {
        "presses_within_s": round(max(pressed) - min(pressed), 2) if pressed else None,
        "job_states": [str(job.status()["state"]) for job in jobs],
        "started_in_queue_order": started == sorted(started),
        "one_at_a_time": all(start >= end - 1 for start, end in zip(started[1:], ended)),
        "runs": len(runs),
        "runs_done": sum(r.status().get("status") == "done" for r in runs),
        "minutes_from_the_bell_to_all_done": round((time.time() - rang) / 60, 1),
    }
    return visits, said, outcome


# --- scenario 3 ----------------------------------------------------------------------


async def sessions(url: str, machine: Machine, count: int, ttl_s: float) -> dict:
    await wire_student(url)
    await asyncio.sleep(ttl_s)
    before = machine.memory()
    for _ in range(count):
        await wire_student(url)
    right_after = machine.memory()
    await asyncio.sleep(ttl_s)
    after = machine.memory()
    return {
        "sessions": count,
        "before_mb": round(before / 2**20),
        "right_after_mb": round(right_after / 2**20),
        "after_ttl_mb": round(after / 2**20),
        "change": round(after / before - 1, 3),
    }


# --- the run ---------------------------------------------------------------------------


def _start(env: dict, script: str = "app.py"):
    proc, url = serve(env, script)
    return proc, url, Machine(proc.pid)


def _stop(proc, machine: Machine) -> None:
    machine.stop()
    proc.terminate()
    proc.wait(30)


async def main_async(args) -> dict:
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_image_folder(make_synthetic(n_train=300, n_test=100, num_classes=10), Path(tmp) / "images")

        def env(runs: str) -> dict:
            return {**os.environ, "RESEXPLORER_DATA": str(folder), "RESEXPLORER_RUNS": str(Path(tmp) / runs)}

        if "browse" in args.scenarios and "wire" in args.clients:
            proc, url, machine = _start(env("runs-wire"))
            try:
                await wire_student(url)  # warm
                results["browse_wire"] = await browse_all("wire", url, machine, args)
            finally:
                _stop(proc, machine)
        if "browser" in args.clients and {"browse", "mixed"} & set(args.scenarios):
            runs_dir = Path(tmp) / "runs-browser"
            proc, url, machine = _start(env("runs-browser"))
            bare, bare_url = serve(env("runs-bare"), "bench/bare_plotly_page.py")
            try:
                async with async_playwright() as p:
                    browser = await p.chromium.launch(executable_path=args.chromium, headless=True, args=FLAGS)
                    await browser_student(browser, url)  # warm
                    if "browse" in args.scenarios:
                        results["browse_browser"] = await browse_all("browser", url, machine, args, browser, bare_url)
                    if "mixed" in args.scenarios:
                        machine.reset()
                        visits, said, outcome = await mixed(browser, url, runs_dir)
                        table = summarise(visits)
                        print_table(
                            "mixed: 10 browse while 5 press Start, seconds "
                            f"(server peak {machine.peak / 2**20:,.0f} MB)",
                            table,
                        )
                        print(f"  each starter's page, in the order they pressed: {said}")
                        print(f"  jobs: {json.dumps(outcome)}")
                        results["mixed"] = {"pages": table, "said": said, "jobs": outcome}
                        alone = results.get("browse_browser", {}).get(10, {}).get("pages")
                        if alone:
                            r = ratios(table, alone, "chart_p95_s", "chart_p95_s")
                            print(f"  browsing 95th percentile to the first chart, mixed / browsing alone: {r}")
                            results["mixed"]["ratio_to_browsing_alone"] = r
                    await browser.close()
            finally:
                bare.terminate()
                bare.wait(30)
                _stop(proc, machine)
        if "sessions" in args.scenarios:
            proc, url, machine = _start(env("runs-sessions"))
            try:
                outcome = await sessions(url, machine, args.sessions, args.session_ttl + 10)
            finally:
                _stop(proc, machine)
            print(f"\nsessions opened and closed: {json.dumps(outcome)}")
            results["sessions"] = outcome
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM_PATH") or shutil.which("chromium"))
    parser.add_argument("--clients", nargs="+", choices=["wire", "browser"], default=["wire", "browser"])
    parser.add_argument("--students", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--single-repeats", type=int, default=3, help="rounds of the one-student figure")
    parser.add_argument(
        "--scenarios", nargs="+", choices=["browse", "mixed", "sessions"], default=["browse", "mixed", "sessions"]
    )
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--session-ttl", type=float, default=120.0, help="the server's disconnectedSessionTTL")
    args = parser.parse_args()
    print("\n" + json.dumps(asyncio.run(main_async(args)), default=str))


if __name__ == "__main__":
    main()

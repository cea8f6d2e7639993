"""The project as an installed package: pyproject.toml's dependencies are
requirements.txt's, its `resexplorer` command is `python -m resexplorer`'s,
the wheel carries the app and serves it from any working folder, and no
source needs a Python newer than the one pyproject.toml claims."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest
from app_server import run_page, serve, server_flags
from helpers import ROOT
from packaging.requirements import Requirement
from setuptools.config.pyprojecttoml import read_configuration

from resexplorer.app_files import APP_ROOT, APP_SCRIPT, INSTALLED_FOLDER
from resexplorer.cli import app_command, main

PYPROJECT = read_configuration(ROOT / "pyproject.toml", expand=True)


def _requirements() -> list[str]:
    """requirements.txt's requirements, each as packaging writes it."""
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [str(Requirement(line)) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_the_dependencies_are_requirements_txt():
    """One list: pyproject.toml reads requirements.txt, whose every line
    setuptools takes whole (an inline comment would break the build)."""
    assert "dependencies" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["dependencies"]["file"] == ["requirements.txt"]
    declared = [str(Requirement(line)) for line in PYPROJECT["project"]["dependencies"]]
    assert declared == _requirements()


def test_every_folder_of_the_package_is_packaged():
    """pyproject.toml lists the packages (the app's folder is the
    repository's root, which a search would take whole): a new one must be
    added there, or the wheel would lack it."""
    folders = {".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "resexplorer").rglob("__init__.py")}
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert listed == folders | {f"resexplorer.{INSTALLED_FOLDER}"}


def test_the_resexplorer_command_is_python_m_resexplorer():
    """The console script calls the function `python -m resexplorer` calls
    (__main__.py: `from .cli import main`, then sys.exit(main()))."""
    module, _, name = PYPROJECT["project"]["scripts"]["resexplorer"].partition(":")
    target = getattr(importlib.import_module(module), name)
    assert target is main and callable(target)
    tree = ast.parse((ROOT / "resexplorer" / "__main__.py").read_text(encoding="utf-8"))
    imported = {(n.level, n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert (1, "cli", name) in imported and f"{name}()" in ast.unparse(tree)


def test_the_app_command_serves_the_apps_script_with_streamlits_flags(monkeypatch):
    """`resexplorer app --server.port 8502` is `streamlit run <app.py>
    --server.port 8502`, the app.py beside its .streamlit/config.toml
    (streamlit reads that one over the working folder's)."""
    assert app_command.streamlit_arguments(["--server.port", "8502"]) == [
        "run",
        str(APP_SCRIPT),
        "--server.port",
        "8502",
    ]
    assert APP_SCRIPT.is_file() and (APP_ROOT / ".streamlit" / "config.toml").is_file()
    served = []
    monkeypatch.setattr(app_command, "serve_app", lambda extra: served.append(extra) or 0)
    assert main(["app", "--server.port", "8502", "--server.headless", "true"]) == 0
    assert served == [["--server.port", "8502", "--server.headless", "true"]]


def test_only_the_app_command_passes_unknown_flags_on(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["runs", "--server.port", "8502"])
    assert stop.value.code == 2
    assert "unrecognized arguments: --server.port 8502" in capsys.readouterr().err


def test_no_source_needs_a_python_newer_than_the_one_claimed():
    """vermin reads every source for what each line needs (syntax, modules,
    functions, arguments) and reports a line that needs more than the
    oldest Python pyproject.toml admits."""
    oldest = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert re.fullmatch(r"3\.\d+", oldest), "requires-python is read as >=3.N"
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent))
    folders = ["resexplorer", "pages", "ui", "app.py", "tests", "bench"]
    out = subprocess.run(
        [vermin, f"-t={oldest}-", "--violations", "--no-tips", *folders], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, f"needs more than Python {oldest}:\n{out.stdout}{out.stderr}"


# --- the wheel, installed -------------------------------------------------------------------------

# Left behind when the project is copied to be built: not the project's, or
# made by using it (the build writes build/ and *.egg-info beside its sources,
# which is why it builds a copy, not the checkout).
NOT_SOURCES = {".git", ".venv", "runs", "build", ".cache", ".pytest_cache", ".ruff_cache", "tests/artifacts"}


def _not_sources(folder: str, names: list[str]) -> list[str]:
    here = Path(folder).relative_to(ROOT)
    return [
        name
        for name in names
        if (here / name).as_posix() in NOT_SOURCES or name == "__pycache__" or name.endswith(".egg-info")
    ]


def _run(command: list, **kwargs) -> subprocess.CompletedProcess:
    """Run a command to its end; its output is the failure's message."""
    out = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert out.returncode == 0, f"{' '.join(map(str, command))}\n{out.stdout}{out.stderr}"
    return out


@dataclass
class Installed:
    wheel: Path
    site: Path  # where it was installed: a folder of its own, as site-packages
    elsewhere: Path  # a working folder that is neither the clone nor site

    def env(self) -> dict:
        """The environment a user of the installed package has: it on the
        path, the clone nowhere."""
        return {**os.environ, "PYTHONPATH": str(self.site)}

    def python(self, *args: str) -> subprocess.CompletedProcess:
        return _run([sys.executable, *args], cwd=self.elsewhere, env=self.env())


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    """The wheel `pip wheel .` builds from a copy of the project, installed
    into an empty folder by pip, with no network."""
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=_not_sources)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "wheel", source, "--no-deps", "--no-build-isolation", "-w", tmp / "wheel"])
    (wheel,) = (tmp / "wheel").glob("resexplorer-*.whl")
    site = tmp / "site"
    _run([*pip, "install", "--no-deps", "--target", site, wheel])
    elsewhere = tmp / "elsewhere"
    # The working folder's own Streamlit settings, which the app's must override.
    (elsewhere / ".streamlit").mkdir(parents=True)
    (elsewhere / ".streamlit" / "config.toml").write_text("[client]\nshowSidebarNavigation = true\n")
    return Installed(wheel, site, elsewhere)


def _dist_info(site: Path) -> Path:
    (found,) = site.glob("resexplorer-*.dist-info")
    return found


@pytest.mark.slow
def test_the_wheel_declares_requirements_txt_and_the_command(installed):
    metadata = Parser().parsestr((_dist_info(installed.site) / "METADATA").read_text(encoding="utf-8"))
    assert [str(Requirement(r)) for r in metadata.get_all("Requires-Dist")] == _requirements()
    assert metadata["Requires-Python"] == PYPROJECT["project"]["requires-python"]
    entry_points = (_dist_info(installed.site) / "entry_points.txt").read_text(encoding="utf-8")
    assert "resexplorer = resexplorer.cli:main" in entry_points.splitlines()


@pytest.mark.slow
def test_the_installed_package_finds_the_shipped_runs_and_samples(installed):
    """Imported from site, the package reads the app's files there: the
    reference runs and the sample images, every one the clone has."""
    code = (
        "import json, resexplorer\n"
        "from resexplorer.services.reference import REFERENCE_RUNS_DIR, reference_runs\n"
        "from resexplorer.data.samples import cifar_sample_paths, photo_paths\n"
        "print(json.dumps({'package': resexplorer.__file__, 'runs_dir': str(REFERENCE_RUNS_DIR),\n"
        "    'runs': sorted(r.run_id for r in reference_runs()),\n"
        "    'samples': sorted(p.name for p in cifar_sample_paths() + photo_paths())}))\n"
    )
    out = installed.python("-c", code)
    found = json.loads(out.stdout)
    app = installed.site / "resexplorer" / INSTALLED_FOLDER
    assert Path(found["package"]).is_relative_to(installed.site)
    assert Path(found["runs_dir"]) == app / "assets" / "runs"
    shipped = sorted(p.name for p in (ROOT / "assets" / "runs").iterdir() if (p / "config.json").is_file())
    assert found["runs"] == shipped
    samples = ROOT / "assets" / "samples"
    assert found["samples"] == sorted(p.name for p in [*samples.glob("cifar10/*.jpg"), *samples.glob("photos/*.*")])
    listing = installed.python("-m", "resexplorer", "runs", "--runs", found["runs_dir"]).stdout
    assert all(run_id in listing for run_id in shipped), listing


@pytest.mark.slow
def test_resexplorer_app_serves_the_installed_app_from_any_folder(installed):
    """`python -m resexplorer app`, from a working folder with its own
    Streamlit settings: the server answers, runs the installed app.py
    under the app's settings, Home draws the shipped runs without an
    error, and nothing is written into site."""
    before = {p for p in installed.site.rglob("*") if "__pycache__" not in p.parts}
    proc, url = serve(
        installed.env(),
        command=lambda port: [sys.executable, "-m", "resexplorer", "app", *server_flags(port)],
        cwd=installed.elsewhere,
        timeout_s=60,
    )
    try:
        home = run_page(url)
    finally:
        proc.terminate()
        proc.wait(20)
    assert Path(home.session.main_script_path) == installed.site / "resexplorer" / INSTALLED_FOLDER / "app.py"
    assert home.session.config.hide_sidebar_nav  # the app's client.showSidebarNavigation = false won
    assert home.errors == []
    assert "plotly_chart" in home.drawn  # Fig. 6, from the shipped runs
    assert {p for p in installed.site.rglob("*") if "__pycache__" not in p.parts} == before

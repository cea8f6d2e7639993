"""The package's layers (docs/architecture.md): a module imports only its own
layer and the layers before it in LAYERS, and no import goes round in a
cycle, lazy imports included. (That the figures load no torch is tested
beside the figures.)"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

PACKAGE = ROOT / "resexplorer"
# Lowest first: each may import the ones before it, never the ones after.
LAYERS = [
    "errors",
    "app_files",
    "processes",
    "progress",
    "faults",
    "storage",
    "system",
    "nets",
    "data",
    "runs",
    "training",
    "science",
    "services",
    "cli",
    "__main__",
]


def _layer(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imported_layers(source: str, here: tuple[str, ...]) -> set[str]:
    """The package layers a module imports (at any depth in it), `here`
    being its folder inside the package: () for a top-level module."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
            target = [*base, *(node.module.split(".") if node.module else [])]
            names = [target[0]] if target else [alias.name for alias in node.names]
            found.update(name for name in names if name in LAYERS)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("resexplorer."):
            found.add(node.module.split(".")[1])
    return found


def test_no_module_imports_a_layer_below_it():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue
        mine = LAYERS.index(_layer(path))
        imported = _imported_layers(path.read_text(), path.relative_to(PACKAGE).parent.parts)
        upward += [f"{path.relative_to(ROOT)} imports {layer}" for layer in imported if LAYERS.index(layer) > mine]
    assert not upward, upward


def test_the_checker_reads_every_form_of_import():
    assert _imported_layers("from ..services.figures import error_curves", ("nets",)) == {"services"}
    assert _imported_layers("def f():\n    from ..training import runs", ("science",)) == {"training"}
    assert _imported_layers("from .models import ModelConfig", ("nets",)) == {"nets"}
    assert _imported_layers("from .training.engine import TrainConfig", ()) == {"training"}
    assert _imported_layers("from resexplorer.science.tta import predict", ("data",)) == {"science"}
    assert _imported_layers("from . import __version__", ()) == set()


def _imported_modules(path: Path) -> set[str]:
    """The package's modules a module imports, lazily too, as dotted names
    below the package ("data.sources")."""
    here = path.relative_to(PACKAGE).parent.parts
    known = {p.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".") for p in PACKAGE.rglob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(here[: len(here) - (node.level - 1)] if node.level > 1 else here)
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            candidates = [target] + [f"{target}.{alias.name}".strip(".") for alias in node.names]
            found.update(c for c in candidates if c in known)
    return found


def test_no_import_cycles():
    graph = {
        path.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", "."): _imported_modules(path)
        for path in PACKAGE.rglob("*.py")
    }
    done, stack = set(), []

    def visit(module: str) -> None:
        if module in stack:
            raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(module) :], module]))
        if module in done:
            return
        stack.append(module)
        for imported in sorted(graph.get(module, ())):
            visit(imported)
        stack.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_reading_the_shipped_runs_loads_no_training_code_and_no_torch():
    """Home and the Runs page read runs (configs, metrics, claims, presets)
    through these modules; training, checkpoints and torch stay unloaded."""
    code = (
        "import sys\n"
        "from resexplorer.services import catalog, claims, curves, reference\n"
        "runs = reference.reference_runs()\n"
        "assert runs and all(r.metrics('epoch') for r in runs)\n"
        "[curves.curve_from_run(r) for r in runs]\n"
        "claims.claims_of_runs(reference.reference_runs('fig6'))\n"
        "loaded = [m for m in sys.modules if m.startswith('resexplorer.training') or m.split('.')[0] == 'torch']\n"
        "print(sorted(loaded + [m for m in sys.modules if m == 'resexplorer.runs.checkpoints']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# The pages that only read runs. Their scripts run in a fresh interpreter
# in which importing torch fails, except on the sidebar's device probe
# (ui/device_line.py), the one thread meant to load it.
TORCH_FREE_PAGES = ["app.py", "pages/runs.py"]
_TORCH_REFUSED = """
import json, sys, threading
from streamlit.testing.v1 import AppTest
from ui.device_line import PROBE_THREAD

class RefuseTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'torch' and threading.current_thread().name != PROBE_THREAD:
            raise ImportError(f'{name} imported by the page script (thread {threading.current_thread().name})')

sys.meta_path.insert(0, RefuseTorch())
at = AppTest.from_file('app.py', default_timeout=120).run()
if sys.argv[1] != 'app.py':  # as a click on its link opens it
    at.switch_page(sys.argv[1]).run()
drawn = len(at.get('plotly_chart')) + len(at.dataframe)
print(json.dumps({'exceptions': [e.message for e in at.exception], 'drawn': drawn}))
"""


@pytest.mark.parametrize("script", TORCH_FREE_PAGES)
def test_the_pages_that_read_runs_load_no_torch(script):
    """Home and Runs read the runs' files alone: their first render on a
    fresh server must not wait for torch (the device line asks for it in
    the background)."""
    out = subprocess.run(
        [sys.executable, "-c", _TORCH_REFUSED, script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    run = json.loads(out.stdout)
    assert run["exceptions"] == []  # no ImportError, nor anything else
    assert run["drawn"] > 0  # and the page drew what it is for (a chart, the runs table)


@pytest.mark.parametrize("command", [["runs", "--runs", "no-such-folder"], ["run-queue", "--idle-exit", "0"]])
def test_commands_that_train_nothing_load_no_torch(command, tmp_path):
    """Listing runs, and the training queue's runner (alive as long as jobs
    wait), stay small: torch is for the workers."""
    code = (
        "import sys\n"
        "from resexplorer.cli import main\n"
        f"main({command!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n"
    )
    env = {**os.environ, "RESEXPLORER_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    assert out.stdout.strip().splitlines()[-1] == "[]"


# --- the page scripts -------------------------------------------------------------------------------

PAGE_SCRIPTS = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]
UI_MODULES = sorted((ROOT / "ui").glob("*.py"))
ARRAY_LIBRARIES = {"numpy", "torch", "torchvision"}
ARRAY_METHODS = {"numpy", "cpu", "cuda", "detach", "tobytes", "transpose", "reshape", "repeat", "argmax", "astype"}


def _array_work(source: str) -> list[str]:
    """Imports of numpy or torch, at any depth, and calls of array methods
    (tensor.numpy(), image.transpose(...)): work that belongs in the package."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in ARRAY_LIBRARIES]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            if node.module.split(".")[0] in ARRAY_LIBRARIES:
                found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ARRAY_METHODS:
                found.append(f".{node.func.attr}() on line {node.lineno}")
    return found


def _found_in(files: list[Path], check) -> dict:
    """What `check` finds in each file's source, by the file's path; a file
    in which it finds nothing is left out."""
    return {
        path.relative_to(ROOT).as_posix(): found for path in files if (found := check(path.read_text(encoding="utf-8")))
    }


def test_no_page_or_ui_module_does_array_work():
    """Pages draw; numpy and torch work lives in resexplorer, where it is tested."""
    found = _found_in(PAGE_SCRIPTS + UI_MODULES, _array_work)
    assert not found, found


def test_the_array_work_checker_finds_every_form():
    assert _array_work("import numpy as np") == ["import numpy"]
    assert _array_work("def f():\n    import torch.nn.functional as F") == ["import torch.nn.functional"]
    assert _array_work("from torch import nn") == ["from torch import ..."]
    assert _array_work("x = images.numpy()") == [".numpy() on line 1"]
    assert _array_work("st.image(p[0].transpose(1, 2, 0))") == [".transpose() on line 1"]
    assert _array_work("from resexplorer.science.tta import STRATEGIES\nnp = 1") == []


SCRIPT_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign, ast.Expr)


def test_page_scripts_keep_their_work_in_functions():
    """A page script is constants, a function per section, then a main block
    of plain calls: no loop, branch or `with` at the top level, where its
    names would leak from one section into the next."""
    loose = {
        path.relative_to(ROOT).as_posix(): [
            f"line {node.lineno}: {type(node).__name__}"
            for node in ast.parse(path.read_text()).body
            if not isinstance(node, SCRIPT_STATEMENTS)
        ]
        for path in PAGE_SCRIPTS
    }
    assert not any(loose.values()), loose


def test_the_time_left_and_durations_load_no_training_code_and_no_torch():
    """Every page's progress bar says the time left (services/countdown.py);
    formatting it once pulled in the planning module, the engine and torch."""
    code = (
        "import sys\n"
        "import resexplorer.services.countdown, resexplorer.progress\n"
        "print(sorted(m for m in sys.modules if m.startswith('resexplorer.training') or m.split('.')[0] == 'torch'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# Modules one OS lacks: the app runs on Linux, macOS and Windows laptops.
ONE_OS_ONLY = {"fcntl", "termios", "tty", "pty", "pwd", "grp", "resource", "posix", "msvcrt", "winreg", "winsound"}


def _imported_at_import_time(source: str) -> set[str]:
    """The top-level modules a file imports when it is itself imported:
    module-level imports, not those inside functions."""
    found = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_nothing_imports_a_module_one_os_lacks_at_import_time():
    files = [*PACKAGE.rglob("*.py"), *PAGE_SCRIPTS, *UI_MODULES]
    found = _found_in(files, lambda source: sorted(_imported_at_import_time(source) & ONE_OS_ONLY))
    assert not found, found
    assert _imported_at_import_time("import fcntl\ndef f():\n    import msvcrt") == {"fcntl"}


# Calls and names that one OS lacks, or that mean something else on another
# (on Windows os.kill with SIGINT is TerminateProcess, an instant kill, not a
# Ctrl+C). They belong in resexplorer/processes.py, the module that owns
# processes, behind functions every OS can call.
OS_SPECIFIC_ATTRIBUTES = {
    "os": {
        "kill",
        "killpg",
        "setsid",
        "setpgid",
        "getpgid",
        "getpgrp",
        "fork",
        "forkpty",
        "execv",  # Windows has no exec: os.execv there starts another process and returns the console at once
        "execvp",
        "nice",
        "getuid",
        "geteuid",
        "sched_getaffinity",
        "sched_setaffinity",
        "wait",
    },
    "signal": {
        "SIGKILL",
        "SIGHUP",
        "SIGALRM",
        "SIGQUIT",
        "SIGUSR1",
        "SIGUSR2",
        "SIGCHLD",
        "SIGSTOP",
        "SIGCONT",
        "SIGPIPE",
        "SIGTSTP",
        "SIGBREAK",
        "CTRL_C_EVENT",
        "CTRL_BREAK_EVENT",
        "alarm",
        "pause",
        "setitimer",
        "pthread_kill",
    },
    "subprocess": {"CREATE_NEW_PROCESS_GROUP", "CREATE_NO_WINDOW", "DETACHED_PROCESS", "STARTUPINFO"},
}
OS_SPECIFIC_KEYWORDS = {"start_new_session", "preexec_fn", "process_group", "creationflags"}
# Named in a string, a signal is taken by name (getattr(signal, "SIGHUP")); a
# function's name in a string ("pause") is just a word.
OS_SPECIFIC_SIGNALS = {name for name in OS_SPECIFIC_ATTRIBUTES["signal"] if name.startswith(("SIG", "CTRL_"))}
PROCESSES = PACKAGE / "processes.py"


def _os_specific_uses(source: str) -> list[str]:
    """Where a file uses a call, constant or module of one OS: os.kill,
    signal.SIGHUP, `from signal import SIGKILL`, start_new_session=, an
    import of fcntl at any depth, or a signal named in a string, as
    getattr(signal, "SIGKILL") would take it."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.attr in OS_SPECIFIC_ATTRIBUTES.get(node.value.id, ()):
                found.append(f"{node.value.id}.{node.attr} on line {node.lineno}")
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module in OS_SPECIFIC_ATTRIBUTES:
            specific = OS_SPECIFIC_ATTRIBUTES[node.module]
            found += [
                f"from {node.module} import {a.name} on line {node.lineno}" for a in node.names if a.name in specific
            ]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.Import) or not node.level:
                found += [f"import {name} on line {node.lineno}" for name in names if name.split(".")[0] in ONE_OS_ONLY]
        elif isinstance(node, ast.keyword) and node.arg in OS_SPECIFIC_KEYWORDS:
            found.append(f"{node.arg}= on line {node.value.lineno}")
        elif isinstance(node, ast.Constant) and node.value in OS_SPECIFIC_SIGNALS:
            found.append(f"{node.value!r} on line {node.lineno}")
    return found


def test_only_the_processes_module_uses_what_one_os_lacks():
    files = [path for path in PACKAGE.rglob("*.py") if path != PROCESSES] + PAGE_SCRIPTS + UI_MODULES
    found = _found_in(files, _os_specific_uses)
    assert not found, found


def test_the_os_checker_finds_every_form():
    assert _os_specific_uses("os.kill(pid, signal.SIGINT)") == ["os.kill on line 1"]
    assert _os_specific_uses("def f():\n    import fcntl") == ["import fcntl on line 2"]
    assert _os_specific_uses("from signal import SIGHUP, SIGINT") == ["from signal import SIGHUP on line 1"]
    assert _os_specific_uses("Popen(c, start_new_session=True)") == ["start_new_session= on line 1"]
    assert _os_specific_uses("getattr(signal, 'SIGKILL', signal.SIGTERM)") == ["'SIGKILL' on line 1"]
    assert _os_specific_uses("f = subprocess.CREATE_NEW_PROCESS_GROUP") == [
        "subprocess.CREATE_NEW_PROCESS_GROUP on line 1"
    ]
    assert _os_specific_uses("os.replace(a, b)\nsignal.signal(signal.SIGINT, h)\nfrom . import resource") == []
    assert _os_specific_uses("label = 'pause'") == []

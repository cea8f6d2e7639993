"""The package's layers (README's layout): a module imports only its own
layer and the layers before it in LAYERS, and no import goes round in a
cycle, lazy imports included. (That the figures load no torch is tested
beside the figures.)"""

import ast
import subprocess
import sys
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "resexplorer"
# Lowest first: each may import the ones before it, never the ones after.
LAYERS = ["errors", "storage", "system", "nets", "data", "runs", "training", "science", "services", "cli", "__main__"]


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
